package transport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/tracing"
	"github.com/adshare/adshare/privacy"
	"github.com/adshare/adshare/transport/realtime"
)

// Defaults of Config.
const (
	// DefaultMaxBodyBytes caps request bodies: 1 MiB.
	DefaultMaxBodyBytes int64 = 1 << 20
	// DefaultCORSMaxAge is how long browsers may cache a preflight answer.
	DefaultCORSMaxAge = 10 * time.Minute
	// DefaultReadinessTimeout bounds all readiness checks together.
	DefaultReadinessTimeout = 2 * time.Second
	// DefaultRequestTimeout bounds each request's work (GET /ws aside).
	DefaultRequestTimeout = 5 * time.Second
)

// Config configures New. The zero value serves the health and OpenAPI
// endpoints with every default; nil fields mean the documented default.
type Config struct {
	// Logger receives access logs and errors. Defaults to discarding.
	Logger *slog.Logger
	// DisableAccessLog turns the per-request log line off (errors are
	// still logged), for hosts whose load balancer logs requests.
	DisableAccessLog bool
	// Metrics is where HTTP metrics are registered (adshare_http_*). Nil
	// means no metrics are exported. The host serves the registry.
	Metrics prometheus.Registerer
	// MaxBodyBytes caps every request body. Defaults to DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// AllowedOrigins lists the exact browser origins (scheme://host[:port])
	// that may call the API cross-origin, such as an admin dashboard.
	// Native apps send no Origin and need no entry. Empty: none.
	AllowedOrigins []string
	// CORSMaxAge is how long a browser may cache a preflight answer.
	// Defaults to DefaultCORSMaxAge.
	CORSMaxAge time.Duration
	// HSTSMaxAge, when positive, sends Strict-Transport-Security with this
	// max-age and includeSubDomains. Set it only when every client reaches
	// the API over HTTPS (a year, 365*24*time.Hour, is the usual value).
	HSTSMaxAge time.Duration
	// TrustRequestID keeps a well-formed incoming X-Request-Id (from a load
	// balancer the host controls) instead of generating one. Default false.
	TrustRequestID bool
	// ReadinessChecks run on GET /readyz; all must pass for 200.
	ReadinessChecks []ReadinessCheck
	// ReadinessTimeout bounds the checks together. Defaults to
	// DefaultReadinessTimeout.
	ReadinessTimeout time.Duration
	// RequestTimeout is the deadline of each request's context (GET /ws,
	// a long-lived connection, aside): a request still waiting on a store
	// or service when it passes is answered 503 dependency_unavailable
	// with Retry-After, rather than hanging on a dependency that holds its
	// connections without answering. Defaults to DefaultRequestTimeout;
	// negative: no deadline.
	RequestTimeout time.Duration

	// Auth is the user system. When nil, the auth, user and admin endpoints
	// are not mounted.
	Auth *auth.Service
	// AdSpaces is the ad space system. When nil (or Auth is nil), the ad
	// space, content and moderation endpoints are not mounted.
	AdSpaces *adspace.Service
	// Analytics ingests events (POST /events, the click redirect) and
	// answers reports. When nil, those endpoints are not mounted.
	Analytics *analytics.Service
	// PublicBaseURL prefixes the tracking links in fills, e.g.
	// "https://api.example.com"; empty gives links relative to the API.
	PublicBaseURL string
	// TrustedProxies are the networks of the load balancers and proxies in
	// front of the API. X-Forwarded-For is believed only through them; with
	// none, the client is the TCP peer.
	TrustedProxies []netip.Prefix
	// Limiter enforces the API-wide rate limits (per client address, and per
	// user once authenticated). Nil disables them (sign-in keeps its own).
	// They fail open when the limiter cannot answer.
	Limiter auth.Limiter
	// ClientRateLimit defaults to DefaultClientRateLimit.
	ClientRateLimit auth.Limit
	// UserRateLimit defaults to DefaultUserRateLimit.
	UserRateLimit auth.Limit
	// RouteLimits gives route classes (RouteAuth, RouteTracking,
	// RouteReports) their own per-address limit, counted apart from
	// ClientRateLimit's; a class without an entry shares ClientRateLimit.
	// With a store/redis.LeasedLimiter as Limiter, every limit holds across
	// instances.
	RouteLimits map[RouteClass]auth.Limit

	// Billing is the money: top-ups, balances, transactions, payouts,
	// payout accounts, holds, reconciliation, and the processor's webhook
	// (POST /webhooks/stripe). When nil, none of them is mounted; it needs
	// Auth.
	Billing *billing.Service
	// WebhookMaxBodyBytes caps the webhook's body (a larger one is a
	// 413), in place of MaxBodyBytes. Defaults to
	// DefaultWebhookMaxBodyBytes.
	WebhookMaxBodyBytes int64
	// WebhookConcurrency bounds the webhook deliveries handled at once
	// (more are answered 503 with Retry-After, and the processor retries
	// them). Defaults to DefaultWebhookConcurrency.
	WebhookConcurrency int
	// Realtime is the realtime channel's hub; when set (with Auth), GET /ws
	// serves it.
	Realtime *realtime.Hub
	// Announcer, when set (with Auth), serves POST /admin/announcements:
	// an administrator's system.alert to every connected client.
	Announcer *realtime.Announcer
	// Privacy, when set (with Auth), serves exports and erasures: GET
	// /users/me/export, DELETE /users/me and their admin paths.
	Privacy *privacy.Service
	// WebSocketOrigins lists the exact browser origins that may open the
	// realtime channel. Nil means AllowedOrigins. Requests without an
	// Origin (native apps) always pass.
	WebSocketOrigins []string

	// TracerProvider, when set, gives every request an OpenTelemetry
	// server span named by its route ("GET /ad-space/{userId}"), the
	// parent of the spans of what serves it. Nil: no spans, at no cost.
	TracerProvider trace.TracerProvider
	// TrustTraceParent makes an incoming W3C traceparent header (from a
	// gateway or service mesh the host controls) the parent of the
	// request's span. Otherwise the span starts a trace of its own and
	// only links to the incoming one: a client then cannot choose the
	// trace id or force sampling. Default false.
	TrustTraceParent bool
}

