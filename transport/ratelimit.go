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

// limitPolicy is one of the API-wide limits with what every answer it
// limits says of it, worked out once: the limiter key's prefix and the
// constant header values.
type limitPolicy struct {
	limit  auth.Limit
	prefix string   // of the limiter's keys: "api:ip:", "api:auth:", "api:user:"
	name   string   // the IETF draft's policy name: "ip", "auth", "user"
	policy []string // RateLimit-Policy
}

// newLimitPolicy is the policy of limit l named name. Its value slices are
// shared by every answer: each has length equal to its capacity, so that
// Header.Add copies rather than writes into it.
func newLimitPolicy(name string, l auth.Limit) *limitPolicy {
	return &limitPolicy{
		limit: l, prefix: "api:" + name + ":", name: name,
		policy: []string{fmt.Sprintf("%q;q=%d;w=%d", name, l.Rate, int(l.Period/time.Second))},
	}
}

// limitPolicies are the server's API-wide limits.
type limitPolicies struct {
	client  *limitPolicy                // per address, RouteDefault and classes without their own
	user    *limitPolicy                // per signed-in user
	classes map[RouteClass]*limitPolicy // per address, the classes of Config.RouteLimits
}

func newLimitPolicies(cfg Config) limitPolicies {
	p := limitPolicies{client: newLimitPolicy("ip", cfg.ClientRateLimit), user: newLimitPolicy("user", cfg.UserRateLimit),
		classes: map[RouteClass]*limitPolicy{}}
	for class, l := range cfg.RouteLimits {
		if class != RouteDefault {
			p.classes[class] = newLimitPolicy(string(class), l)
		}
	}
	return p
}

// clientLimit is the per-address policy of r's route class: the class's
// own (Config.RouteLimits) or, without one, ClientRateLimit's.
func (s *server) clientLimit(r *http.Request) *limitPolicy {
	class := routeClass(r.Method + " " + r.URL.Path) // by path: probing unknown /auth/ paths counts as auth
	if p, ok := s.limits.classes[class]; ok {
		return p
	}
	return s.limits.client
}

// limitKeyForIP buckets an address: itself for IPv4, its /64 for IPv6.
func limitKeyForIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "unknown"
	}
	if a.Is4() {
		return ip // ParseAddr takes IPv4 only in its one canonical form
	}
	if !a.Is4In6() {
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
		p := s.clientLimit(r)
		if err := s.checkLimit(w, r, p, limitKeyForIP(auth.ClientFromContext(r.Context()).IP)); err != nil {
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
	return s.checkLimit(w, r, s.limits.user, p.UserID.String())
}

// checkLimit counts one request against p's limit for id (an address's
// bucket, a user's id) and returns errRateLimited (with RetryAfter) when
// over. It reports the budget in the IETF draft's RateLimit-Policy and
// RateLimit fields (draft-ietf-httpapi-ratelimit-headers): the policy
// (quota and window) and what remains of it with the seconds until it is
// whole again. Every answer pays for these fields, so they are assigned
// under their canonical keys, the policy from a value built once.
func (s *server) checkLimit(w http.ResponseWriter, r *http.Request, p *limitPolicy, id string) error {
	res, err := s.cfg.Limiter.Allow(r.Context(), p.prefix+id, p.limit)
	if err != nil {
		s.logger.WarnContext(r.Context(), "transport: rate limiter unavailable; allowing", slog.Any("error", err))
		return nil
	}
	reset := int((res.ResetAfter + time.Second - 1) / time.Second)
	var buf [64]byte
	b := append(append(append(buf[:0], '"'), p.name...), `";r=`...)
	b = append(strconv.AppendInt(b, int64(res.Remaining), 10), ";t="...)
	b = strconv.AppendInt(b, int64(reset), 10)
	h := w.Header()
	h["Ratelimit-Policy"] = p.policy
	h["Ratelimit"] = []string{string(b)}
	if !res.Allowed {
		return errRateLimited.WithRetryAfter(res.RetryAfter)
	}
	return nil
}
