package transport

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// An unknown field is reported where it is, however deep.
func TestUnknownFieldPointers(t *testing.T) {
	t.Parallel()
	var accepted atomic.Int64
	b := setup(t, Config{}, echoRoute(&accepted))
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	for _, tt := range []struct {
		description string
		body        string
		wantPointer string
	}{
		{"top level", `{"name":"a","admin":true}`, "#/admin"},
		{"nested", `{"name":"a","inner":{"n":1,"admin":true}}`, "#/inner/admin"},
		{"the first of several", `{"name":"a","inner":{"x":1},"y":2}`, "#/inner/x"},
		{"a known key in another case is known", `{"NAME":"a","Inner":{"N":1,"z":0}}`, "#/Inner/z"},
		{"escaped as RFC 6901 says", `{"name":"a","inner":{"a/b~c":1}}`, "#/inner/a~1b~0c"},
	} {
		resp := b.do(t, http.MethodPost, "/test/echo", strings.NewReader(tt.body), jsonCT)
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, tt.description)
		p := problemOf(t, resp)
		require.Equal(t, "invalid_body", p.Code, tt.description)
		require.Equal(t, []string{tt.wantPointer}, pointers(p), tt.description)
	}
	require.Zero(t, accepted.Load())
}
