// Command embed shows adshare inside a service that already exists: the
// host keeps its own mux, routes, logger and Prometheus registry, and
// mounts adshare's API under a prefix.
//
//	go run ./examples/embed                   # http://127.0.0.1:8081
//	curl localhost:8081/hello                 # the host's own route
//	curl localhost:8081/adshare/healthz       # adshare, under /adshare/
//	curl localhost:8081/metrics               # the host's registry, adshare's metrics included
//
// It runs on embedded defaults (memory store, in-process shared pieces, the
// local engine over users' own ads). A real host passes store/postgres,
// store/redis and, for Kevel, decision/cache over decision/kevel instead.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/decision/local"
	"github.com/adshare/adshare/store/memory"
)

// prefix is where the host mounts adshare.
const prefix = "/adshare"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

// run is the host service: its mux and its own route, with adshare
// mounted under prefix, until ctx ends.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("embed", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	// The host's own logger and registry; adshare logs through the one
	// and registers on the other, under a component attribute.
	logger := slog.New(slog.NewJSONHandler(stdout, nil)).With(slog.String("service", "host"))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	app, err := newAdshare(ctx, logger.With(slog.String("component", "adshare")), reg, "http://"+ln.Addr().String()+prefix)
	if err != nil {
		_ = ln.Close()
		return err
	}
	if err := app.Start(ctx); err != nil {
		_ = ln.Close()
		return err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello from the host service\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle(prefix+"/", http.StripPrefix(prefix, app.Handler()))

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.InfoContext(ctx, "listening", slog.String("url", "http://"+ln.Addr().String()))

	select {
	case err = <-served: // the listener failed
	case <-ctx.Done():
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// The server first, then adshare: nothing new arrives while queued
	// events are committed.
	err = errors.Join(err, srv.Shutdown(stopCtx))
	if serr := <-served; err == nil && !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	return errors.Join(err, app.Stop(stopCtx))
}

// newAdshare assembles adshare on embedded defaults, its tracking links
// pointing under publicURL.
func newAdshare(ctx context.Context, logger *slog.Logger, reg prometheus.Registerer, publicURL string) (*adshare.App, error) {
	store := memory.New()
	inventory, err := adspace.NewInventory(store)
	if err != nil {
		return nil, err
	}
	engine, err := local.New(local.Config{Inventory: inventory, Stats: store, Frequency: memory.NewFrequencyCounter(time.Hour), Logger: logger})
	if err != nil {
		return nil, err
	}
	cfg := &adshare.Config{
		Store: store, Shared: memory.NewShared(), Decider: engine,
		Logger: logger, Metrics: reg,
		// The keys are random here (and announced in the log); a real
		// host reads them from its secret store.
	}
	cfg.HTTP.PublicBaseURL = publicURL
	cfg.AdSpaces.AllowAnonymous = true
	logger.InfoContext(ctx, "adshare mounted", slog.String("prefix", prefix))
	return adshare.New(cfg)
}
