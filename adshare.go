package adshare

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/internal/tracing"
	"github.com/adshare/adshare/privacy"
	"github.com/adshare/adshare/retention"
	"github.com/adshare/adshare/transport"
	"github.com/adshare/adshare/transport/realtime"
)

// DefaultIssuer is the iss claim of access tokens when Config.Tokens.Issuer
// is empty.
const DefaultIssuer = "adshare"

// Store keeps everything adshare stores: every store interface of the
// domain packages. store/memory.New() (the embedded default: nothing
// survives a restart) and store/postgres.Open() implement it. A host that
// keeps one part elsewhere embeds one of them and overrides that part's
// methods, or sets the part's field in Config.Auth, Config.AdSpaces or
// Config.Analytics.
//
// A Store that has Start(ctx) error and Stop(ctx) error methods is
// started first and stopped last by App; one with Ping(ctx) error is a
// readiness check, named by its Name() string method if it has one, else
// "store".
type Store interface {
	auth.UserStore
	auth.SessionStore
	auth.IdentityStore
	auth.AuditLog
	adspace.Store
	adspace.ContentStore
	analytics.Store
	analytics.UserStats
}

// Shared is what the instances of a fleet share so that they act as one:
// sign-in rate limits, the token revocation list (a logout holds on every
// instance at once), one-time OIDC values, cache invalidations, the counts
// of the burst rules, live figures. store/redis.Client implements it for a
// fleet, store/memory.NewShared() in process for a single instance.
//
// Like Store, a Shared with Start and Stop is started and stopped by App
// (after the Store, before everything else), and one with Ping is a
// readiness check ("shared" unless it has a Name).
type Shared interface {
	// Limiter counts sign-in attempts.
	Limiter() auth.Limiter
	// RevocationList refuses the access tokens of ended sessions.
	RevocationList() auth.RevocationList
	// OneTimeStore keeps OIDC transactions and nonces.
	OneTimeStore() auth.OneTimeStore
	// Broadcaster carries cache invalidations between instances.
	Broadcaster() adspace.Broadcaster
	// BurstCounter counts events for the invalid-traffic burst rules.
	BurstCounter() analytics.BurstCounter
	// Live receives accepted events for live figures; nil for none.
	Live() analytics.Live
}

// Keys are the secrets of an adshare deployment. Every instance must have
// the same ones. A nil key is replaced by a random one, with a warning in
// the log: that suits a quick start on one machine, never a fleet (tokens
// and links then die with the process, and other instances refuse them).
type Keys struct {
	// Signing signs access tokens (Ed25519; auth.SigningKeyFromSeed makes
	// one from 32 bytes of seed).
	Signing ed25519.PrivateKey
	// Verify are further public keys that verify access tokens: the next
	// key before it signs, the previous one until its tokens have expired.
	Verify []ed25519.PublicKey
	// Refresh (at least 32 bytes) derives refresh-token successors.
	Refresh []byte
	// Tracking (32 bytes each; the first seals, all open) seal the
	// tracking tokens of fills.
	Tracking [][]byte
	// Viewer (at least 32 bytes) derives viewers' pseudonymous keys.
	Viewer []byte
}

