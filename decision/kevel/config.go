package kevel

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/secret"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds one Decide call, retries included, unless the
	// caller's context ends sooner. Kevel publishes no latency SLO; 800 ms
	// leaves an app screen room to fall back to house content.
	DefaultTimeout = 800 * time.Millisecond
	// DefaultUserDBTimeout bounds one UserDB call.
	DefaultUserDBTimeout = 3 * time.Second
	// DefaultMaxResponseBytes caps the body read from Kevel: 1 MiB. A
	// bigger answer is treated as a failure (ErrUnavailable).
	DefaultMaxResponseBytes int64 = 1 << 20
	// DefaultRatePerSecond and DefaultRateBurst are the client-side token
	// bucket for decisions. Kevel documents no limit; this one stops a
	// runaway loop from hammering it.
	DefaultRatePerSecond = 200
	DefaultRateBurst     = 400
	// DefaultMaxRetries is how many times a decision is re-sent after a
	// dial error (never after anything else; see Client.Decide).
	DefaultMaxRetries = 2
	// DefaultRetryBackoff is the first retry's maximum delay (full jitter,
	// doubling each time).
	DefaultRetryBackoff = 10 * time.Millisecond
	// DefaultRetryAfter is how long a 429 without Retry-After refuses
	// decisions locally.
	DefaultRetryAfter = time.Second
	// MaxRetryAfter caps what a Retry-After header can impose.
	MaxRetryAfter = 5 * time.Minute
	// DefaultMaxPlacementLabels bounds the distinct placement labels of the
	// fill-rate metrics; further placements share the label "other".
	DefaultMaxPlacementLabels = 50
	// DefaultUserAgent is sent when the request carries no end-user agent.
	DefaultUserAgent = "adshare-kevel/1 (+https://github.com/adshare/adshare)"
	// DecisionTTL is how long Kevel counts a decision's tracking URLs
	// (documented for impression URLs): Ad.Tracking.ExpiresAt is the
	// decision's time plus DecisionTTL.
	DecisionTTL = 24 * time.Hour
)

// Defaults of BreakerConfig.
const (
	DefaultBreakerConsecutiveFailures = 5
	DefaultBreakerFailureRatio        = 0.5
	DefaultBreakerMinRequests         = 20
	DefaultBreakerWindow              = 10 * time.Second
	DefaultBreakerCoolDown            = 5 * time.Second
)

// Secret is a credential. It prints, logs and marshals as "[redacted]";
// convert it to string only to send it.
type Secret = secret.Secret

const redacted = secret.Redacted

// BreakerConfig configures the circuit breaker in front of the Decision
// API. The breaker opens after ConsecutiveFailures failures in a row, or
// when at least MinRequests calls in the last Window failed at
// FailureRatio or more. Open, it fails every Decide at once with
// decision.ErrUnavailable for CoolDown; then one probe call goes through:
// success closes it, failure opens it for another CoolDown.
//
// Failures are timeouts of the client's own deadline, transport errors,
// 5xx, malformed and oversized answers. A 400 proves Kevel is up (success);
// a 429 and a call the caller cancelled count neither way.
type BreakerConfig struct {
	// Disabled turns the breaker off.
	Disabled bool
	// ConsecutiveFailures defaults to DefaultBreakerConsecutiveFailures.
	ConsecutiveFailures int
	// FailureRatio (0 to 1) defaults to DefaultBreakerFailureRatio.
	FailureRatio float64
	// MinRequests defaults to DefaultBreakerMinRequests.
	MinRequests int
	// Window defaults to DefaultBreakerWindow.
	Window time.Duration
	// CoolDown defaults to DefaultBreakerCoolDown.
	CoolDown time.Duration
}

// Config configures New. NetworkID is required; every other field has a
// documented default.
type Config struct {
	// NetworkID is the Kevel network id (the 23 of e-23.adzerk.net).
	NetworkID int64
	// SiteID is the site of placements that set none. Kevel needs a site
	// on every placement: with SiteID 0, requests whose placements have no
	// SiteID are refused with decision.ErrInvalidRequest.
	SiteID int64
	// BaseURL overrides https://e-{NetworkID}.adzerk.net, for a CNAME
	// (UserDB calls must go through it when the network uses one) or a
	// fake server. http is accepted, for tests.
	BaseURL string
	// APIKey, when set, is sent as X-Adzerk-ApiKey on every Decision and
	// UserDB call (decisions need it only when the network asked Kevel to
	// enforce keys; UserDB custom, consent and forget need it by spec).
	// It never appears in logs, errors or metrics.
	APIKey Secret

	// HTTPClient sends the calls. Its CheckRedirect is replaced (on a
	// copy) so redirects are never followed. Defaults to a client over
	// Transport.
	HTTPClient *http.Client
	// Transport is used when HTTPClient is nil. Defaults to a clone of
	// http.DefaultTransport with 64 idle connections per host.
	Transport http.RoundTripper

	// Timeout bounds each Decide. Defaults to DefaultTimeout.
	Timeout time.Duration
	// UserDBTimeout bounds each UserDB call. Defaults to
	// DefaultUserDBTimeout.
	UserDBTimeout time.Duration
	// MaxResponseBytes caps the body read. Defaults to
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// RatePerSecond and RateBurst shape decisions with a token bucket; a
	// call finding it empty fails at once with decision.ErrRateLimited (a
	// decision that waited would miss its deadline anyway). Default
	// DefaultRatePerSecond and DefaultRateBurst; a negative RatePerSecond
	// disables the bucket.
	RatePerSecond float64
	RateBurst     int
	// MaxRetries is how many times a decision is re-sent after a dial
	// error, within the deadline. Defaults to DefaultMaxRetries; negative
	// disables retries.
	MaxRetries int
	// RetryBackoff is the first retry's maximum delay. Defaults to
	// DefaultRetryBackoff.
	RetryBackoff time.Duration
	// Breaker configures the circuit breaker; zero fields are defaults.
	Breaker BreakerConfig

	// UserAgent is sent when a request has no end-user agent. Defaults to
	// DefaultUserAgent.
	UserAgent string
	// Customize, when set, edits each outgoing request after the mapping,
	// for the fields a decision.Request cannot express (floor prices,
	// skipFilters, searchTerm, user.segments...). It must not block, and
	// must not keep wire after it returns.
	Customize func(req decision.Request, wire *DecisionRequest)

	// Logger receives the client's logs (never the API key, never user
	// keys). Defaults to discarding.
	Logger *slog.Logger
	// Metrics is where the adshare_kevel_* collectors are registered. Nil
	// means none are exported.
	Metrics prometheus.Registerer
	// MaxPlacementLabels defaults to DefaultMaxPlacementLabels.
	MaxPlacementLabels int
	// Now defaults to time.Now.
	Now func() time.Time

	// TracerProvider, when set, gives every Decide a client span
	// "kevel.decide" (placements, ads, outcome, HTTP status), a child of
	// the caller's span. No trace header goes to Kevel: it is a third
	// party, and internal trace ids stay inside. Nil: no spans, at no
	// cost.
	TracerProvider trace.TracerProvider
}

