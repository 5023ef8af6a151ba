// Command worker is a worker-only adshare process: it runs the durable
// background jobs (settlement of each day and release of held earnings,
// payouts and their retries, the payout schedule, processor events and
// reconciliation, and re-encryption of sealed values after a key
// rotation) from River's queue on PostgreSQL, and serves no API: only
// /healthz, /readyz and /metrics for the orchestrator and Prometheus.
//
// Jobs are rows in PostgreSQL shared by every instance on the schema, so
// API servers (examples/server with DATABASE_URL) enqueue work in the
// same transaction as the write that calls for it, and any worker runs
// it, each job once; periodic jobs are enqueued by the one instance River
// elected leader. Add workers to run more jobs at once.
//
//	DATABASE_URL=postgres://… go run ./examples/worker
//
// Configuration comes from the environment:
//
//	DATABASE_URL        PostgreSQL (required); its search_path schema holds adshare's tables
//	MIGRATE_ON_START    "true" applies pending migrations first (default: refuse to start on an old schema is the store's call)
//	JOB_WORKERS         jobs run at once (default store/postgres's DefaultJobWorkers)
//	SWEEP_INTERVAL      how often settlement, releases and stored events are swept (Go duration; default billing's)
//	ADSHARE_DATA_KEYS   comma-separated base64 32-byte data keys, the current one first, with
//	ADSHARE_DATA_INDEX_KEY  the blind-index key: then the daily re-encryption job runs too
//	ADDR                the listen address of health and metrics (default 127.0.0.1:8083)
//
// main only handles signals and the exit code; run is the program.
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
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/store/postgres"
)

// resealEvery is how often the re-encryption job runs (as the servers').
const resealEvery = 24 * time.Hour

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

// config is what the environment says.
type config struct {
	databaseURL    string
	migrateOnStart bool
	workers        int
	sweepInterval  time.Duration
	dataKeys       keyring.StaticKeys
	addr           string
}

// parseConfig reads the environment; a missing or malformed value is an
// error naming the variable.
func parseConfig(getenv func(string) string) (config, error) {
	c := config{databaseURL: getenv("DATABASE_URL"), addr: getenv("ADDR")}
	if c.databaseURL == "" {
		return c, errors.New("DATABASE_URL is required: the worker runs the jobs queued in PostgreSQL")
	}
	if s := getenv("MIGRATE_ON_START"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return c, fmt.Errorf("MIGRATE_ON_START must be true or false, got %q", s)
		}
		c.migrateOnStart = b
	}
	if s := getenv("JOB_WORKERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return c, fmt.Errorf("JOB_WORKERS must be a positive integer, got %q", s)
		}
		c.workers = n
	}
	if s := getenv("SWEEP_INTERVAL"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("SWEEP_INTERVAL must be a positive Go duration such as 15m, got %q", s)
		}
		c.sweepInterval = d
	}
	for _, k := range strings.Split(getenv("ADSHARE_DATA_KEYS"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			c.dataKeys.Data = append(c.dataKeys.Data, keyring.Secret(k))
		}
	}
	c.dataKeys.Index = keyring.Secret(strings.TrimSpace(getenv("ADSHARE_DATA_INDEX_KEY")))
	if (len(c.dataKeys.Data) > 0) != (c.dataKeys.Index != "") {
		return c, errors.New("ADSHARE_DATA_KEYS and ADSHARE_DATA_INDEX_KEY go together")
	}
	if c.addr == "" {
		c.addr = "127.0.0.1:8083"
	}
	return c, nil
}

// noFills is the worker's Decider: adshare.New wants one, and a worker
// fills no space.
type noFills struct{}

// Decide answers every placement with no ad.
func (noFills) Decide(_ context.Context, req decision.Request) (decision.Response, error) {
	return decision.Response{}, nil
}

var _ decision.Decider = noFills{}

// run works jobs until ctx ends.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := parseConfig(getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stdout, nil))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pc := &postgres.Config{Logger: logger}
	if len(cfg.dataKeys.Data) > 0 {
		ring, err := keyring.New(ctx, cfg.dataKeys)
		if err != nil {
			return fmt.Errorf("ADSHARE_DATA_KEYS: %w", err)
		}
		pc.Keyring = ring
	}
	db, err := postgres.Open(ctx, cfg.databaseURL, pc)
	if err != nil {
		return err
	}
	if cfg.migrateOnStart {
		applied, err := db.Migrate(ctx)
		if err != nil {
			return errors.Join(err, db.Stop(ctx))
		}
		logger.InfoContext(ctx, "migrations applied", slog.Int("count", len(applied)))
	}
	app, err := newApp(cfg, db, logger, reg)
	if err != nil {
		return errors.Join(err, db.Stop(ctx))
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return errors.Join(err, db.Stop(ctx))
	}
	// The App starts the store, then the queue last: jobs run from here.
	if err := app.Start(ctx); err != nil {
		_ = ln.Close()
		return err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		pctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ping(pctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"status":"unavailable","checks":{"postgres":"unavailable"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"status":"ok","checks":{"postgres":"ok"}}`)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.InfoContext(ctx, "listening", slog.String("url", "http://"+ln.Addr().String()))

	select {
	case err = <-served:
	case <-ctx.Done():
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err = errors.Join(err, srv.Shutdown(stopCtx))
	if serr := <-served; err == nil && !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	// The queue stops first (jobs running finish or are rescued by
	// another worker), then the store.
	return errors.Join(err, app.Stop(stopCtx))
}

// newApp assembles adshare on db with River's queue; only the jobs of it
// run here.
func newApp(cfg config, db *postgres.DB, logger *slog.Logger, reg prometheus.Registerer) (*adshare.App, error) {
	q, err := db.Jobs(&postgres.JobsConfig{Workers: cfg.workers, Logger: logger})
	if err != nil {
		return nil, err
	}
	if db.Keyring() != nil {
		if err := db.RegisterResealJob(q); err != nil {
			return nil, err
		}
		if err := q.Every(postgres.ResealJobKind, resealEvery, struct{}{}); err != nil {
			return nil, err
		}
	}
	c := &adshare.Config{Store: db, Shared: memory.NewShared(), Decider: noFills{}, Jobs: q, Logger: logger, Metrics: reg}
	c.Billing.SweepInterval = cfg.sweepInterval
	return adshare.New(c)
}