// Config configures New. Store, Shared and Decider are required; every
// other field has a documented default.
//
// Auth, AdSpaces, Analytics and HTTP tune each part with that package's own
// Config, whose documented defaults apply to zero fields. New wires the
// parts together through the fields that connect them (stores, the shared
// pieces, keys, the decider, loggers and metrics, and each other): it fills
// such a field only when it is nil, so a host can replace any one piece
// for one part, for example Auth.Limiter. A piece set that way is the
// host's to start and stop; App's lifecycle covers Store, Shared, Decider,
// Pixels and the services it builds.
type Config struct {
	// Store keeps adshare's data. Required.
	Store Store
	// Shared is what instances share. Required: store/memory.NewShared()
	// for one instance, store/redis for a fleet.
	Shared Shared
	// Decider fills ad spaces. Required: decision/local.New over
	// adspace.NewInventory(store) for the built-in engine over users' own
	// ads, or decision/cache.New over decision/kevel.New for Kevel. A
	// Decider with Start and Stop is started after Store and Shared and
	// stopped before them.
	Decider decision.Decider
	// Pixels fires the ad server's own tracking URLs after an event is
	// accepted (decision/kevel's Firer, when Kevel decides). Nil: none, as
	// for the local engine. Started and stopped like Decider.
	Pixels analytics.Pixels

	// Keys are the deployment's secrets; see Keys for nil ones.
	Keys Keys
	// Tokens configures access tokens (audience, lifetime, leeway). Issuer
	// defaults to DefaultIssuer; set it to the API's public URL.
	Tokens auth.TokenConfig

	// Auth tunes the user system: tiers, roles, identity providers,
	// session lifetimes, sign-in limits.
	Auth auth.Config
	// AdSpaces tunes ad spaces and fills: formats, content rules, whether
	// anonymous viewers may fill spaces, timeouts.
	AdSpaces adspace.Config
	// Analytics tunes ingest and reports: invalid-traffic filters, batch
	// sizes, clock skew.
	Analytics analytics.Config
	// Realtime tunes the realtime channel (GET /ws; see the README's
	// protocol section). Its Broker defaults to Shared's when Shared has a
	// RealtimeBroker method (store/memory's and store/redis's do); with no
	// broker the channel is off. Auth, Revocations, Logger and Now default
	// to the App's.
	Realtime realtime.HubConfig
	// HTTP tunes the API handler: CORS origins, trusted proxies, rate
	// limits, the public base URL of tracking links, readiness checks
	// beyond the Store's and Shared's.
	HTTP transport.Config
	// Billing tunes the money: the processor (billing/stripe, or nil for
	// manual top-ups and payouts), its webhooks, the hold window, top-up
	// bounds and velocity, payout rules. Billing runs when Store is also a
	// billing.Store (store/memory and store/postgres are).
	Billing billing.Config
	// Jobs runs durable background work (settlement, payouts, processor
	// events, reconciliation): the PostgreSQL store's River queue
	// (store/postgres's DB.Jobs) for a fleet. Nil: an in-process runner,
	// whose jobs die with the process (right for the embedded defaults).
	// App starts it after every other part and stops it first.
	Jobs jobs.Queue

	// Retention is how long each data class is kept (see the README's
	// "Data protection" section for the defaults and their reasons). When
	// Store implements retention.Purger (store/memory and store/postgres
	// do), New registers the retention job on Jobs and runs it every
	// RetentionInterval (default retention.DefaultInterval). Set
	// DisableRetention to run it yourself instead.
	Retention retention.Policy
	// RetentionInterval is how often the retention job runs.
	RetentionInterval time.Duration
	// DisableRetention leaves retention to the host.
	DisableRetention bool
	// Privacy tunes exports and erasures (package privacy): the export
	// link's lifetime, the re-authentication window, the host's own export
	// sections and erasure steps. Privacy runs when Store is also a
	// privacy.Store (store/memory and store/postgres are); New fills the
	// rest (see the README's "Data protection").
	Privacy privacy.Config
	// ViewerForgetter, when set, is told to forget an erased user's
	// viewer key: decision/kevel's UserDB when Kevel decides. Nil: no ad
	// server keeps viewers (the local engine).
	ViewerForgetter ViewerForgetter

	// Logger receives every part's logs. Defaults to discarding them.
	Logger *slog.Logger
	// Metrics is where every part registers its metrics. Nil: none.
	Metrics prometheus.Registerer
	// Now, when set, is the clock of every part New builds (tokens,
	// sessions, fills, ingest, reports, billing), unless the part's own
	// Config sets one: a host's tests travel in time with it (past a day's
	// end to settle it, past the hold window). Nil: time.Now.
	Now func() time.Time

	// TracerProvider, when set, traces requests with OpenTelemetry: a
	// server span per HTTP request, adspace.fill and decision.decide
	// under a fill, analytics.ingest under POST /events and
	// analytics.commit per group commit; and Logger's records then carry
	// trace_id and span_id. It is passed to HTTP, AdSpaces and Analytics
	// unless their own Config sets one. The Decider and Pixels are the
	// host's: give decision/cache, decision/kevel and its Firer the same
	// provider in their own Config for decision.cache, kevel.decide and
	// kevel.pixel spans (and their loggers WithTraceIDs). Nil: no spans,
	// at no cost (BenchmarkFillTracing).
	TracerProvider trace.TracerProvider
}

