package transport

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	const dashboard = "https://dashboard.example.com"
	b := setup(t, Config{AllowedOrigins: []string{"https://Dashboard.example.com"}})

	t.Run("allowed origin is echoed exactly, never *, never with credentials", func(t *testing.T) {
		t.Parallel()
		resp := b.do(t, http.MethodGet, "/healthz", nil, http.Header{"Origin": {dashboard}})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, dashboard, resp.Header.Get("Access-Control-Allow-Origin"))
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Credentials"))
		require.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), RequestIDHeader)
		require.Contains(t, resp.Header.Values("Vary"), "Origin")
	})

	t.Run("other origins get no CORS headers", func(t *testing.T) {
		t.Parallel()
		for _, origin := range []string{"https://evil.example", "https://dashboard.example.com.evil.example",
			"http://dashboard.example.com", "null", "https://dashboard.example.com:8443"} {
			resp := b.do(t, http.MethodGet, "/healthz", nil, http.Header{"Origin": {origin}})
			require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), origin)
			require.Contains(t, resp.Header.Values("Vary"), "Origin", origin)
		}
	})

	t.Run("preflight from an allowed origin", func(t *testing.T) {
		t.Parallel()
		resp := b.do(t, http.MethodOptions, "/healthz", nil, http.Header{
			"Origin": {dashboard}, "Access-Control-Request-Method": {"POST"},
			"Access-Control-Request-Headers": {"authorization, content-type"},
		})
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		require.Equal(t, dashboard, resp.Header.Get("Access-Control-Allow-Origin"))
		require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
		require.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")
		require.Equal(t, "600", resp.Header.Get("Access-Control-Max-Age"))
	})

	t.Run("preflight from another origin is refused", func(t *testing.T) {
		t.Parallel()
		resp := b.do(t, http.MethodOptions, "/healthz", nil, http.Header{
			"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"DELETE"},
		})
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
		require.Equal(t, "origin_not_allowed", problemOf(t, resp).Code)
	})

	t.Run("native clients send no Origin and are unaffected", func(t *testing.T) {
		t.Parallel()
		resp := b.do(t, http.MethodGet, "/healthz", nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	})
}
