package main

import (
	"context"
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
	cfg, rest, err := parseConfig(name, args, getenv, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q; the only subcommand is migrate", rest[0])
	}
	logger := newLogger(stdout, cfg.logFormat, cfg.logLevel)
	return serve(ctx, cfg, logger)
}

// deps are the adapters the server runs on, chosen by configuration.
type deps struct {
	checks  []transport.ReadinessCheck
	closers []func()
}

func (d *deps) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

// openDeps connects to PostgreSQL and Redis when configured, and falls back
// to the in-memory store otherwise.
func openDeps(ctx context.Context, cfg config, logger *slog.Logger) (*deps, error) {
	d := &deps{}
	if cfg.databaseURL != "" {
		db, err := postgres.Open(ctx, cfg.databaseURL, &postgres.Config{Logger: logger})
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, db.Close)
		if cfg.migrateOnStart {
			applied, err := db.Migrate(ctx)
			if err != nil {
				d.close()
				return nil, err
			}
			logger.InfoContext(ctx, "migrations applied", slog.Int("count", len(applied)))
		}
		d.checks = append(d.checks, transport.ReadinessCheck{Name: "postgres", Check: db.Ping})
		logger.InfoContext(ctx, "store: postgres")
	} else {
		store := memory.New()
		d.checks = append(d.checks, transport.ReadinessCheck{Name: "store", Check: store.Ping})
		logger.InfoContext(ctx, "store: in memory (nothing survives a restart; set DATABASE_URL for PostgreSQL)")
	}
	if cfg.redisURL != "" {
		rc, err := redis.Open(ctx, cfg.redisURL, nil)
		if err != nil {
			d.close()
			return nil, err
		}
		d.closers = append(d.closers, func() { _ = rc.Close() })
		d.checks = append(d.checks, transport.ReadinessCheck{Name: "redis", Check: rc.Ping})
		logger.InfoContext(ctx, "redis: connected")
	}
	return d, nil
}

func serve(ctx context.Context, cfg config, logger *slog.Logger) error {
	d, err := openDeps(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer d.close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	tcfg := transport.Config{
		Logger:          logger,
		Metrics:         reg,
		AllowedOrigins:  cfg.allowedOrigins,
		ReadinessChecks: d.checks,
	}
	if cfg.hsts {
		tcfg.HSTSMaxAge = 365 * 24 * time.Hour
	}
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