// WithTraceIDs wraps a log handler so that records logged with a context
// carrying a span get trace_id and span_id attributes; New does so for
// Config.Logger when Config.TracerProvider is set. Hosts use it for the
// loggers of the parts they build (decision/kevel's).
func WithTraceIDs(h slog.Handler) slog.Handler { return tracing.LogHandler(h) }

// App is adshare assembled: the user system, ad spaces and fills, analytics
// and the HTTP handler, on the stores and deciders it was given. New builds
// it without starting anything; Start starts what runs in the background,
// Stop drains and stops it.
type App struct {
	auth      *auth.Service
	spaces    *adspace.Service
	analytics *analytics.Service
	billing   *billing.Service // nil when the Store keeps no money
	hub       *realtime.Hub    // nil without a realtime broker
	privacy   *privacy.Service // nil when the Store keeps no exports
	handler   http.Handler
	life      *lifecycle
}

// New assembles adshare from cfg. It returns an error saying what to set
// when a required field is missing, and any part's configuration error.
func New(cfg *Config) (*App, error) {
	if cfg == nil {
		return nil, errors.New("adshare: New needs a Config with at least Store, Shared and Decider")
	}
	c := *cfg
	switch {
	case c.Store == nil:
		return nil, errors.New("adshare: Config.Store is required: store/memory.New() for the embedded default, or store/postgres.Open")
	case c.Shared == nil:
		return nil, errors.New("adshare: Config.Shared is required: store/memory.NewShared() for one instance, or a store/redis client for a fleet")
	case c.Decider == nil:
		return nil, errors.New("adshare: Config.Decider is required: decision/local.New over adspace.NewInventory(store) for the built-in engine, or decision/cache over decision/kevel")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TracerProvider != nil {
		c.Logger = slog.New(tracing.LogHandler(c.Logger.Handler()))
		for _, tp := range []*trace.TracerProvider{&c.HTTP.TracerProvider, &c.AdSpaces.TracerProvider, &c.Analytics.TracerProvider} {
			setIfNil(tp, c.TracerProvider)
		}
	}
	keys, err := c.Keys.withDefaults(c.Logger)
	if err != nil {
		return nil, err
	}
	a := &App{}

	// Built in dependency order, each from small interfaces only: the
	// policies first, then analytics, then ad spaces (which count fills
	// into analytics), then the user system, which tells ad spaces of new
	// accounts. No part needs one built after it.
	ac := c.Auth
	if ac.Tiers == nil {
		if ac.Tiers, err = auth.NewTiers(auth.DefaultTiers()); err != nil {
			return nil, err
		}
	}
	if ac.RBAC == nil {
		if ac.RBAC, err = auth.NewRBAC(auth.DefaultRolePermissions()); err != nil {
			return nil, err
		}
	}
	ac.Logger = cmp.Or(ac.Logger, c.Logger)
	if c.Now != nil {
		for _, now := range []*func() time.Time{&ac.Now, &c.Tokens.Now, &c.AdSpaces.Now, &c.Analytics.Now, &c.Billing.Now} {
			if *now == nil {
				*now = c.Now
			}
		}
	}
	authz, err := auth.NewAuthorizer(ac.RBAC, cmp.Or[auth.AuditLog](ac.Audit, c.Store), ac.Logger, ac.Now)
	if err != nil {
		return nil, err
	}
	sealer, err := tracking.NewSealer(keys.Tracking, nil)
	if err != nil {
		return nil, fmt.Errorf("adshare: Keys.Tracking: %w", err)
	}

	// The realtime channel's broker and publisher, which the parts below
	// tell of what clients watch live.
	rc := c.Realtime
	if rb, ok := c.Shared.(interface{ RealtimeBroker() realtime.Broker }); ok && rc.Broker == nil {
		rc.Broker = rb.RealtimeBroker()
	}
	var pub *realtime.Publisher
	if rc.Broker != nil {
		pub = realtime.NewPublisher(rc.Broker, c.Logger)
	}

	q := c.Jobs
	if q == nil {
		if q, err = jobs.NewLocal(&jobs.LocalConfig{Logger: c.Logger}); err != nil {
			return nil, err
		}
	}
	if p, ok := c.Store.(retention.Purger); ok && !c.DisableRetention {
		if err := retention.RegisterJob(q, p, c.Retention, c.Now, c.Logger); err != nil {
			return nil, fmt.Errorf("adshare: retention: %w", err)
		}
		if err := q.Every(retention.JobKind, cmp.Or(c.RetentionInterval, retention.DefaultInterval), struct{}{}); err != nil {
			return nil, fmt.Errorf("adshare: retention: %w", err)
		}
	}
	if bs, ok := c.Store.(billing.Store); ok {
		bc := c.Billing
		setIfNil(&bc.Store, bs)
		setIfNil(&bc.Jobs, q)
		setIfNil[billing.Authorizer](&bc.Auth, authz)
		setIfNil[billing.TierSource](&bc.Tiers, auth.TierHistory{Users: cmp.Or[auth.UserStore](ac.Users, c.Store), Tiers: ac.Tiers})
		setIfNil(&bc.Audit, auth.AuditLog(c.Store))
		setIfNil(&bc.Limiter, c.Shared.Limiter())
		bc.Logger = cmp.Or(bc.Logger, c.Logger)
		setIfNil(&bc.Metrics, c.Metrics)
		if pub != nil {
			setIfNil[billing.Alerter](&bc.Alerts, pub)
		}
		if a.billing, err = billing.NewService(bc); err != nil {
			return nil, err
		}
	} else {
		c.Logger.Info("adshare: the store keeps no money (it is not a billing.Store): billing is off")
	}

	nc := c.Analytics
	setIfNil(&nc.Store, analytics.Store(c.Store))
	setIfNil(&nc.Sealer, sealer)
	setIfNil[analytics.TierSource](&nc.Tiers, auth.TierHistory{Users: cmp.Or[auth.UserStore](ac.Users, c.Store), Tiers: ac.Tiers})
	setIfNil(&nc.Bursts, c.Shared.BurstCounter())
	setIfNil(&nc.Pixels, c.Pixels)
	setIfNil(&nc.Live, c.Shared.Live())
	if pub != nil {
		nc.Live = joinLive(nc.Live, pub)
	}
	setIfNil[analytics.Authorizer](&nc.Auth, authz)
	setIfNil(&nc.Users, analytics.UserStats(c.Store))
	if a.billing != nil {
		setIfNil[analytics.Settled](&nc.Settled, settledFigures{a.billing})
	}
	setIfNil(&nc.Metrics, c.Metrics)
	nc.Logger = cmp.Or(nc.Logger, c.Logger)
	if a.analytics, err = analytics.NewService(nc); err != nil {
		return nil, err
	}

	sc := c.AdSpaces
	setIfNil(&sc.Spaces, adspace.Store(c.Store))
	setIfNil(&sc.Contents, adspace.ContentStore(c.Store))
	setIfNil[adspace.UserReader](&sc.Users, c.Store)
	setIfNil[adspace.Authorizer](&sc.Auth, authz)
	setIfNil(&sc.Audit, auth.AuditLog(c.Store))
	setIfNil(&sc.Tiers, ac.Tiers)
	setIfNil(&sc.Decider, c.Decider)
	setIfNil(&sc.Sealer, sealer)
	if sc.ViewerKeySecret == nil {
		sc.ViewerKeySecret = keys.Viewer
	}
	setIfNil(&sc.Broadcaster, c.Shared.Broadcaster())
	setIfNil[adspace.FillRecorder](&sc.Fills, a.analytics)
	if pub != nil {
		setIfNil[adspace.ChangeNotifier](&sc.Changes, pub)
	}
	if a.billing != nil {
		setIfNil[adspace.Funding](&sc.Funding, a.billing)
	}
	consents, _ := c.Store.(auth.ConsentStore)
	if consents != nil {
		setIfNil[adspace.ConsentReader](&sc.Consents, consents)
	}
	sc.Logger = cmp.Or(sc.Logger, c.Logger)
	if a.spaces, err = adspace.NewService(sc); err != nil {
		return nil, err
	}

	setIfNil(&ac.Users, auth.UserStore(c.Store))
	setIfNil(&ac.Sessions, auth.SessionStore(c.Store))
	setIfNil(&ac.Identities, auth.IdentityStore(c.Store))
	setIfNil(&ac.Audit, auth.AuditLog(c.Store))
	setIfNil(&ac.Limiter, c.Shared.Limiter())
	setIfNil(&ac.Revocations, c.Shared.RevocationList())
	setIfNil(&ac.OneTime, c.Shared.OneTimeStore())
	revocations := ac.Revocations
	if rc.Broker != nil { // revocations close connections on every instance at once
		ac.Revocations = &realtime.RevocationNotifier{RevocationList: revocations, Broker: rc.Broker, Logger: c.Logger}
	}
	if ac.Tokens == nil {
		if ac.Tokens, err = newTokens(keys, c.Tokens); err != nil {
			return nil, err
		}
	}
	if ac.RefreshKey == nil {
		ac.RefreshKey = keys.Refresh
	}
	ac.AccountObservers = append([]auth.AccountObserver{a.spaces}, ac.AccountObservers...)
	if consents != nil {
		setIfNil(&ac.Consents, consents)
	}
	observers := []auth.ConsentObserver{a.spaces}
	if pub != nil {
		observers = append(observers, pub)
	}
	ac.ConsentObservers = append(observers, ac.ConsentObservers...)
	setIfNil(&ac.Metrics, c.Metrics)
	if a.auth, err = auth.NewService(ac); err != nil {
		return nil, err
	}

	if rc.Broker != nil {
		setIfNil[realtime.Auth](&rc.Auth, a.auth)
		setIfNil(&rc.Revocations, revocations)
		rc.Logger = cmp.Or(rc.Logger, c.Logger)
		setIfNil(&rc.Metrics, c.Metrics)
		if rc.Now == nil {
			rc.Now = c.Now
		}
		if a.hub, err = realtime.NewHub(rc); err != nil {
			return nil, err
		}
	}

	if ps, ok := c.Store.(privacy.Store); ok {
		pc := a.privacyConfig(&c, c.Privacy, ps, keys)
		setIfNil(&pc.Jobs, q)
		if a.privacy, err = privacy.NewService(pc); err != nil {
			return nil, err
		}
	} else {
		c.Logger.Info("adshare: the store keeps no exports (it is not a privacy.Store): export and erasure are off")
	}

	hc := c.HTTP
	if a.hub != nil {
		setIfNil(&hc.Realtime, a.hub)
		if hc.Announcer == nil {
			if hc.Announcer, err = realtime.NewAnnouncer(pub, a.auth, auth.AuditLog(c.Store)); err != nil {
				return nil, err
			}
		}
	}
	setIfNil(&hc.Auth, a.auth)
	setIfNil(&hc.AdSpaces, a.spaces)
	setIfNil(&hc.Analytics, a.analytics)
	setIfNil(&hc.Billing, a.billing)
	setIfNil(&hc.Privacy, a.privacy)
	hc.Logger = cmp.Or(hc.Logger, c.Logger)
	if hc.Metrics == nil {
		hc.Metrics = c.Metrics
	}
	hc.ReadinessChecks = append(readinessChecks(c.Store, c.Shared), hc.ReadinessChecks...)
	if a.handler, err = transport.New(hc); err != nil {
		return nil, err
	}

	parts := []part{part{"store", c.Store}, part{"shared", c.Shared}, part{"decider", c.Decider}, part{"pixels", c.Pixels},
		part{"processor", c.Billing.Processor}, part{"analytics", a.analytics}, part{"adspace", a.spaces}}
	if a.hub != nil {
		parts = append(parts, part{"realtime", a.hub})
	}
	a.life = newLifecycle(c.Logger, append(parts, part{"jobs", q})...)
	return a, nil
}

// Handler returns the HTTP API. Mount it at the root of the host's server,
// or under a prefix with http.StripPrefix (then set HTTP.PublicBaseURL to
// the prefixed URL, so that tracking links point back to it).
func (a *App) Handler() http.Handler { return a.handler }

// Auth returns the user system.
func (a *App) Auth() *auth.Service { return a.auth }

// AdSpaces returns the ad space system: settings, content, moderation and
// fills.
func (a *App) AdSpaces() *adspace.Service { return a.spaces }

// Analytics returns event ingest and reports.
func (a *App) Analytics() *analytics.Service { return a.analytics }

// Billing returns the money, or nil when the Store keeps none.
func (a *App) Billing() *billing.Service { return a.billing }

// Privacy returns exports and erasures, or nil when the Store keeps none.
func (a *App) Privacy() *privacy.Service { return a.privacy }

// Realtime returns the realtime channel's hub, or nil without a broker.
func (a *App) Realtime() *realtime.Hub { return a.hub }

// lives tells several analytics.Live of every group commit.
type lives []analytics.Live

func (l lives) Accepted(ctx context.Context, events []analytics.Event) {
	for _, x := range l {
		x.Accepted(ctx, events)
	}
}

// joinLive is a and b together; a may be nil.
func joinLive(a, b analytics.Live) analytics.Live {
	if a == nil {
		return b
	}
	return lives{a, b}
}

// settledFigures gives analytics' revenue report billing's final figures.
type settledFigures struct{ b *billing.Service }

func (f settledFigures) Settled(ctx context.Context, owner uuid.UUID, from, to time.Time) (analytics.SettledFigures, error) {
	s, err := f.b.Settled(ctx, owner, from, to)
	return analytics.SettledFigures{OwnerMicros: s.OwnerMicros, PlatformMicros: s.PlatformMicros, PaidOutMicros: s.PaidOutMicros}, err
}

// Start starts, in dependency order, every part that runs in the
// background: the Store, Shared, the Decider and Pixels when they have a
// Start method, then analytics (fill counts) and ad spaces (invalidations
// from other instances). When one fails, those already started are stopped
// again and its error is returned. Start the App before serving its
// Handler; it returns nil when already started, and an error after Stop.
func (a *App) Start(ctx context.Context) error { return a.life.start(ctx) }

// Stop stops every part in the reverse order of Start, so that each drains
// into what it depends on: ad spaces, then analytics (the events queued
// are committed), then Pixels (the pixels of those events are fired), the
// Decider, Shared and the Store. Stop the HTTP server first
// (http.Server.Shutdown), so that no request arrives meanwhile; a request
// that does is answered 503. ctx bounds the whole stop: when it ends, Stop
// goes on stopping the rest without waiting and returns ctx's error. It is
// idempotent and safe before Start.
func (a *App) Stop(ctx context.Context) error { return a.life.stop(ctx) }

// setIfNil sets *dst to v when *dst is nil (an interface or pointer) and v
// is not a nil interface.
func setIfNil[T comparable](dst *T, v T) {
	var zero T
	if *dst == zero {
		*dst = v
	}
}

// withDefaults replaces nil keys by random ones, warning of each.
func (k Keys) withDefaults(logger *slog.Logger) (Keys, error) {
	warn := func(field, consequence string) {
		logger.Warn("adshare: Config.Keys." + field + " is not set; using a random key: " + consequence)
	}
	var err error
	if k.Signing == nil {
		warn("Signing", "access tokens die with this process, and other instances cannot verify them")
		if k.Signing, err = auth.GenerateSigningKey(); err != nil {
			return k, err
		}
	}
	if k.Refresh == nil {
		warn("Refresh", "instances disagree on refresh-token successors")
		k.Refresh = randomKey()
	}
	if k.Tracking == nil {
		warn("Tracking", "tracking tokens die with this process")
		k.Tracking = [][]byte{randomKey()}
	}
	if k.Viewer == nil {
		warn("Viewer", "viewers' pseudonymous keys change with every start")
		k.Viewer = randomKey()
	}
	return k, nil
}

func randomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// newTokens makes the access-token issuer from the keys.
func newTokens(k Keys, cfg auth.TokenConfig) (*auth.Tokens, error) {
	set, err := auth.NewKeySet(k.Signing, k.Verify...)
	if err != nil {
		return nil, fmt.Errorf("adshare: Keys: %w", err)
	}
	cfg.Issuer = cmp.Or(cfg.Issuer, DefaultIssuer)
	return auth.NewTokens(set, cfg)
}

// readinessChecks asks the Store and Shared, when they can be pinged.
func readinessChecks(parts ...any) []transport.ReadinessCheck {
	var checks []transport.ReadinessCheck
	for i, p := range parts {
		pinger, ok := p.(interface{ Ping(context.Context) error })
		if !ok {
			continue
		}
		name := [...]string{"store", "shared"}[i]
		if n, ok := p.(interface{ Name() string }); ok {
			name = n.Name()
		}
		checks = append(checks, transport.ReadinessCheck{Name: name, Check: pinger.Ping})
	}
	return checks
}
