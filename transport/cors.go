package transport

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Headers a browser may send and read cross-origin. Credentials (cookies)
// are never allowed: the API authenticates with bearer tokens.
const (
	corsAllowMethods  = "GET, POST, PUT, PATCH, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, Idempotency-Key, X-Request-Id"
	corsExposeHeaders = "X-Request-Id, Retry-After, Location, ETag"
)

// cors holds the exact-origin allowlist.
type cors struct {
	origins map[string]struct{}
	maxAge  string
}

// newCORS validates the configured origins: each must be an exact
// scheme://host[:port] with no path, query or wildcard; "*" is refused.
func newCORS(origins []string, maxAge time.Duration) (*cors, error) {
	c := &cors{origins: make(map[string]struct{}, len(origins)), maxAge: strconv.Itoa(int(maxAge / time.Second))}
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.Contains(o, "*") {
			return nil, fmt.Errorf("transport: CORS origin %q must be an exact origin such as https://dashboard.example.com", o)
		}
		c.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = struct{}{}
	}
	return c, nil
}

func (c *cors) allowed(origin string) bool {
	_, ok := c.origins[origin]
	return ok
}

// varyOrigin is the Vary field of every answer, shared: its length is its
// capacity, so Header.Add copies rather than writes into it.
var varyOrigin = []string{"Origin"}

// withCORS answers preflights and marks responses for allowed origins.
// With origins allowed, every response varies by Origin (it carries
// Access-Control-Allow-Origin for some), so no cache serves one origin's
// answer to another. With none, no answer depends on Origin and none says
// it varies. Requests without Origin (native apps, servers) pass through.
func (s *server) withCORS(next http.Handler) http.Handler {
	vary := len(s.cors.origins) > 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if vary {
			if _, ok := h["Vary"]; ok {
				h.Add("Vary", "Origin")
			} else {
				h["Vary"] = varyOrigin
			}
		}
		origin := r.Header.Get("Origin")
		if s.isWebhook(r) { // server to server: no browser may call it
			next.ServeHTTP(w, r)
			return
		}
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		if !s.cors.allowed(origin) {
			if preflight {
				s.writeError(w, r, errOriginNotAllowed)
				return
			}
			// A simple request still runs (it may come from a non-browser
			// client), but without CORS headers a browser will not let the
			// page read the answer.
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", s.cors.maxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}
