package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/internal/secret"
	"github.com/adshare/adshare/transport"
)

// config is the example server's configuration, from flags and environment.
type config struct {
	addr            string
	databaseURL     string
	redisURL        string
	redisCluster    []string // Redis Cluster seed nodes (host:port); exclusive with redisURL
	redisPassword   string   // the cluster's password (REDIS_URL carries its own)
	redisPrefix     string
	migrateOnStart  bool
	logFormat       string
	logLevel        slog.Level
	allowedOrigins  []string
	trustedProxies  []netip.Prefix
	hsts            bool
	tlsCert, tlsKey string // PEM files; both set: the server speaks TLS (and sends HSTS)
	accessLog       bool
	clientRate      int                          // requests per minute per client address
	userRate        int                          // requests per minute per signed-in user
	routeRates      map[transport.RouteClass]int // requests per minute per client address, by route class
	shutdownTimeout time.Duration
	debugAddr       string        // net/http/pprof, loopback only; empty: off
	drainDelay      time.Duration // readiness fails this long before the listener closes
	redisCA         string        // PEM CA file verifying a rediss:// server; empty: the system's roots
	// databaseRequireTLS refuses a database URL without sslmode=verify-full.
	databaseRequireTLS bool

	// adminEmail and adminPassword, when set, are an admin account made
	// at start if no account has the email (bootstrapAdmin).
	adminEmail, adminPassword string

	issuer        string
	jwtSeed       []byte   // 32 bytes, or nil for an ephemeral key
	jwtVerifyKeys [][]byte // retired or upcoming public keys, 32 bytes each
	refreshKey    []byte   // at least 32 bytes, or nil for an ephemeral key
	trackingKeys  [][]byte // 32 bytes each, the first seals; nil for an ephemeral key
	viewerSecret  []byte   // at least 32 bytes, or nil for an ephemeral key
	publicURL     string
	anonymous     bool

	oidc oidcConfig

	kevelNetwork   int64
	kevelSite      int64
	kevelURL       string
	kevelAPIKey    string
	kevelFake      bool
	eventRetention time.Duration
	// dataKeys seal sensitive fields PostgreSQL keeps (connected-account
	// ids, payout destinations, processor events); nil: none, allowed only
	// without Stripe.
	dataKeys keyring.StaticKeys

	billing billingConfig
}

// billingConfig is the money's configuration: Stripe when a secret key is
// given, manual top-ups and payouts (an admin confirms and records them)
// otherwise.
type billingConfig struct {
	stripeKey      secret.Secret
	stripeURL      string // stripe-mock in tests; empty: Stripe's API
	webhookSecrets []secret.Secret
	liveMode       bool
	holdWindow     time.Duration
	returnURL      string // onboarding's deep links back into the app
	refreshURL     string
}

// oidcConfig describes one OpenID Connect provider; empty IssuerURL means none.
type oidcConfig struct {
	name, issuerURL, clientID, clientSecret string
	redirectURIs, nativeClientIDs           []string
}

// flagSet binds flags whose defaults come from environment variables.
type flagSet struct {
	*flag.FlagSet
	getenv func(string) string
	errs   []error
}

func (f *flagSet) env(key, def string) string {
	if v := f.getenv(key); v != "" {
		return v
	}
	return def
}

func (f *flagSet) str(p *string, name, key, def, usage string) {
	f.StringVar(p, name, f.env(key, def), usage+" ("+key+")")
}

func (f *flagSet) boolean(p *bool, name, key string, def bool, usage string) {
	v, err := strconv.ParseBool(f.env(key, strconv.FormatBool(def)))
	if err != nil {
		f.errs = append(f.errs, fmt.Errorf("%s must be true or false", key))
	}
	f.BoolVar(p, name, v, usage+" ("+key+")")
}

func (f *flagSet) duration(p *time.Duration, name, key string, def time.Duration, usage string) {
	v, err := time.ParseDuration(f.env(key, def.String()))
	if err != nil {
		f.errs = append(f.errs, fmt.Errorf("%s must be a duration such as 15s", key))
	}
	f.DurationVar(p, name, v, usage+" ("+key+")")
}

// raw binds a flag whose value is parsed after all flags are read.
func (f *flagSet) raw(name, key, usage string) *string {
	v := f.env(key, "")
	f.StringVar(&v, name, v, usage+" ("+key+")")
	return &v
}

