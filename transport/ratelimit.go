package transport

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

// errRateLimited is the answer to a client over the API's rate limit.
var errRateLimited = errs.New(errs.RateLimited, "rate_limited", "too many requests; slow down")

// Defaults of the API-wide rate limits.
var (
	// DefaultClientRateLimit applies per client IP (per /64 for IPv6).
	DefaultClientRateLimit = auth.Limit{Rate: 600, Period: time.Minute, Burst: 120}
	// DefaultUserRateLimit applies per authenticated user.
	DefaultUserRateLimit = auth.Limit{Rate: 600, Period: time.Minute, Burst: 120}
)

// RouteClass names a group of routes that share a per-address rate limit
// (Config.RouteLimits).
type RouteClass string

// The route classes.
const (
	// RouteAuth: /auth/… (sign-in, refresh, OIDC).
	RouteAuth RouteClass = "auth"
	// RouteTracking: POST /events and the click redirect /c/{token}.
	RouteTracking RouteClass = "tracking"
	// RouteReports: /analytics/….
	RouteReports RouteClass = "reports"
	// RouteDefault: everything else; its limit is ClientRateLimit.
	RouteDefault RouteClass = "default"
)

// routeClass classifies a request line or ServeMux pattern ("POST /auth/login").
func routeClass(pattern string) RouteClass {
	_, path, _ := strings.Cut(pattern, " ")
	switch {
	case strings.HasPrefix(path, "/auth/"):
		return RouteAuth
	case path == "/events", strings.HasPrefix(path, "/c/"):
		return RouteTracking
	case strings.HasPrefix(path, "/analytics/"):
		return RouteReports
	}
	return RouteDefault
}

// clientLimit is the per-address key and limit of r's route class: the
// class's own (Config.RouteLimits) or, without one, ClientRateLimit.
func (s *server) clientLimit(r *http.Request) (string, auth.Limit) {
	ip := limitKeyForIP(auth.ClientFromContext(r.Context()).IP)
	class := routeClass(r.Method + " " + r.URL.Path) // by path: probing unknown /auth/ paths counts as auth
	if l, ok := s.cfg.RouteLimits[class]; ok && class != RouteDefault {
		return "api:" + string(class) + ":" + ip, l
	}
	return "api:ip:" + ip, s.cfg.ClientRateLimit
}

// limitKeyForIP buckets an address: itself for IPv4, its /64 for IPv6.
func limitKeyForIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "unknown"
	}
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.Unmap().String()
}

// withClientRateLimit limits requests per client address, per route class. It fails open:
// when the limiter cannot answer, requests pass (and the failure is
// logged), so that a Redis outage does not take the API down. Sign-in has
// its own limits that fail closed.
func (s *server) withClientRateLimit(next http.Handler) http.Handler {
	if s.cfg.Limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.isWebhook(r) { // bounded by its own concurrency limit
			next.ServeHTTP(w, r)
			return
		}
		key, limit := s.clientLimit(r)
		if err := s.checkLimit(w, r, key, limit); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitPrincipal limits requests per authenticated user, failing open. Its
// RateLimit-* headers replace the per-address ones: the user's budget is
// the one that binds a signed-in client.
func (s *server) limitPrincipal(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if s.cfg.Limiter == nil {
		return nil
	}
	return s.checkLimit(w, r, "api:user:"+p.UserID.String(), s.cfg.UserRateLimit)
}

// checkLimit counts one request against l and returns errRateLimited (with
// RetryAfter) when over. It reports the budget in RateLimit-Limit /
// RateLimit-Remaining / RateLimit-Reset headers.
func (s *server) checkLimit(w http.ResponseWriter, r *http.Request, key string, l auth.Limit) error {
	res, err := s.cfg.Limiter.Allow(r.Context(), key, l)
	if err != nil {
		s.logger.WarnContext(r.Context(), "transport: rate limiter unavailable; allowing", slog.Any("error", err))
		return nil
	}
	h := w.Header()
	// The IETF draft's fields (draft-ietf-httpapi-ratelimit-headers), named
	// after the key's kind ("ip", "user"), beside the older RateLimit-*.
	policy := strings.SplitN(key, ":", 3)[1]
	reset := int((res.ResetAfter + time.Second - 1) / time.Second)
	h.Set("RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=%d", policy, l.Rate, int(l.Period/time.Second)))
	h.Set("RateLimit", fmt.Sprintf("%q;r=%d;t=%d", policy, res.Remaining, reset))
	h.Set("RateLimit-Limit", strconv.Itoa(l.Burst))
	h.Set("RateLimit-Remaining", strconv.Itoa(res.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(reset))
	if !res.Allowed {
		return errRateLimited.WithRetryAfter(res.RetryAfter)
	}
	return nil
}