// ReadinessCheck is one dependency that must answer for the service to be
// ready, such as PostgreSQL or Redis.
type ReadinessCheck struct {
	// Name labels the check in the /readyz answer, e.g. "postgres".
	Name string
	// Check returns nil when the dependency answers.
	Check func(ctx context.Context) error
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.CORSMaxAge = cmp.Or(c.CORSMaxAge, DefaultCORSMaxAge)
	c.ReadinessTimeout = cmp.Or(c.ReadinessTimeout, DefaultReadinessTimeout)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	c.WebhookMaxBodyBytes = cmp.Or(c.WebhookMaxBodyBytes, DefaultWebhookMaxBodyBytes)
	c.WebhookConcurrency = cmp.Or(c.WebhookConcurrency, DefaultWebhookConcurrency)
	if c.ClientRateLimit == (auth.Limit{}) {
		c.ClientRateLimit = DefaultClientRateLimit
	}
	if c.UserRateLimit == (auth.Limit{}) {
		c.UserRateLimit = DefaultUserRateLimit
	}
	return c
}

func (c Config) validate() error {
	if c.MaxBodyBytes < 0 {
		return errors.New("transport: Config.MaxBodyBytes must be positive, or zero for the default")
	}
	if c.Realtime != nil && c.Auth == nil {
		return errors.New("transport: Config.Realtime needs Config.Auth (the channel authenticates clients)")
	}
	if c.AdSpaces != nil && c.Auth == nil {
		return errors.New("transport: Config.AdSpaces needs Config.Auth (ad space endpoints authenticate callers)")
	}
	if c.Billing != nil && c.Auth == nil {
		return errors.New("transport: Config.Billing needs Config.Auth (billing endpoints authenticate callers)")
	}
	if c.WebhookMaxBodyBytes < 0 || c.WebhookConcurrency < 0 {
		return errors.New("transport: Config.WebhookMaxBodyBytes and WebhookConcurrency must be positive, or zero for the default")
	}
	if strings.HasSuffix(c.PublicBaseURL, "/") {
		return errors.New("transport: Config.PublicBaseURL must not end with a slash")
	}
	if !c.ClientRateLimit.Valid() || !c.UserRateLimit.Valid() {
		return errors.New("transport: rate limits need a positive Rate, Period and Burst")
	}
	for class, l := range c.RouteLimits {
		if !l.Valid() {
			return fmt.Errorf("transport: RouteLimits[%q] needs a positive Rate, Period and Burst", class)
		}
	}
	for _, rc := range c.ReadinessChecks {
		if rc.Name == "" || rc.Check == nil {
			return errors.New("transport: every ReadinessCheck needs a Name and a Check function")
		}
	}
	return nil
}