// parseConfig reads flags from args, each defaulting to its environment
// variable and then to the built-in default. extra binds a subcommand's
// own flags (check's) beside the server's, which it parses alike.
func parseConfig(name string, args []string, getenv func(string) string, out io.Writer, extra ...func(*flag.FlagSet)) (config, []string, error) {
	var c config
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), getenv: getenv}
	fs.SetOutput(out)
	for _, bind := range extra {
		bind(fs.FlagSet)
	}
	fs.str(&c.addr, "addr", "ADSHARE_ADDR", "127.0.0.1:8080", "listen address")
	fs.str(&c.databaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL; empty uses the in-memory store")
	fs.str(&c.redisURL, "redis-url", "REDIS_URL", "", "Redis URL; empty uses in-process equivalents")
	cluster := fs.raw("redis-cluster", "REDIS_CLUSTER_ADDRS", "comma-separated host:port of Redis Cluster nodes (any of them; the rest are discovered); instead of redis-url")
	fs.str(&c.redisPassword, "redis-cluster-password", "REDIS_CLUSTER_PASSWORD", "", "password of the Redis Cluster's nodes (prefer the environment variable)")
	fs.str(&c.redisCA, "redis-ca", "ADSHARE_REDIS_CA", "", "PEM file of the CA that signed the Redis server's certificate (with a rediss:// URL); empty: the system's roots")
	fs.boolean(&c.databaseRequireTLS, "database-require-tls", "ADSHARE_DATABASE_REQUIRE_TLS", false, "refuse a database URL without sslmode=verify-full (verified TLS to PostgreSQL)")
	fs.str(&c.redisPrefix, "redis-prefix", "ADSHARE_REDIS_PREFIX", "adshare:", "prefix of every Redis key, so several deployments can share one Redis")
	fs.boolean(&c.migrateOnStart, "migrate-on-start", "ADSHARE_MIGRATE_ON_START", false, "apply pending PostgreSQL migrations before serving")
	fs.str(&c.logFormat, "log-format", "ADSHARE_LOG_FORMAT", "auto", "log format: auto (text on a terminal, else json), text or json")
	level := fs.raw("log-level", "ADSHARE_LOG_LEVEL", "log level: debug, info (default), warn or error")
	origins := fs.raw("allowed-origins", "ADSHARE_ALLOWED_ORIGINS", "comma-separated browser origins allowed by CORS")
	proxies := fs.raw("trusted-proxies", "ADSHARE_TRUSTED_PROXIES", "comma-separated CIDRs of proxies whose X-Forwarded-For is believed")
	clientRate := fs.raw("client-rate", "ADSHARE_CLIENT_RATE", "requests per minute allowed per client address (bursts of a fifth); default 600")
	userRate := fs.raw("user-rate", "ADSHARE_USER_RATE", "requests per minute allowed per signed-in user (bursts of a fifth); default 600")
	routeRates := fs.raw("route-rates", "ADSHARE_ROUTE_RATES", "comma-separated class=requests per minute per client address for the route classes auth, tracking and reports (bursts of a fifth), such as auth=60,tracking=6000; a class not named shares client-rate")
	fs.boolean(&c.accessLog, "access-log", "ADSHARE_ACCESS_LOG", true, "log every request (5xx answers are logged regardless)")
	fs.boolean(&c.hsts, "hsts", "ADSHARE_HSTS", false, "send Strict-Transport-Security (only behind HTTPS; on by itself with -tls-cert)")
	fs.str(&c.tlsCert, "tls-cert", "ADSHARE_TLS_CERT", "", "PEM certificate (chain) file: serve HTTPS (TLS 1.2+, with HSTS); empty: plain HTTP (behind a TLS-terminating proxy)")
	fs.str(&c.tlsKey, "tls-key", "ADSHARE_TLS_KEY", "", "PEM private key file of -tls-cert")
	fs.duration(&c.shutdownTimeout, "shutdown-timeout", "ADSHARE_SHUTDOWN_TIMEOUT", 15*time.Second, "how long requests in flight may take to finish on shutdown")
	fs.str(&c.debugAddr, "debug-addr", "ADSHARE_DEBUG_ADDR", "", "serve Go's profiler (/debug/pprof/) on this loopback address, such as 127.0.0.1:6060; empty: off")
	fs.duration(&c.drainDelay, "drain-delay", "ADSHARE_DRAIN_DELAY", 0, "on SIGINT/SIGTERM, how long /readyz fails while the server still serves, so that load balancers polling it stop sending first")
	fs.str(&c.issuer, "issuer", "ADSHARE_ISSUER", "", "the iss claim of access tokens; defaults to http://<addr>")
	fs.str(&c.adminEmail, "admin-email", "ADSHARE_ADMIN_EMAIL", "", "an admin account made at start when no account has this email (the first admin, on the in-memory store too); with admin-password")
	fs.str(&c.adminPassword, "admin-password", "ADSHARE_ADMIN_PASSWORD", "", "the password of admin-email's account when it is made (prefer the environment variable)")
	seed := fs.raw("jwt-seed", "ADSHARE_JWT_SEED", "base64 of the 32-byte Ed25519 seed that signs access tokens; empty: a random key per start")
	verify := fs.raw("jwt-verify-keys", "ADSHARE_JWT_VERIFY_KEYS", "comma-separated base64 Ed25519 public keys that also verify (key rotation)")
	refresh := fs.raw("refresh-key", "ADSHARE_REFRESH_KEY", "base64 of at least 32 secret bytes for refresh tokens; empty: random per start")
	tracking := fs.raw("tracking-keys", "ADSHARE_TRACKING_KEYS", "comma-separated base64 32-byte keys that seal tracking tokens, the current one first; empty: random per start")
	viewer := fs.raw("viewer-key-secret", "ADSHARE_VIEWER_KEY_SECRET", "base64 of at least 32 secret bytes that derive viewers' pseudonymous keys; empty: random per start")
	fs.str(&c.publicURL, "public-url", "ADSHARE_PUBLIC_URL", "", "public base URL of the API, for tracking links in fills; empty: relative links")
	fs.boolean(&c.anonymous, "allow-anonymous", "ADSHARE_ALLOW_ANONYMOUS", true, "let viewers without an access token fill ad spaces")
	kevelNetwork := fs.raw("kevel-network", "ADSHARE_KEVEL_NETWORK_ID", "Kevel network id; empty: ads come from the local engine over users' own ads")
	kevelSite := fs.raw("kevel-site", "ADSHARE_KEVEL_SITE_ID", "Kevel site id of the app")
	fs.str(&c.kevelURL, "kevel-url", "ADSHARE_KEVEL_URL", "", "Kevel base URL override (a CNAME); default https://e-<network>.adzerk.net")
	fs.str(&c.kevelAPIKey, "kevel-api-key", "ADSHARE_KEVEL_API_KEY", "", "Kevel API key (prefer the environment variable)")
	fs.boolean(&c.kevelFake, "kevel-fake", "ADSHARE_KEVEL_FAKE", false, "run an in-process fake Kevel network with demo ads (for trying the Kevel path)")
	fs.duration(&c.eventRetention, "event-retention", "ADSHARE_EVENT_RETENTION", 400*24*time.Hour, "how long raw tracking events are kept in PostgreSQL (rollups are kept)")
	fs.str(&c.oidc.name, "oidc-name", "ADSHARE_OIDC_NAME", "oidc", "name of the OpenID Connect provider in URLs")
	fs.str(&c.oidc.issuerURL, "oidc-issuer", "ADSHARE_OIDC_ISSUER", "", "issuer URL of an OpenID Connect provider; empty: password sign-in only")
	fs.str(&c.oidc.clientID, "oidc-client-id", "ADSHARE_OIDC_CLIENT_ID", "", "client id at the provider")
	fs.str(&c.oidc.clientSecret, "oidc-client-secret", "ADSHARE_OIDC_CLIENT_SECRET", "", "client secret at the provider (prefer the environment variable)")
	redirects := fs.raw("oidc-redirect-uris", "ADSHARE_OIDC_REDIRECT_URIS", "comma-separated redirect URIs registered at the provider")
	natives := fs.raw("oidc-native-client-ids", "ADSHARE_OIDC_NATIVE_CLIENT_IDS", "comma-separated client ids of the mobile apps")
	dataKeys := fs.raw("data-keys", "ADSHARE_DATA_KEYS", "comma-separated base64 32-byte keys that seal sensitive fields in PostgreSQL (connected accounts, payout details, processor events), the current one first; required with DATABASE_URL and a Stripe key")
	indexKey := fs.raw("data-index-key", "ADSHARE_DATA_INDEX_KEY", "base64 32-byte key of the blind index that finds sealed values (does not rotate with data-keys); required with data-keys")
	stripeKey := fs.raw("stripe-secret-key", "ADSHARE_STRIPE_SECRET_KEY", "Stripe secret or restricted key (sk_…, rk_…; prefer the environment variable); empty: manual top-ups and payouts")
	fs.str(&c.billing.stripeURL, "stripe-api-url", "ADSHARE_STRIPE_API_URL", "", "Stripe API base URL override, such as http://127.0.0.1:12111 for stripe-mock")
	webhooks := fs.raw("stripe-webhook-secrets", "ADSHARE_STRIPE_WEBHOOK_SECRETS", "comma-separated signing secrets (whsec_…) of the webhook endpoint, the old one too while it is rolled")
	fs.boolean(&c.billing.liveMode, "stripe-live-mode", "ADSHARE_STRIPE_LIVE_MODE", false, "the Stripe key is live: act only on live-mode events")
	fs.duration(&c.billing.holdWindow, "billing-hold-window", "ADSHARE_BILLING_HOLD_WINDOW", 7*24*time.Hour, "how long settled earnings stay held for invalid-traffic review")
	fs.str(&c.billing.returnURL, "payout-onboarding-return-url", "ADSHARE_PAYOUT_ONBOARDING_RETURN_URL", "", "where Stripe's onboarding sends an owner back (the app's deep link)")
	fs.str(&c.billing.refreshURL, "payout-onboarding-refresh-url", "ADSHARE_PAYOUT_ONBOARDING_REFRESH_URL", "", "where an expired onboarding link sends an owner (a deep link that asks for a new one)")

	if err := fs.Parse(args); err != nil {
		return c, nil, err
	}
	if len(fs.errs) > 0 {
		return c, nil, errors.Join(fs.errs...)
	}
	if *level == "" {
		*level = "info"
	}
	if err := c.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return c, nil, fmt.Errorf("log level %q: want debug, info, warn or error", *level)
	}
	switch c.logFormat {
	case "auto", "text", "json":
	default:
		return c, nil, fmt.Errorf("log format %q: want auto, text or json", c.logFormat)
	}
	for _, r := range []struct {
		raw  string
		dst  *int
		name string
	}{{*clientRate, &c.clientRate, "client-rate"}, {*userRate, &c.userRate, "user-rate"}} {
		if r.raw == "" {
			*r.dst = 600
			continue
		}
		n, err := parsePerMinute(r.raw)
		if err != nil {
			return c, nil, fmt.Errorf("%s %w", r.name, err)
		}
		*r.dst = n
	}
	var err error
	if c.routeRates, err = parseRouteRates(*routeRates); err != nil {
		return c, nil, err
	}
	if (c.adminEmail == "") != (c.adminPassword == "") {
		return c, nil, errors.New("admin-email and admin-password go together")
	}
	if c.adminEmail != "" {
		if c.adminEmail, err = auth.NormalizeEmail(c.adminEmail); err != nil {
			return c, nil, fmt.Errorf("admin-email: %w", err)
		}
	}
	c.allowedOrigins = splitList(*origins)
	for _, p := range splitList(*proxies) {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			return c, nil, fmt.Errorf("trusted proxy %q: want a CIDR such as 10.0.0.0/8", p)
		}
		c.trustedProxies = append(c.trustedProxies, prefix.Masked())
	}

	if c.jwtSeed, err = decodeKey(*seed, "jwt-seed", 32, 32); err != nil {
		return c, nil, err
	}
	for _, k := range splitList(*verify) {
		pub, err := decodeKey(k, "jwt-verify-keys", 32, 32)
		if err != nil {
			return c, nil, err
		}
		c.jwtVerifyKeys = append(c.jwtVerifyKeys, pub)
	}
	if c.refreshKey, err = decodeKey(*refresh, "refresh-key", 32, 1024); err != nil {
		return c, nil, err
	}
	for _, v := range []struct {
		raw  string
		dst  *int64
		name string
	}{{*kevelNetwork, &c.kevelNetwork, "kevel-network"}, {*kevelSite, &c.kevelSite, "kevel-site"}} {
		if v.raw == "" {
			continue
		}
		n, err := strconv.ParseInt(v.raw, 10, 64)
		if err != nil || n <= 0 {
			return c, nil, fmt.Errorf("%s must be a positive number", v.name)
		}
		*v.dst = n
	}
	if c.kevelNetwork != 0 && c.kevelSite == 0 {
		return c, nil, errors.New("kevel-site is required with kevel-network")
	}
	for _, k := range splitList(*tracking) {
		key, err := decodeKey(k, "tracking-keys", 32, 32)
		if err != nil {
			return c, nil, err
		}
		c.trackingKeys = append(c.trackingKeys, key)
	}
	if c.viewerSecret, err = decodeKey(*viewer, "viewer-key-secret", 32, 1024); err != nil {
		return c, nil, err
	}
	c.publicURL = strings.TrimSuffix(c.publicURL, "/")
	c.billing.stripeKey = secret.Secret(strings.TrimSpace(*stripeKey))
	for _, w := range splitList(*webhooks) {
		c.billing.webhookSecrets = append(c.billing.webhookSecrets, secret.Secret(w))
	}
	for _, k := range splitList(*dataKeys) {
		c.dataKeys.Data = append(c.dataKeys.Data, secret.Secret(k))
	}
	c.dataKeys.Index = secret.Secret(strings.TrimSpace(*indexKey))
	if (len(c.dataKeys.Data) > 0) != (c.dataKeys.Index != "") {
		return c, nil, errors.New("data-keys and data-index-key go together")
	}
	if c.billing.stripeKey != "" && len(c.billing.webhookSecrets) == 0 {
		return c, nil, errors.New("stripe-webhook-secrets is required with stripe-secret-key: top-ups are credited only by verified webhooks")
	}
	if c.billing.stripeKey == "" && (len(c.billing.webhookSecrets) > 0 || c.billing.stripeURL != "") {
		return c, nil, errors.New("stripe-webhook-secrets and stripe-api-url need stripe-secret-key")
	}
	c.redisCluster = splitList(*cluster)
	if len(c.redisCluster) > 0 && c.redisURL != "" {
		return c, nil, errors.New("redis-url and redis-cluster are exclusive: give the single server's URL or the cluster's nodes")
	}
	if c.redisPassword != "" && len(c.redisCluster) == 0 {
		return c, nil, errors.New("redis-cluster-password needs redis-cluster (a REDIS_URL carries its own password)")
	}
	if strings.ContainsAny(c.redisPrefix, "{}") && len(c.redisCluster) > 0 {
		return c, nil, errors.New("redis-prefix must not hold { or } on a Redis Cluster: a hash tag in the prefix would put every key in one slot")
	}
	c.oidc.redirectURIs = splitList(*redirects)
	c.oidc.nativeClientIDs = splitList(*natives)
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return c, nil, errors.New("tls-cert and tls-key go together")
	}
	if c.tlsCert != "" {
		c.hsts = true // a server that speaks HTTPS tells browsers to keep to it
	}
	if c.issuer == "" {
		c.issuer = c.scheme() + "://" + c.addr
	}
	return c, fs.Args(), nil
}

