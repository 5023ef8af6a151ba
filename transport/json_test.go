package transport

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/errs"
)

type echoBody struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Inner struct {
		N int `json:"n"`
	} `json:"inner"`
	Tags []string `json:"tags"`
	echoEmbedded
}

// echoEmbedded's fields sit in echoBody's object, as an embedded struct's do.
type echoEmbedded struct {
	Level int `json:"level"`
}

func (e *echoBody) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(e.Name != "", "name", "is required")
	f.Check(e.Count >= 0, "count", "must not be negative")
	return f
}

// echoRoute decodes an echoBody and counts the requests that got through,
// so tests can show that bad input changes nothing.
func echoRoute(accepted *atomic.Int64) route {
	return route{http.MethodPost, "/test/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := decodeJSON[echoBody](r)
		if err != nil {
			srv := &server{logger: discardLogger()}
			srv.writeError(w, r, err)
			return
		}
		accepted.Add(1)
		writeJSON(w, http.StatusOK, body)
	})}
}

func TestStrictJSONDecoding(t *testing.T) {
	t.Parallel()
	var accepted atomic.Int64
	b := setup(t, Config{MaxBodyBytes: 256}, echoRoute(&accepted))
	jsonCT := http.Header{"Content-Type": {"application/json"}}

	tests := []struct {
		description string
		body        string
		header      http.Header
		wantStatus  int
		wantCode    string
		wantPointer string
	}{
		{"malformed JSON", `{"name":`, jsonCT, 400, "malformed_json", ""},
		{"syntax error mid-object", `{"name":"a",,}`, jsonCT, 400, "malformed_json", ""},
		{"empty body", ``, jsonCT, 400, "malformed_json", ""},
		{"whitespace only", " \n\t", jsonCT, 400, "malformed_json", ""},
		{"null is not an object", `null`, jsonCT, 400, "malformed_json", ""},
		{"an array is not an object", `[{"name":"a"}]`, jsonCT, 400, "malformed_json", ""},
		{"a string is not an object", `"name"`, jsonCT, 400, "malformed_json", ""},
		{"trailing data", `{"name":"a"} {"name":"b"}`, jsonCT, 400, "malformed_json", ""},
		{"trailing garbage", `{"name":"a"}x`, jsonCT, 400, "malformed_json", ""},
		{"duplicate keys", `{"name":"a","name":"admin"}`, jsonCT, 400, "malformed_json", ""},
		{"duplicate nested keys", `{"name":"a","inner":{"n":1,"n":2}}`, jsonCT, 400, "malformed_json", ""},
		{"invalid UTF-8", "{\"name\":\"\xff\xfe\"}", jsonCT, 400, "malformed_json", ""},
		{"deep nesting", `{"tags":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, jsonCT, 400, "malformed_json", ""},
		{"huge number", `{"name":"a","count":1e400}`, jsonCT, 422, "invalid_body", "#/count"},
		{"unknown field", `{"name":"a","admin":true}`, jsonCT, 422, "invalid_body", "#/admin"},
		{"wrong type", `{"name":"a","count":"3"}`, jsonCT, 422, "invalid_body", "#/count"},
		{"wrong nested type", `{"name":"a","inner":{"n":"x"}}`, jsonCT, 422, "invalid_body", "#/inner/n"},
		{"wrong type of an embedded struct's field", `{"name":"a","level":"x"}`, jsonCT, 422, "invalid_body", "#/level"},
		{"fraction for an integer", `{"name":"a","count":1.5}`, jsonCT, 422, "invalid_body", "#/count"},
		{"validation fails", `{"name":"","count":-1}`, jsonCT, 422, "invalid_body", "#/count"},
		{"no content type", `{"name":"a"}`, nil, 415, "unsupported_media_type", ""},
		{"text/plain", `{"name":"a"}`, http.Header{"Content-Type": {"text/plain"}}, 415, "unsupported_media_type", ""},
		{"form", `name=a`, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, 415, "unsupported_media_type", ""},
		{"latin1 charset", `{"name":"a"}`, http.Header{"Content-Type": {"application/json; charset=iso-8859-1"}}, 415, "unsupported_media_type", ""},
		{"garbled content type", `{"name":"a"}`, http.Header{"Content-Type": {"application/json; ;;="}}, 415, "unsupported_media_type", ""},
		{"body over the limit", `{"name":"` + strings.Repeat("a", 300) + `"}`, jsonCT, 413, "body_too_large", ""},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			resp := b.do(t, http.MethodPost, "/test/echo", strings.NewReader(tt.body), tt.header)
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			p := problemOf(t, resp)
			require.Equal(t, tt.wantCode, p.Code)
			if tt.wantPointer != "" {
				var pointers []string
				for _, e := range p.Errors {
					pointers = append(pointers, e.Pointer)
					require.NotEmpty(t, e.Detail)
				}
				require.Contains(t, pointers, tt.wantPointer)
			}
		})
	}
	require.Zero(t, accepted.Load(), "no bad request reached the handler's effect")

	// And a good one does.
	resp := b.do(t, http.MethodPost, "/test/echo", strings.NewReader(`{"name":"ok","count":2,"tags":["x"]}`),
		http.Header{"Content-Type": {"application/json; charset=UTF-8"}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, int64(1), accepted.Load())
}

// A body without Content-Length (chunked) is cut off at the limit too.
func TestBodyLimitWithoutContentLength(t *testing.T) {
	t.Parallel()
	var accepted atomic.Int64
	b := setup(t, Config{MaxBodyBytes: 64}, echoRoute(&accepted))
	body := io.MultiReader(strings.NewReader(`{"name":"`), strings.NewReader(strings.Repeat("a", 1000)), strings.NewReader(`"}`))
	req := httptest.NewRequest(http.MethodPost, "/test/echo", body)
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	resp := rec.Result()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Equal(t, "body_too_large", problemOf(t, resp).Code)
	require.Zero(t, accepted.Load())
}

// An answer that cannot be encoded (here a time past year 9999, which
// time.Time.MarshalJSON refuses) is a whole 500 problem document, logged
// with its cause: never a 200 whose body stops short.
func TestAnAnswerThatCannotBeEncodedIsAProblem(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{}, route{http.MethodGet, "/test/unencodable", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "at": time.Date(10000, time.January, 1, 0, 0, 0, 0, time.UTC)})
	})})
	resp := b.do(t, http.MethodGet, "/test/unencodable", nil, nil)
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Equal(t, "internal", problemOf(t, resp).Code)
	logs := b.logs.String()
	require.Contains(t, logs, "cannot be encoded as JSON")
	require.Contains(t, logs, "year outside of range")
	require.Contains(t, logs, `"status":500`, "the access log records the 500")
}
