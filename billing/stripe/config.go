package stripe

import (
	"cmp"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adshare/adshare/internal/secret"
)

// Secret is a credential (the secret key, a webhook signing secret). It
// prints, logs and marshals as "[redacted]"; it unmarshals from a plain
// JSON string.
type Secret = secret.Secret

// Defaults of Config.
const (
	// DefaultBaseURL is Stripe's API.
	DefaultBaseURL = "https://api.stripe.com"
	// DefaultTimeout bounds one call, stripe-go's retries included, unless
	// the caller's context ends sooner. Stripe answers most calls within a
	// second; 30 s leaves room for a slow one and a retry without holding
	// a job for stripe-go's 80 s.
	DefaultTimeout = 30 * time.Second
	// DefaultListTimeout bounds one listing, every page of it.
	DefaultListTimeout = 2 * time.Minute
	// DefaultMaxListItems bounds what one listing reads (100 pages of 100):
	// a listing that would go past it fails (code CodeListTooLong) rather
	// than return a partial answer a reconciliation would take for whole.
	DefaultMaxListItems = 10_000
	// DefaultMaxNetworkRetries is how many times stripe-go re-sends a call
	// within one method call (after a network error, a 409, a 429
	// lock_timeout, a 503, or a 5xx on a GET), with the same idempotency
	// key. One: the caller retries beyond that, with the same key, from
	// its own job, and a modest figure keeps one call within
	// DefaultTimeout (stripe-go sleeps 0.5 s to 5 s between tries without
	// watching the context).
	DefaultMaxNetworkRetries = 1
)

// Config configures New. SecretKey is required; every other field has a
// documented default.
type Config struct {
	// SecretKey is the platform account's secret key (sk_live_…,
	// sk_test_…) or a restricted key (rk_…) allowed to write
	// PaymentIntents, Connect accounts, account links and transfers and
	// to read balance transactions. It comes from the host's
	// configuration; it never appears in logs, errors or metrics.
	SecretKey Secret
	// BaseURL overrides DefaultBaseURL (without /v1), for stripe-mock in
	// tests. http is accepted.
	BaseURL string
	// HTTPClient sends the calls. Defaults to a client on a transport of
	// the Client's own (whose idle connections Stop closes). Its Timeout,
	// if any, bounds each attempt.
	HTTPClient *http.Client
	// Timeout bounds each call. Defaults to DefaultTimeout.
	Timeout time.Duration
	// ListTimeout bounds each listing (TransfersInGroup,
	// BalanceTransactions, Transfers). Defaults to DefaultListTimeout.
	ListTimeout time.Duration
	// MaxListItems bounds what a listing reads. Defaults to
	// DefaultMaxListItems.
	MaxListItems int
	// MaxNetworkRetries is how many times stripe-go may re-send a call.
	// Defaults to DefaultMaxNetworkRetries; negative disables retries.
	MaxNetworkRetries int
	// Logger receives one line per call (debug when it succeeded, warn
	// when it failed) with Stripe's request id and the idempotency key;
	// never a key or a secret. Defaults to discarding.
	Logger *slog.Logger
	// Metrics is where the adshare_stripe_* collectors are registered.
	// Nil means none are exported.
	Metrics prometheus.Registerer
}

// withDefaults returns a copy of cfg with every zero field defaulted, and
// checks it. Errors say how to fix the config and never show the key.
func (cfg Config) withDefaults() (Config, error) {
	key := string(cfg.SecretKey)
	switch {
	case key == "":
		return cfg, errors.New("stripe: Config.SecretKey is required: the platform's secret key (sk_live_… or sk_test_…) from the Stripe dashboard, Developers → API keys")
	case strings.HasPrefix(key, "pk_"):
		return cfg, errors.New("stripe: Config.SecretKey is a publishable key (pk_…): the server needs the secret key (sk_…) or a restricted key (rk_…)")
	case !strings.HasPrefix(key, "sk_") && !strings.HasPrefix(key, "rk_"):
		return cfg, errors.New("stripe: Config.SecretKey must be a secret key (sk_…) or a restricted key (rk_…)")
	case strings.ContainsAny(key, " \t\r\n"):
		return cfg, errors.New("stripe: Config.SecretKey must be one word without spaces or line breaks (copy it again from the dashboard)")
	}
	base, err := normalizeBaseURL(cfg.BaseURL)
	if err != nil {
		return cfg, err
	}
	cfg.BaseURL = base
	if cfg.Timeout < 0 || cfg.ListTimeout < 0 || cfg.MaxListItems < 0 {
		return cfg, errors.New("stripe: Config.Timeout, ListTimeout and MaxListItems must not be negative (0 means the default)")
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultTimeout)
	cfg.ListTimeout = cmp.Or(cfg.ListTimeout, DefaultListTimeout)
	cfg.MaxListItems = cmp.Or(cfg.MaxListItems, DefaultMaxListItems)
	cfg.MaxNetworkRetries = cmp.Or(cfg.MaxNetworkRetries, DefaultMaxNetworkRetries)
	cfg.MaxNetworkRetries = max(cfg.MaxNetworkRetries, 0)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// normalizeBaseURL checks an override (or returns the default) and drops a
// trailing slash and a trailing /v1 (stripe-go adds it to every path).
func normalizeBaseURL(raw string) (string, error) {
	if raw == "" {
		return DefaultBaseURL, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("stripe: Config.BaseURL must be an absolute http(s) URL without credentials or query, such as http://127.0.0.1:12111 for stripe-mock")
	}
	s := strings.TrimSuffix(u.String(), "/")
	return strings.TrimSuffix(s, "/v1"), nil
}
