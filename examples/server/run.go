package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/lmittmann/tint"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/auth/oidc"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/redis"
	"github.com/adshare/adshare/transport"
)

// run is the whole program; main only handles signals and the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	name := "server"
	if len(args) > 0 {
		name = filepath.Base(args[0])
		args = args[1:]
	}
	if len(args) > 0 && args[0] == "migrate" {
		return runMigrate(ctx, name+" migrate", args[1:], getenv, stdout)
	}
	if len(args) > 0 && args[0] == "users" {
		return runUsers(ctx, name+" users", args[1:], getenv, stdout)
	}
	cfg, rest, err := parseConfig(name, args, getenv, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q; the subcommands are migrate and users", rest[0])
	}
	logger := newLogger(stdout, cfg.logFormat, cfg.logLevel)
	return serve(ctx, cfg, logger)
}

// deps are the adapters the server runs on, chosen by configuration.
type deps struct {
	checks  []transport.ReadinessCheck
	closers []func()
	auth    *auth.Service
	spaces  *adspace.Service
	events  *analytics.Service
	limiter auth.Limiter
}

func (d *deps) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

// authStores is every store the user system needs.
type authStores interface {
	auth.UserStore
	auth.SessionStore
	auth.IdentityStore
	auth.AuditLog
	adspace.Store
	adspace.ContentStore
	analytics.Store
	analytics.UserStats
}

// openDeps connects to PostgreSQL and Redis when configured, falls back to
// in-process equivalents otherwise, and builds the user system on them.
func openDeps(ctx context.Context, cfg config, logger *slog.Logger, reg prometheus.Registerer) (_ *deps, err error) {
	d := &deps{}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	var stores authStores
	if cfg.databaseURL != "" {
		db, err := postgres.Open(ctx, cfg.databaseURL, &postgres.Config{Logger: logger})
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, db.Close)
		if cfg.migrateOnStart {
			applied, err := db.Migrate(ctx)
			if err != nil {
				return nil, err
			}
			logger.InfoContext(ctx, "migrations applied", slog.Int("count", len(applied)))
		}
		d.checks = append(d.checks, transport.ReadinessCheck{Name: "postgres", Check: db.Ping})
		stores = db
		d.closers = append(d.closers, maintainPartitions(db, cfg.eventRetention, logger))
		logger.InfoContext(ctx, "store: postgres")
	} else {
		store := memory.New()
		d.checks = append(d.checks, transport.ReadinessCheck{Name: "store", Check: store.Ping})
		stores = store
		logger.InfoContext(ctx, "store: in memory (nothing survives a restart; set DATABASE_URL for PostgreSQL)")
	}

	var (
		revocations auth.RevocationList
		onetime     auth.OneTimeStore
		bus         adspace.Broadcaster
		rc          *redis.Client
	)
	if cfg.redisURL != "" {
		rc, err = redis.Open(ctx, cfg.redisURL, &redis.Config{Prefix: cfg.redisPrefix})
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, func() { _ = rc.Close() })
		list := rc.RevocationList(&redis.RevocationListOptions{Logger: logger})
		if err := list.Start(ctx); err != nil {
			return nil, err
		}
		d.closers = append(d.closers, func() { _ = list.Stop(context.Background()) })
		d.checks = append(d.checks, transport.ReadinessCheck{Name: "redis", Check: rc.Ping})
		d.limiter, revocations, onetime, bus = rc.Limiter(), list, rc.OneTimeStore(), rc.Bus(logger)
		logger.InfoContext(ctx, "redis: connected")
	} else {
		d.limiter, revocations, onetime, bus = memory.NewLimiter(), memory.NewRevocationList(), memory.NewOneTimeStore(), memory.NewBus()
	}

	d.auth, err = newAuthService(ctx, cfg, logger, stores, d.limiter, revocations, onetime, func(ctx context.Context, u auth.User) error {
		return d.spaces.CreateSpace(ctx, u.ID)
	})
	if err != nil {
		return nil, err
	}
	var closers []func()
	if d.spaces, d.events, closers, err = newAdSpaces(ctx, cfg, logger, reg, stores, d.auth, bus, rc); err != nil {
		return nil, err
	}
	d.closers = append(d.closers, closers...)
	return d, nil
}