// scheme is "https" when the server speaks TLS, else "http".
func (c config) scheme() string {
	if c.tlsCert != "" {
		return "https"
	}
	return "http"
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// decodeKey decodes standard or URL-safe base64 (padded or not) of
// between min and max bytes; "" is nil.
func decodeKey(s, name string, min, max int) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) < min || len(b) > max {
				return nil, fmt.Errorf("%s must decode to %d to %d bytes, got %d", name, min, max, len(b))
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("%s must be base64", name)
}

// servable reports what serving needs beyond what parses: the checks that
// the subcommands which only migrate or manage users do not need.
func (c config) servable() error {
	if c.databaseURL != "" && c.billing.stripeKey != "" && len(c.dataKeys.Data) == 0 {
		return errors.New("data-keys and data-index-key are required with database-url and stripe-secret-key: connected-account ids and Stripe's events are stored sealed")
	}
	return nil
}

// parsePerMinute reads a rate limit in requests per minute.
func parsePerMinute(raw string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil || n < 1 || n > 60_000_000 { // at most one a microsecond
		return 0, errors.New("must be a number of requests per minute, 1 to 60000000")
	}
	return n, nil
}

// parseRouteRates reads -route-rates: class=rate pairs for the route
// classes that may have their own per-address limit.
func parseRouteRates(raw string) (map[transport.RouteClass]int, error) {
	rates := map[transport.RouteClass]int{}
	for _, pair := range splitList(raw) {
		name, rate, ok := strings.Cut(pair, "=")
		class := transport.RouteClass(strings.TrimSpace(name))
		switch {
		case !ok:
			return nil, fmt.Errorf("route-rates: %q: want class=requests per minute, such as auth=60", pair)
		case class != transport.RouteAuth && class != transport.RouteTracking && class != transport.RouteReports:
			return nil, fmt.Errorf("route-rates: unknown route class %q: use auth, tracking or reports (the rest is client-rate)", class)
		}
		if _, dup := rates[class]; dup {
			return nil, fmt.Errorf("route-rates: %s is given twice", class)
		}
		n, err := parsePerMinute(rate)
		if err != nil {
			return nil, fmt.Errorf("route-rates: %s %w", class, err)
		}
		rates[class] = n
	}
	return rates, nil
}