// withDefaults returns a copy of cfg with every zero field defaulted, and
// checks it. Errors say how to fix the config.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.NetworkID <= 0 {
		return cfg, errors.New("kevel: Config.NetworkID is required: your Kevel network id (the 23 of e-23.adzerk.net)")
	}
	if cfg.SiteID < 0 {
		return cfg, errors.New("kevel: Config.SiteID must be a Kevel site id, or 0 when every placement sets its own")
	}
	base, err := normalizeBaseURL(cfg.BaseURL, cfg.NetworkID)
	if err != nil {
		return cfg, err
	}
	cfg.BaseURL = base
	if strings.ContainsAny(string(cfg.APIKey), "\r\n") {
		return cfg, errors.New("kevel: Config.APIKey must be a single line (copy it again from the Kevel UI)")
	}
	for name, d := range map[string]time.Duration{"Timeout": cfg.Timeout, "UserDBTimeout": cfg.UserDBTimeout, "RetryBackoff": cfg.RetryBackoff} {
		if d < 0 {
			return cfg, fmt.Errorf("kevel: Config.%s must not be negative (0 means the default)", name)
		}
	}
	if cfg.MaxResponseBytes < 0 {
		return cfg, errors.New("kevel: Config.MaxResponseBytes must not be negative (0 means the default)")
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultTimeout)
	cfg.UserDBTimeout = cmp.Or(cfg.UserDBTimeout, DefaultUserDBTimeout)
	cfg.MaxResponseBytes = cmp.Or(cfg.MaxResponseBytes, DefaultMaxResponseBytes)
	cfg.RatePerSecond = cmp.Or(cfg.RatePerSecond, DefaultRatePerSecond)
	cfg.RateBurst = cmp.Or(cfg.RateBurst, DefaultRateBurst)
	if cfg.RatePerSecond > 0 && cfg.RateBurst < 1 {
		return cfg, errors.New("kevel: Config.RateBurst must be at least 1 (0 means the default)")
	}
	cfg.MaxRetries = cmp.Or(cfg.MaxRetries, DefaultMaxRetries)
	cfg.RetryBackoff = cmp.Or(cfg.RetryBackoff, DefaultRetryBackoff)
	cfg.UserAgent = cmp.Or(cfg.UserAgent, DefaultUserAgent)
	cfg.MaxPlacementLabels = cmp.Or(cfg.MaxPlacementLabels, DefaultMaxPlacementLabels)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := &cfg.Breaker
	b.ConsecutiveFailures = cmp.Or(b.ConsecutiveFailures, DefaultBreakerConsecutiveFailures)
	b.FailureRatio = cmp.Or(b.FailureRatio, DefaultBreakerFailureRatio)
	b.MinRequests = cmp.Or(b.MinRequests, DefaultBreakerMinRequests)
	b.Window = cmp.Or(b.Window, DefaultBreakerWindow)
	b.CoolDown = cmp.Or(b.CoolDown, DefaultBreakerCoolDown)
	if b.ConsecutiveFailures < 1 || b.FailureRatio <= 0 || b.FailureRatio > 1 || b.MinRequests < 1 || b.Window <= 0 || b.CoolDown <= 0 {
		return cfg, errors.New("kevel: Config.Breaker needs positive counts and durations and a FailureRatio in (0, 1]; set Disabled to turn it off")
	}
	return cfg, nil
}

// defaultBaseURL is Kevel's per-network host.
func defaultBaseURL(networkID int64) string {
	return "https://e-" + strconv.FormatInt(networkID, 10) + ".adzerk.net"
}

// normalizeBaseURL checks an override (or returns the default) and drops a
// trailing slash.
func normalizeBaseURL(raw string, networkID int64) (string, error) {
	if raw == "" {
		return defaultBaseURL(networkID), nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("kevel: Config.BaseURL must be an absolute http(s) URL without credentials or query, such as https://e-23.adzerk.net or your CNAME")
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// newHTTPClient returns the client to use: a copy of the configured one,
// with redirects left to the caller, or one on its own transport; owned
// says whether the transport is ours (and so whether Stop may close its
// idle connections).
func newHTTPClient(hc *http.Client, rt http.RoundTripper) (c *http.Client, owned bool) {
	c = new(http.Client)
	switch {
	case hc != nil:
		*c = *hc
	case rt != nil:
		c.Transport = rt
	default:
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		c.Transport, owned = t, true
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, owned
}