// newAdSpaces builds the ad space system and analytics on the configured
// decider: Kevel (cached) when configured, else the local engine.
func newAdSpaces(ctx context.Context, cfg config, logger *slog.Logger, reg prometheus.Registerer, stores authStores,
	authSvc *auth.Service, bus adspace.Broadcaster, rc *redis.Client) (*adspace.Service, *analytics.Service, []func(), error) {
	var closers []func()
	fail := func(err error) (*adspace.Service, *analytics.Service, []func(), error) {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		return nil, nil, nil, err
	}
	trackingKeys := cfg.trackingKeys
	if trackingKeys == nil {
		logger.WarnContext(ctx, "adspace: no ADSHARE_TRACKING_KEYS; sealing tracking tokens with a random key, so they die with this process")
		trackingKeys = [][]byte{randomKey()}
	}
	sealer, err := analytics.NewSealer(trackingKeys, nil)
	if err != nil {
		return fail(err)
	}
	viewerSecret := cfg.viewerSecret
	if viewerSecret == nil {
		logger.WarnContext(ctx, "adspace: no ADSHARE_VIEWER_KEY_SECRET; viewers' pseudonymous keys change with every start")
		viewerSecret = randomKey()
	}
	// The local engine reads its inventory from the ad space service,
	// which needs the engine: the inventory is bound once both exist.
	inv := &lateInventory{}
	dec, err := newDeciders(ctx, cfg, logger, reg, rc, inv, stores)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, dec.close)

	var (
		live   analytics.Live                                    // running figures in Redis, when there is one
		bursts analytics.BurstCounter = memory.NewBurstCounter() // shared through Redis, when there is one
	)
	if rc != nil {
		live, bursts = rc.LiveCounters(logger), rc.BurstCounter()
	}
	events, err := analytics.NewService(analytics.Config{
		Store: stores, Sealer: sealer, Tiers: authSvc, Bursts: bursts, Pixels: dec.pixels,
		Live: live, Auth: authSvc, Users: stores, Logger: logger,
	})
	if err != nil {
		return fail(err)
	}
	if err := events.Start(ctx); err != nil {
		return fail(err)
	}
	closers = append(closers, events.Close)

	spaces, err := adspace.NewService(adspace.Config{
		Spaces: stores, Contents: stores, Users: stores, Auth: authSvc, Audit: stores, Tiers: authSvc.Tiers(),
		Decider: dec.decider, Sealer: sealer, ViewerKeySecret: viewerSecret, AllowAnonymous: cfg.anonymous,
		Broadcaster: bus, Fills: events, Logger: logger,
	})
	if err != nil {
		return fail(err)
	}
	inv.Inventory = spaces
	if dec.engine != nil {
		if err := dec.engine.Start(ctx); err != nil {
			logger.WarnContext(ctx, "local engine: first refresh failed", slog.Any("error", err))
		}
		closers = append(closers, func() { _ = dec.engine.Stop(context.Background()) })
	}
	if err := spaces.Start(ctx); err != nil {
		return fail(err)
	}
	closers = append(closers, spaces.Stop)
	return spaces, events, closers, nil
}

// lateInventory lets the local engine be built before the ad space service
// that supplies its candidates.
type lateInventory struct{ decision.Inventory }

func randomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// newAuthService builds the user system: keys from configuration (or
// ephemeral ones, with a warning), the OpenID Connect provider if any.
func newAuthService(ctx context.Context, cfg config, logger *slog.Logger, stores authStores,
	limiter auth.Limiter, revocations auth.RevocationList, onetime auth.OneTimeStore,
	onAccount func(context.Context, auth.User) error) (*auth.Service, error) {
	var signing ed25519.PrivateKey
	var err error
	if cfg.jwtSeed != nil {
		signing, err = auth.SigningKeyFromSeed(cfg.jwtSeed)
	} else {
		logger.WarnContext(ctx, "auth: no ADSHARE_JWT_SEED; signing with a random key, so access tokens die with this process and other instances cannot verify them")
		signing, err = auth.GenerateSigningKey()
	}
	if err != nil {
		return nil, err
	}
	var verifyOnly []ed25519.PublicKey
	for _, k := range cfg.jwtVerifyKeys {
		verifyOnly = append(verifyOnly, ed25519.PublicKey(k))
	}
	keys, err := auth.NewKeySet(signing, verifyOnly...)
	if err != nil {
		return nil, err
	}
	tokens, err := auth.NewTokens(keys, auth.TokenConfig{Issuer: cfg.issuer})
	if err != nil {
		return nil, err
	}
	refreshKey := cfg.refreshKey
	if refreshKey == nil {
		logger.WarnContext(ctx, "auth: no ADSHARE_REFRESH_KEY; using a random one, so instances disagree on refresh-token successors")
		refreshKey = make([]byte, 32)
		_, _ = rand.Read(refreshKey)
	}
	var providers []auth.IdentityProvider
	if cfg.oidc.issuerURL != "" {
		p, err := oidc.New(ctx, oidc.Config{
			Name: cfg.oidc.name, IssuerURL: cfg.oidc.issuerURL, ClientID: cfg.oidc.clientID,
			ClientSecret: cfg.oidc.clientSecret, RedirectURIs: cfg.oidc.redirectURIs, NativeClientIDs: cfg.oidc.nativeClientIDs,
		})
		if err != nil {
			return nil, fmt.Errorf("oidc provider %q: %w", cfg.oidc.name, err)
		}
		providers = append(providers, p)
		logger.InfoContext(ctx, "auth: OpenID Connect provider", slog.String("name", cfg.oidc.name), slog.String("issuer", cfg.oidc.issuerURL))
	}
	return auth.NewService(auth.Config{
		Users: stores, Sessions: stores, Identities: stores, Audit: stores,
		Limiter: limiter, Revocations: revocations, OneTime: onetime,
		Tokens: tokens, RefreshKey: refreshKey, Providers: providers, Logger: logger,
		OnAccountCreated: onAccount,
	})
}

func serve(ctx context.Context, cfg config, logger *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d, err := openDeps(ctx, cfg, logger, reg)
	if err != nil {
		return err
	}
	defer d.close()
	tcfg := transport.Config{
		Logger:           logger,
		DisableAccessLog: !cfg.accessLog,
		Metrics:          reg,
		AllowedOrigins:   cfg.allowedOrigins,
		TrustedProxies:   cfg.trustedProxies,
		ReadinessChecks:  d.checks,
		Auth:             d.auth,
		AdSpaces:         d.spaces,
		Analytics:        d.events,
		PublicBaseURL:    cfg.publicURL,
		// API-wide limits are a coarse guard kept per instance, so that
		// they cost no network round trip per request; sign-in limits (in
		// auth) are shared through Redis and fail closed.
		Limiter: memory.NewLimiter(),
	}
	if cfg.hsts {
		tcfg.HSTSMaxAge = 365 * 24 * time.Hour
	}
	tcfg.ClientRateLimit = auth.Limit{Rate: cfg.clientRate, Period: time.Minute, Burst: max(cfg.clientRate/5, 1)}
	tcfg.UserRateLimit = auth.Limit{Rate: cfg.userRate, Period: time.Minute, Burst: max(cfg.userRate/5, 1)}
	api, err := transport.New(tcfg)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/", api)

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.InfoContext(ctx, "listening", slog.String("url", "http://"+ln.Addr().String()))

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	logger.InfoContext(ctx, "shutting down", slog.Duration("timeout", cfg.shutdownTimeout))
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.InfoContext(ctx, "stopped")
	return nil
}

