package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
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

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/auth/oidc"
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
	if len(args) > 0 && args[0] == "check" {
		return runCheck(ctx, name+" check", args[1:], getenv, stdout)
	}
	if len(args) > 0 && args[0] == "keys" {
		return runKeys(ctx, name+" keys", args[1:], getenv, stdout)
	}
	if len(args) > 0 && args[0] == "probe" {
		return runProbe(ctx, name+" probe", args[1:], stdout)
	}
	cfg, rest, err := parseConfig(name, args, getenv, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q; the subcommands are migrate, users, check, keys and probe", rest[0])
	}
	logger := newLogger(stdout, cfg.logFormat, cfg.logLevel)
	return serve(ctx, cfg, logger)
}

// perMinute is a limit of n requests a minute in bursts of a fifth.
func perMinute(n int) auth.Limit {
	return auth.Limit{Rate: n, Period: time.Minute, Burst: max(n/5, 1)}
}

// openStore connects to PostgreSQL when configured (migrating first if
// asked), and falls back to the in-memory store.
func openStore(ctx context.Context, cfg config, logger *slog.Logger) (adshare.Store, error) {
	if cfg.databaseURL == "" {
		logger.InfoContext(ctx, "store: in memory (nothing survives a restart; set DATABASE_URL for PostgreSQL)")
		return memory.New(), nil
	}
	pc, err := postgresConfig(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if pc.Keyring == nil {
		logger.WarnContext(ctx, "store: no ADSHARE_DATA_KEYS; emails, names and addresses are stored in the clear (set the data keys, then run keys rotate)")
	}
	db, err := postgres.Open(ctx, cfg.databaseURL, pc)
	if err != nil {
		return nil, err
	}
	if cfg.migrateOnStart {
		applied, err := db.Migrate(ctx)
		if err != nil {
			_ = db.Stop(ctx)
			return nil, err
		}
		logger.InfoContext(ctx, "migrations applied", slog.Int("count", len(applied)))
	}
	logger.InfoContext(ctx, "store: postgres")
	return db, nil
}

// redisConfigured reports whether a Redis (a server or a cluster) is
// configured.
func (c config) redisConfigured() bool { return c.redisURL != "" || len(c.redisCluster) > 0 }

// openRedis connects to the configured Redis: the Redis Cluster when
// redis-cluster is set, else the server at redis-url. A zero dialTimeout
// means store/redis's default.
func openRedis(ctx context.Context, cfg config, dialTimeout time.Duration) (*redis.Client, error) {
	rcfg := &redis.Config{Prefix: cfg.redisPrefix, DialTimeout: dialTimeout}
	if cfg.redisCA != "" {
		pem, err := os.ReadFile(cfg.redisCA)
		if err != nil {
			return nil, fmt.Errorf("redis-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("redis-ca: no PEM certificate in the file")
		}
		rcfg.TLS = &tls.Config{RootCAs: pool}
	}
	if len(cfg.redisCluster) > 0 {
		rcfg.Password = cfg.redisPassword
		return redis.OpenCluster(ctx, cfg.redisCluster, rcfg)
	}
	return redis.Open(ctx, cfg.redisURL, rcfg)
}

// openShared connects to Redis when configured, and falls back to
// in-process equivalents; the client is nil then.
func openShared(ctx context.Context, cfg config, logger *slog.Logger) (adshare.Shared, *redis.Client, error) {
	if !cfg.redisConfigured() {
		return memory.NewShared(), nil, nil
	}
	rc, err := openRedis(ctx, cfg, 0)
	if err != nil {
		return nil, nil, err
	}
	if len(cfg.redisCluster) > 0 {
		logger.InfoContext(ctx, "redis: connected to the cluster", slog.Any("nodes", cfg.redisCluster))
	} else {
		logger.InfoContext(ctx, "redis: connected")
	}
	return rc.Shared(&redis.SharedOptions{Logger: logger}), rc, nil
}

// appConfig is the assembly's configuration from the server's.
func appConfig(ctx context.Context, cfg config, logger *slog.Logger, reg prometheus.Registerer) (*adshare.Config, error) {
	c := &adshare.Config{
		Logger:  logger,
		Metrics: reg,
		Tokens:  auth.TokenConfig{Issuer: cfg.issuer},
		Keys: adshare.Keys{
			Refresh: cfg.refreshKey, Tracking: cfg.trackingKeys, Viewer: cfg.viewerSecret,
		},
		HTTP: transport.Config{
			DisableAccessLog: !cfg.accessLog,
			AllowedOrigins:   cfg.allowedOrigins,
			TrustedProxies:   cfg.trustedProxies,
			PublicBaseURL:    cfg.publicURL,
			// API-wide limits hold per instance without Redis; with it,
			// assemble shares them through leases (no round trip per
			// request). Sign-in limits (in auth) are shared through Redis
			// and fail closed.
			Limiter:         memory.NewLimiter(),
			ClientRateLimit: perMinute(cfg.clientRate),
			UserRateLimit:   perMinute(cfg.userRate),
		},
	}
	for class, rate := range cfg.routeRates {
		if c.HTTP.RouteLimits == nil {
			c.HTTP.RouteLimits = map[transport.RouteClass]auth.Limit{}
		}
		c.HTTP.RouteLimits[class] = perMinute(rate)
	}
	c.AdSpaces.AllowAnonymous = cfg.anonymous
	c.Retention.RawEvents = cfg.eventRetention // the retention job agrees with the store's partition upkeep
	if cfg.hsts {
		c.HTTP.HSTSMaxAge = 365 * 24 * time.Hour
	}
	// Missing keys are random, as the library would make them, but
	// announced by the variable an operator sets.
	seed := cfg.jwtSeed
	if seed == nil {
		logger.WarnContext(ctx, "auth: no ADSHARE_JWT_SEED; signing with a random key, so access tokens die with this process and other instances cannot verify them")
		seed = randomKey()
	}
	signing, err := auth.SigningKeyFromSeed(seed)
	if err != nil {
		return nil, err
	}
	c.Keys.Signing = signing
	for _, k := range []struct {
		dst           *[]byte
		name, warning string
	}{
		{&c.Keys.Refresh, "ADSHARE_REFRESH_KEY", "instances disagree on refresh-token successors"},
		{&c.Keys.Viewer, "ADSHARE_VIEWER_KEY_SECRET", "viewers' pseudonymous keys change with every start"},
	} {
		if *k.dst == nil {
			logger.WarnContext(ctx, "no "+k.name+"; using a random key, so "+k.warning)
			*k.dst = randomKey()
		}
	}
	if c.Keys.Tracking == nil {
		logger.WarnContext(ctx, "no ADSHARE_TRACKING_KEYS; sealing tracking tokens with a random key, so they die with this process")
		c.Keys.Tracking = [][]byte{randomKey()}
	}
	for _, k := range cfg.jwtVerifyKeys {
		c.Keys.Verify = append(c.Keys.Verify, ed25519.PublicKey(k))
	}
	if cfg.oidc.issuerURL != "" {
		p, err := oidc.New(ctx, oidc.Config{
			Name: cfg.oidc.name, IssuerURL: cfg.oidc.issuerURL, ClientID: cfg.oidc.clientID,
			ClientSecret: cfg.oidc.clientSecret, RedirectURIs: cfg.oidc.redirectURIs, NativeClientIDs: cfg.oidc.nativeClientIDs,
		})
		if err != nil {
			return nil, fmt.Errorf("oidc provider %q: %w", cfg.oidc.name, err)
		}
		c.Auth.Providers = append(c.Auth.Providers, p)
		logger.InfoContext(ctx, "auth: OpenID Connect provider", slog.String("name", cfg.oidc.name), slog.String("issuer", cfg.oidc.issuerURL))
	}
	return c, nil
}

func serve(ctx context.Context, cfg config, logger *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	logger.InfoContext(ctx, "starting", slog.String("version", version))
	d := &drainer{}
	app, cleanup, err := assemble(ctx, cfg, logger, reg, d.install)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := app.Start(ctx); err != nil {
		return err
	}
	return serveHTTP(ctx, cfg, logger, reg, app, d)
}

// assemble opens what cfg names and builds the App on it, not started;
// tweak, when given, changes the assembly's configuration last (tests use
// it for a clock or a processor). cleanup stops what the App does not
// know of, after the App stopped.
func assemble(ctx context.Context, cfg config, logger *slog.Logger, reg prometheus.Registerer, tweak ...func(*adshare.Config)) (app *adshare.App, cleanup func(), err error) {
	if err := cfg.servable(); err != nil {
		return nil, nil, err
	}
	c, err := appConfig(ctx, cfg, logger, reg)
	if err != nil {
		return nil, nil, err
	}
	// Until the App exists, what was opened is stopped here; then the App
	// stops it.
	if c.Store, err = openStore(ctx, cfg, logger); err != nil {
		return nil, nil, err
	}
	if db, ok := c.Store.(*postgres.DB); ok && reg != nil {
		if err := reg.Register(db.PoolCollector()); err != nil {
			stopAll(ctx, c.Store)
			return nil, nil, err
		}
	}
	var rc *redis.Client
	if c.Shared, rc, err = openShared(ctx, cfg, logger); err != nil {
		stopAll(ctx, c.Store)
		return nil, nil, err
	}
	d, err := newDeciders(ctx, cfg, logger, reg, c.Store, rc)
	if err != nil {
		stopAll(ctx, c.Shared, c.Store)
		return nil, nil, err
	}
	cleanup = func() {
		if d.fake != nil {
			stopAll(ctx, d.fake) // the App does not know of the fake network
		}
	}
	c.Decider, c.Pixels, c.ViewerForgetter = d.decider, d.pixels, d.forget
	if d.userDB != nil {
		c.AdSpaces.UserDB = d.userDB
	}
	if rc != nil { // API-wide limits shared by the fleet, per instance while Redis is down
		c.HTTP.Limiter = rc.LeasedLimiter(&redis.LeasedLimiterOptions{Fallback: c.HTTP.Limiter, Logger: logger})
	}
	if err := setBilling(ctx, cfg, logger, reg, c); err != nil {
		stopAll(ctx, d.pixels, d.decider, c.Shared, c.Store)
		cleanup()
		return nil, nil, err
	}
	for _, t := range tweak {
		t(c)
	}
	if app, err = adshare.New(c); err != nil {
		stopAll(ctx, c.Billing.Processor, d.pixels, d.decider, c.Shared, c.Store)
		cleanup()
		return nil, nil, err
	}
	if err := bootstrapAdmin(ctx, cfg, logger, app.Auth(), c.Store); err != nil {
		_ = app.Stop(context.WithoutCancel(ctx))
		cleanup()
		return nil, nil, err
	}
	return app, cleanup, nil
}

// bootstrapAdmin makes cfg's admin account (-admin-email with
// -admin-password) when no account has the email: registered like any
// account, then given the admin role, with an audit event naming the
// configuration as the actor. On the in-memory store, where `users
// set-role` cannot reach, it is how a server gets its first admin. An
// existing account is never promoted: whoever registered the email first
// may not be the operator.
func bootstrapAdmin(ctx context.Context, cfg config, logger *slog.Logger, a *auth.Service, store adshare.Store) error {
	if cfg.adminEmail == "" {
		return nil
	}
	switch u, err := store.UserByEmail(ctx, cfg.adminEmail); {
	case err == nil:
		if u.Role != auth.RoleAdmin {
			logger.WarnContext(ctx, "admin-email names an account that is not an admin; it is left as it is (users set-role promotes it)",
				slog.String("role", string(u.Role)))
		}
		return nil
	case !errors.Is(err, auth.ErrUserNotFound):
		return fmt.Errorf("admin-email: %w", err)
	}
	u, _, err := a.Register(ctx, auth.Registration{Email: cfg.adminEmail, Password: cfg.adminPassword, DisplayName: "Admin"})
	if err != nil {
		return fmt.Errorf("admin-email: make the account: %w", err)
	}
	now := time.Now()
	if _, err := store.SetRole(ctx, u.ID, auth.RoleAdmin, now); err != nil {
		return fmt.Errorf("admin-email: give the admin role: %w", err)
	}
	if err := store.AppendAudit(ctx, auth.AuditEvent{At: now, Action: auth.AuditRoleChanged, TargetType: "user", TargetID: u.ID.String(),
		Outcome: auth.OutcomeSuccess, Reason: "admin_email", Details: map[string]string{"from": string(u.Role), "to": string(auth.RoleAdmin)}}); err != nil {
		return err
	}
	logger.InfoContext(ctx, "made the admin account of admin-email", slog.String("user_id", u.ID.String()))
	return nil
}

// stopAll stops the parts that have a Stop method, in order, giving them
// a few seconds each whatever ctx says.
func stopAll(ctx context.Context, parts ...any) {
	for _, p := range parts {
		if s, ok := p.(interface{ Stop(context.Context) error }); ok {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = s.Stop(stopCtx)
			cancel()
		}
	}
}

// serveHTTP serves the App's API (and /metrics, and the dashboard page)
// on cfg.addr until ctx ends; then it fails readiness (through d, when
// not nil) for cfg.drainDelay while still serving, drains requests in
// flight and stops the App.
func serveHTTP(ctx context.Context, cfg config, logger *slog.Logger, reg *prometheus.Registry, app *adshare.App, d *drainer) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mountDashboard(mux)
	mux.Handle("/", app.Handler())

	var tlsCfg *tls.Config
	if cfg.tlsCert != "" {
		var err error
		if tlsCfg, err = serverTLS(cfg.tlsCert, cfg.tlsKey); err != nil {
			_ = app.Stop(context.WithoutCancel(ctx))
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		_ = app.Stop(context.WithoutCancel(ctx))
		return err
	}
	srv := &http.Server{
		TLSConfig:         tlsCfg,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	stopDebug, err := serveDebug(ctx, cfg.debugAddr, logger)
	if err != nil {
		_ = ln.Close()
		_ = app.Stop(context.WithoutCancel(ctx))
		return err
	}
	defer stopDebug()
	serveErr := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			serveErr <- srv.ServeTLS(ln, "", "")
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	logger.InfoContext(ctx, "listening", slog.String("url", cfg.scheme()+"://"+ln.Addr().String()))

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		// Readiness fails first, so that load balancers stop sending
		// before the listener closes.
		d.start()
		if cfg.drainDelay > 0 {
			logger.InfoContext(ctx, "draining: not ready, still serving", slog.Duration("delay", cfg.drainDelay))
			select {
			case err = <-serveErr:
			case <-time.After(cfg.drainDelay):
			}
		}
	}
	logger.InfoContext(ctx, "shutting down", slog.Duration("timeout", cfg.shutdownTimeout))
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownTimeout)
	defer cancel()
	// The server first, so that no request arrives while the App drains.
	if serr := srv.Shutdown(shutdownCtx); serr != nil {
		err = errors.Join(err, fmt.Errorf("graceful shutdown: %w", serr))
	}
	if serr := <-serveErr; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if serr := app.Stop(shutdownCtx); serr != nil {
		err = errors.Join(err, serr)
	}
	if err == nil {
		logger.InfoContext(ctx, "stopped")
	}
	return err
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
	defer func() { _ = db.Stop(context.WithoutCancel(ctx)) }()
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

func randomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
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
	// The keyring finds a sealed email by its blind index.
	pc, err := postgresConfig(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	db, err := postgres.Open(ctx, cfg.databaseURL, pc)
	if err != nil {
		return err
	}
	defer func() { _ = db.Stop(context.WithoutCancel(ctx)) }()
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