// server is the state the handlers share.
type server struct {
	cfg     Config
	logger  *slog.Logger
	metrics *httpMetrics
	tracer  tracing.Tracer
	cors    *cors
	// wsOrigins are the origins allowed to open /ws.
	wsOrigins *cors
	// mux serves the routes, each marking its pattern as the request's
	// route, and answers what matches none with unmatched; routesMux
	// holds the routes alone, to name a request's route before it is
	// served and to tell a wrong method from an unknown path.
	mux       *http.ServeMux
	routesMux *http.ServeMux
	auth      *auth.Service
	spaces    *adspace.Service
	events    *analytics.Service
	billing   *billing.Service
	limits    limitPolicies
	// eventsURL is where apps post events: PublicBaseURL + "/events".
	eventsURL string
	// clickPrefix is a click link without its token: PublicBaseURL + "/c/".
	clickPrefix string
}

// New returns adshare's API as an http.Handler. Mount it at the root of the
// host's server (or under a prefix with http.StripPrefix). It returns an
// error when the configuration is inconsistent or the metrics cannot be
// registered (for example, registered twice on one registry).
func New(cfg Config) (http.Handler, error) {
	return newHandler(cfg, nil)
}

// newHandler builds the handler with extra routes, which tests use to
// exercise the middleware and decoding.
func newHandler(cfg Config, extra []route) (http.Handler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, logger: cfg.Logger, mux: http.NewServeMux(), routesMux: http.NewServeMux(), auth: cfg.Auth, spaces: cfg.AdSpaces, events: cfg.Analytics,
		billing: cfg.Billing, tracer: tracing.New(cfg.TracerProvider), limits: newLimitPolicies(cfg),
		eventsURL: cfg.PublicBaseURL + "/events", clickPrefix: cfg.PublicBaseURL + "/c/"}
	if cfg.TracerProvider != nil { // trace ids in the access log and errors
		s.logger = slog.New(tracing.LogHandler(cfg.Logger.Handler()))
	}
	var err error
	if s.metrics, err = newHTTPMetrics(cfg.Metrics); err != nil {
		return nil, err
	}
	if s.cors, err = newCORS(cfg.AllowedOrigins, cfg.CORSMaxAge); err != nil {
		return nil, err
	}
	wsOrigins := cfg.WebSocketOrigins
	if wsOrigins == nil {
		wsOrigins = cfg.AllowedOrigins
	}
	if s.wsOrigins, err = newCORS(wsOrigins, 0); err != nil {
		return nil, err
	}
	for _, rt := range append(s.routes(), extra...) {
		pattern := rt.method + " " + rt.path
		s.routesMux.Handle(pattern, rt.handler)
		s.mux.Handle(pattern, routed(pattern, rt.handler))
	}
	s.mux.HandleFunc("/", s.unmatched)
	// Outermost first.
	chain := []middleware{
		s.withRequestContext,
		s.withObservation,
		s.withRecovery,
		s.withSecurityHeaders,
		s.withCORS,
		s.withClientRateLimit,
		s.withBodyLimit,
	}
	var h http.Handler = s.mux
	for i := len(chain) - 1; i >= 0; i-- {
		h = chain[i](h)
	}
	return h, nil
}

// routeOf returns the pattern that will serve r, or "unmatched"; it is the
// route label of logs and metrics, so its values are bounded.
func (s *server) routeOf(r *http.Request) string {
	if _, pattern := s.routesMux.Handler(r); pattern != "" {
		return pattern
	}
	return "unmatched"
}

// routed serves a route's handler and names its pattern as the route of
// the request's log line and metrics (matching once, in the mux).
func routed(pattern string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*responseRecorder); ok {
			rec.route = pattern
		}
		h.ServeHTTP(w, r)
	})
}

// unmatched answers a request no route matches (an unknown path, a wrong
// method, a path to clean) with a problem document instead of the mux's
// plain text.
func (s *server) unmatched(w http.ResponseWriter, r *http.Request) {
	if rec, ok := w.(*responseRecorder); ok {
		rec.route = "unmatched"
	}
	h, _ := s.routesMux.Handler(r)
	probe := &statusProbe{header: make(http.Header)}
	h.ServeHTTP(probe, r)
	switch {
	case probe.status == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", probe.header.Get("Allow"))
		s.writeError(w, r, errMethodNotAllowed)
	case probe.status >= 300 && probe.status < 400:
		// The mux redirects to a cleaned path; pass that on.
		w.Header().Set("Location", probe.header.Get("Location"))
		w.WriteHeader(probe.status)
	default:
		s.writeError(w, r, errNotFound.WithMessage(fmt.Sprintf("no endpoint at %s", r.URL.Path)))
	}
}

// statusProbe captures what the mux's fallback handler would answer.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}
func (p *statusProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}