func runMigrate(ctx context.Context, name string, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, rest, err := parseConfig(name, args, getenv, stdout)
	if err != nil {
		return err
	}
	if cfg.databaseURL == "" {
		return errors.New("migrate needs a database: set DATABASE_URL or -database-url")
	}
	if len(rest) != 1 {
		return errors.New("usage: migrate up|down|status")
	}
	logger := newLogger(stdout, cfg.logFormat, cfg.logLevel)
	db, err := postgres.Open(ctx, cfg.databaseURL, &postgres.Config{Logger: logger})
	if err != nil {
		return err
	}
	defer db.Close()
	switch rest[0] {
	case "up":
		applied, err := db.Migrate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "applied %d migration(s) %v\n", len(applied), applied)
	case "down":
		v, err := db.MigrateDown(ctx)
		if err != nil {
			return err
		}
		if v == 0 {
			fmt.Fprintln(stdout, "nothing to roll back")
		} else {
			fmt.Fprintf(stdout, "rolled back migration %d\n", v)
		}
	case "status":
		statuses, err := db.MigrationStatuses(ctx)
		if err != nil {
			return err
		}
		for _, s := range statuses {
			state := "pending"
			if s.Applied {
				state = "applied " + s.AppliedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%05d  %-40s %s\n", s.Version, s.Name, state)
		}
	default:
		return fmt.Errorf("unknown migrate action %q: want up, down or status", rest[0])
	}
	return nil
}

// newLogger logs colourised text through tint on a terminal and JSON lines
// otherwise (or as asked).
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	if format == "auto" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(tint.NewHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}))
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// runUsers administers accounts from the command line: today, giving the
// first admin their role (`users set-role <email> <role>`), which nobody
// can do over the API before an admin exists. It needs DATABASE_URL, and it
// writes an audit event naming the command line as the actor.
func runUsers(ctx context.Context, name string, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, rest, err := parseConfig(name, args, getenv, stdout)
	if err != nil {
		return err
	}
	if cfg.databaseURL == "" {
		return errors.New("users needs a database: set DATABASE_URL or -database-url")
	}
	if len(rest) != 3 || rest[0] != "set-role" {
		return errors.New("usage: users set-role <email> <role>")
	}
	email, err := auth.NormalizeEmail(rest[1])
	if err != nil {
		return fmt.Errorf("email: %w", err)
	}
	role := auth.Role(rest[2])
	if !role.Valid() {
		return fmt.Errorf("role %q: want one of %v", role, auth.Roles)
	}
	db, err := postgres.Open(ctx, cfg.databaseURL, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := db.UserByEmail(ctx, email)
	if err != nil {
		return err
	}
	now := time.Now()
	if _, err := db.SetRole(ctx, u.ID, role, now); err != nil {
		return err
	}
	if err := db.AppendAudit(ctx, auth.AuditEvent{At: now, Action: auth.AuditRoleChanged, TargetType: "user", TargetID: u.ID.String(),
		Outcome: auth.OutcomeSuccess, Reason: "command_line", Details: map[string]string{"from": string(u.Role), "to": string(role)}}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is now %s (sign in again, or refresh, to use the new role)\n", email, role)
	return nil
}

// maintainPartitions keeps a week of daily event partitions ahead and
// drops those past the retention, now and hourly, until the returned
// function is called.
func maintainPartitions(db *postgres.DB, retention time.Duration, logger *slog.Logger) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	run := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		now := time.Now()
		if err := db.EnsureEventPartitions(ctx, now.Add(-24*time.Hour), now.Add(7*24*time.Hour)); err != nil {
			logger.WarnContext(ctx, "postgres: event partitions not created", slog.Any("error", err))
		}
		if n, err := db.DropEventPartitionsBefore(ctx, now.Add(-retention)); err != nil {
			logger.WarnContext(ctx, "postgres: old event partitions not dropped", slog.Any("error", err))
		} else if n > 0 {
			logger.InfoContext(ctx, "postgres: old event partitions dropped", slog.Int("count", n))
		}
	}
	go func() {
		defer close(done)
		run()
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				run()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}
