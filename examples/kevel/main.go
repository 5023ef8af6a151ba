// Command kevel is a Kevel-backed deployment of adshare: ad spaces are
// filled by a Kevel network through the caching decorator (decision/cache
// over decision/kevel), and Kevel's impression and click pixels are fired
// by the server once our own checks accepted the event (kevel.Firer).
// Everything else is the embedded default (memory store, in-process
// shared pieces); examples/server shows PostgreSQL and Redis.
//
//	KEVEL_NETWORK_ID=23 KEVEL_SITE_ID=1 KEVEL_API_KEY=… go run ./examples/kevel
//
// Configuration comes from the environment:
//
//	KEVEL_NETWORK_ID    the Kevel network id (required)
//	KEVEL_SITE_ID       the site the placements belong to (required)
//	KEVEL_API_KEY       the network's API key (for UserDB; optional for decisions)
//	KEVEL_BASE_URL      the Decision API's base URL (default: the network's e-<id>.adzerk.net)
//	KEVEL_CACHE_TTL     how long a cached decision pool is served (Go duration; default decision/cache's)
//	ADDR                the listen address (default 127.0.0.1:8082)
//	PUBLIC_URL          the API's public base URL, for tracking links (default http://ADDR)
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
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/decision/cache"
	"github.com/adshare/adshare/decision/kevel"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/transport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kevel:", err)
		os.Exit(1)
	}
}

// config is what the environment says.
type config struct {
	network, site int64
	apiKey        string
	baseURL       string
	cacheTTL      time.Duration
	addr          string
	publicURL     string
}

// parseConfig reads the environment; a missing or malformed value is an
// error naming the variable.
func parseConfig(getenv func(string) string) (config, error) {
	c := config{apiKey: getenv("KEVEL_API_KEY"), baseURL: getenv("KEVEL_BASE_URL"), addr: getenv("ADDR"), publicURL: getenv("PUBLIC_URL")}
	for _, v := range []struct {
		name string
		dst  *int64
	}{{"KEVEL_NETWORK_ID", &c.network}, {"KEVEL_SITE_ID", &c.site}} {
		n, err := strconv.ParseInt(getenv(v.name), 10, 64)
		if err != nil || n <= 0 {
			return c, fmt.Errorf("%s must be a positive integer (the Kevel network's), got %q", v.name, getenv(v.name))
		}
		*v.dst = n
	}
	if s := getenv("KEVEL_CACHE_TTL"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("KEVEL_CACHE_TTL must be a positive Go duration such as 30s, got %q", s)
		}
		c.cacheTTL = d
	}
	if c.addr == "" {
		c.addr = "127.0.0.1:8082"
	}
	return c, nil
}

// run serves the API until ctx ends.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := parseConfig(getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stdout, nil))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	if cfg.publicURL == "" {
		cfg.publicURL = "http://" + ln.Addr().String()
	}
	app, err := newApp(cfg, logger, reg)
	if err != nil {
		_ = ln.Close()
		return err
	}
	if err := app.Start(ctx); err != nil {
		_ = ln.Close()
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/", app.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.InfoContext(ctx, "listening", slog.String("url", "http://"+ln.Addr().String()),
		slog.Int64("kevel_network", cfg.network), slog.Int64("kevel_site", cfg.site))

	select {
	case err = <-served:
	case <-ctx.Done():
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = errors.Join(err, srv.Shutdown(stopCtx))
	if serr := <-served; err == nil && !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	// The App stops its parts in order: queued events are committed
	// before Kevel's pixels for them are fired and the firer stops.
	return errors.Join(err, app.Stop(stopCtx))
}

// newApp assembles adshare with Kevel deciding, behind the cache, and
// Kevel's firer for its pixels.
func newApp(cfg config, logger *slog.Logger, reg prometheus.Registerer) (*adshare.App, error) {
	client, err := kevel.New(kevel.Config{NetworkID: cfg.network, SiteID: cfg.site, BaseURL: cfg.baseURL,
		APIKey: kevel.Secret(cfg.apiKey), Logger: logger, Metrics: reg})
	if err != nil {
		return nil, fmt.Errorf("kevel: %w", err)
	}
	firer, err := kevel.NewFirer(kevel.FirerConfig{NetworkID: cfg.network, BaseURL: cfg.baseURL,
		APIKey: kevel.Secret(cfg.apiKey), Logger: logger, Metrics: reg})
	if err != nil {
		return nil, fmt.Errorf("kevel pixels: %w", err)
	}
	cached, err := cache.New(client, &cache.Config{TTL: cfg.cacheTTL, Logger: logger, Metrics: reg})
	if err != nil {
		return nil, err
	}
	return adshare.New(&adshare.Config{
		Store: memory.New(), Shared: memory.NewShared(), Decider: cached, Pixels: firer,
		HTTP:   transport.Config{PublicBaseURL: cfg.publicURL},
		Logger: logger, Metrics: reg,
	})
}
