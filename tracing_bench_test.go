package adshare_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/store/memory"
)

// BenchmarkFillTracing serves GET /ad-space/{userId} (an anonymous fill
// of one banner, through every middleware, from a Decider that answers
// at once, so that tracing's share is as large as it gets) with tracing
// off (no TracerProvider: the default), with OpenTelemetry's no-op
// provider, and on (the SDK, sampling everything, into a SpanRecorder
// that is reset every 4096 fills). Off must match the code before
// tracing: the README lists the figures.
func BenchmarkFillTracing(b *testing.B) {
	for _, bc := range []struct {
		name string
		tp   func() trace.TracerProvider
	}{
		{"off", func() trace.TracerProvider { return nil }},
		{"noop", func() trace.TracerProvider { return noop.NewTracerProvider() }},
		{"on", func() trace.TracerProvider {
			return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(benchRecorder))
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := &adshare.Config{Store: memory.New(), Shared: memory.NewShared(), Decider: bannerDecider(), Keys: testKeys(b)}
			cfg.AdSpaces.AllowAnonymous = true
			cfg.TracerProvider = bc.tp() // the one line a run before tracing leaves out
			benchFill(b, cfg)
		})
	}
}

var benchRecorder = tracetest.NewSpanRecorder()

func benchFill(b *testing.B, cfg *adshare.Config) {
	ctx := context.Background()
	app, err := adshare.New(cfg)
	require.NoError(b, err)
	require.NoError(b, app.Start(ctx))
	defer func() { _ = app.Stop(ctx) }()
	owner, _, err := app.Auth().Register(ctx, auth.Registration{Email: "owner@example.com", Password: "a long enough passphrase"})
	require.NoError(b, err)
	h := app.Handler()
	req := httptest.NewRequest(http.MethodGet, "/ad-space/"+owner.ID.String(), nil)
	req.Header.Set("X-Adshare-Device", "bench-device")
	req.RemoteAddr = "203.0.113.9:4000"
	serve := func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("fill: %d %s", w.Code, w.Body)
		}
	}
	serve()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		serve()
		if i%4096 == 4095 {
			b.StopTimer()
			benchRecorder.Reset()
			b.StartTimer()
		}
	}
}
