package transport

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/transport/realtime"
)

// A page the server served itself (the dashboard) may open the channel
// without being listed in WebSocketOrigins; another port or host may not.
func TestWSSameOriginPage(t *testing.T) {
	t.Parallel()
	b := newWSBundle(t, backendMemory, wsOpts{})
	tok := b.register(t, "page@example.com")
	u, err := url.Parse(b.wsURL())
	require.NoError(t, err)

	h := bearer(tok.AccessToken)
	h.Set("Origin", "http://"+u.Host)
	b.dialWS(t, h).expect(realtime.TypeWelcome)

	for _, origin := range []string{"http://" + u.Hostname() + ":1", "http://evil.example.com", "null", "http://"} {
		h := bearer(tok.AccessToken)
		h.Set("Origin", origin)
		_, resp, err := b.tryDialWS(t, "", h)
		require.Error(t, err, origin)
		require.NotNil(t, resp, origin)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, origin)
	}
}
