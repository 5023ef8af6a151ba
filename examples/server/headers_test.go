package main

import (
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAFillsHeader: an anonymous fill's answer carries the security
// fields and the rate limit's, within the eight keys net/http's header
// map holds without growing (Date and Content-Length are written beside
// the map). Vary: Origin comes with CORS origins allowed, not without.
func TestAFillsHeader(t *testing.T) {
	t.Parallel()
	for name, env := range map[string]map[string]string{
		"no CORS origin":   nil,
		"a CORS origin":    {"ADSHARE_ALLOWED_ORIGINS": "https://dashboard.example.com"},
		"HSTS on, no CORS": {"ADSHARE_HSTS": "true"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			base, _ := startServer(t, env)
			owner := postJSON(t, base+"/auth/register", "", `{"email":"owner@example.com","password":"a long enough passphrase"}`, http.StatusCreated)
			id := owner["user"].(map[string]any)["id"].(string)
			p := send(http.MethodGet, base+"/ad-space/"+id+"?gdpr_applies=false&device=d", "")
			require.Equal(t, http.StatusOK, p.status, p.body)
			h := p.header
			require.Equal(t, "default-src 'none'; frame-ancestors 'none'", h.Get("Content-Security-Policy"))
			require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
			require.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
			require.Equal(t, "no-store", h.Get("Cache-Control"))
			require.NotEmpty(t, h.Get("RateLimit"))
			require.NotEmpty(t, h.Get("RateLimit-Policy"))
			require.Len(t, h.Get("X-Request-Id"), 36)
			var keys []string
			for k := range h {
				if k != "Date" && k != "Content-Length" {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			if env["ADSHARE_ALLOWED_ORIGINS"] != "" {
				require.Equal(t, []string{"Origin"}, h.Values("Vary"))
				return
			}
			require.Empty(t, h.Values("Vary"), "no answer depends on Origin")
			if env["ADSHARE_HSTS"] != "" {
				require.NotEmpty(t, h.Get("Strict-Transport-Security"))
				return
			}
			require.LessOrEqual(t, len(keys), 8, "%v", keys)
		})
	}
}
