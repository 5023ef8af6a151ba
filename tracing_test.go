package adshare_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/adshare/adshare/internal/tracing/tracingtest"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision/cache"
	"github.com/adshare/adshare/decision/kevel"
	"github.com/adshare/adshare/decision/kevel/kevelfake"
	"github.com/adshare/adshare/store/memory"
)

// tracedKevelApp is an App deciding through the cache over Kevel (a
// fake), every part given tp, logging JSON into logs.
func tracedKevelApp(t *testing.T, tp trace.TracerProvider, logs *syncWriter) (*adshare.App, *kevelfake.Server) {
	t.Helper()
	ctx := context.Background()
	fake := kevelfake.New(kevelfake.Config{NetworkID: 23, SiteIDs: []int64{1}, Ads: []kevelfake.Ad{{
		AdType: 4, SiteID: 1, Title: "Ride further", ImageURL: "https://cdn.example.com/bike.png", Width: 320, Height: 50,
		Price: "2.50", RateType: 2, ClickThroughURL: "https://bikes.example.com/",
	}}})
	require.NoError(t, fake.Start(ctx))
	t.Cleanup(func() { _ = fake.Stop(ctx) })
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client, err := kevel.New(kevel.Config{NetworkID: 23, SiteID: 1, BaseURL: fake.URL(), RatePerSecond: -1, TracerProvider: tp,
		Logger: slog.New(adshare.WithTraceIDs(logger.Handler()))})
	require.NoError(t, err)
	firer, err := kevel.NewFirer(kevel.FirerConfig{NetworkID: 23, BaseURL: fake.URL(), TracerProvider: tp})
	require.NoError(t, err)
	cached, err := cache.New(client, &cache.Config{TracerProvider: tp})
	require.NoError(t, err)
	cfg := &adshare.Config{Store: memory.New(), Shared: memory.NewShared(), Decider: cached, Pixels: firer, Keys: testKeys(t),
		Logger: logger, TracerProvider: tp}
	cfg.AdSpaces.AllowAnonymous = true
	app, err := adshare.New(cfg)
	require.NoError(t, err)
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(ctx) })
	return app, fake
}

// spansByName indexes ended spans by name (the last of each name wins).
func spansByName(rec *tracetest.SpanRecorder) map[string]sdktrace.ReadOnlySpan {
	m := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		m[s.Name()] = s
	}
	return m
}

// logLines decodes JSON log lines whose msg is msg.
func logLines(t *testing.T, logs string, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func requireChildOf(t *testing.T, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	require.NotNil(t, child)
	require.NotNil(t, parent)
	require.Equal(t, parent.SpanContext().TraceID(), child.SpanContext().TraceID(), "%s in %s's trace", child.Name(), parent.Name())
	require.Equal(t, parent.SpanContext().SpanID(), child.Parent().SpanID(), "%s is %s's child", child.Name(), parent.Name())
}

func TestTracingFromFillToKevelAndFromIngestToPixel(t *testing.T) {
	t.Parallel()
	rec, tp := tracingtest.NewRecorder()
	logs := &syncWriter{w: &bytes.Buffer{}}
	app, fake := tracedKevelApp(t, tp, logs)
	ctx := context.Background()
	owner, _, err := app.Auth().Register(ctx, auth.Registration{Email: "owner@example.com", Password: "a long enough passphrase"})
	require.NoError(t, err)
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()

	token, ok := fillOnce(srv.Client(), srv.URL, owner.ID, "device-1")
	require.True(t, ok, "the fill has an ad")
	fill := spansByName(rec)
	server := fill["GET /ad-space/{userId}"]
	require.NotNil(t, server, "spans: %v", fill)
	require.Equal(t, trace.SpanKindServer, server.SpanKind())
	requireChildOf(t, fill["adspace.fill"], server)
	requireChildOf(t, fill["decision.decide"], fill["adspace.fill"])
	requireChildOf(t, fill["decision.cache"], fill["decision.decide"])
	requireChildOf(t, fill["kevel.decide"], fill["decision.cache"])
	for _, r := range fake.DecisionRequests() {
		require.Empty(t, r.Header.Get("Traceparent"), "no trace header reaches Kevel")
	}

	// The access log of the fill carries its trace.
	access := logLines(t, logs.String(), "http request")
	require.NotEmpty(t, access)
	require.Equal(t, server.SpanContext().TraceID().String(), access[len(access)-1]["trace_id"])
	require.Equal(t, server.SpanContext().SpanID().String(), access[len(access)-1]["span_id"])
	kevelLog := logLines(t, logs.String(), "kevel: decision")
	require.NotEmpty(t, kevelLog)
	require.Equal(t, server.SpanContext().TraceID().String(), kevelLog[0]["trace_id"], "the host's Kevel logger carries it too")

	require.Equal(t, http.StatusOK, postImpression(srv.Client(), srv.URL, token))
	require.NoError(t, app.Stop(ctx)) // the pixel is fired by then
	all := spansByName(rec)
	events := all["POST /events"]
	requireChildOf(t, all["analytics.ingest"], events)
	commit := all["analytics.commit"]
	require.NotNil(t, commit)
	require.False(t, commit.Parent().IsValid())
	require.Len(t, commit.Links(), 1)
	require.Equal(t, all["analytics.ingest"].SpanContext(), commit.Links()[0].SpanContext, "the commit links to the request it wrote")
	pixel := all["kevel.pixel"]
	require.NotNil(t, pixel, "the impression's pixel is traced")
	require.Len(t, pixel.Links(), 1)
	require.Equal(t, commit.SpanContext(), pixel.Links()[0].SpanContext, "the pixel links to the commit that queued it")
	require.NotEmpty(t, fake.FireLog())
}

func TestNoTracerProviderNoSpansNoTraceIDs(t *testing.T) {
	t.Parallel()
	logs := &syncWriter{w: &bytes.Buffer{}}
	app, _ := tracedKevelApp(t, nil, logs)
	ctx := context.Background()
	owner, _, err := app.Auth().Register(ctx, auth.Registration{Email: "owner@example.com", Password: "a long enough passphrase"})
	require.NoError(t, err)
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	token, ok := fillOnce(srv.Client(), srv.URL, owner.ID, "device-1")
	require.True(t, ok)
	require.Equal(t, http.StatusOK, postImpression(srv.Client(), srv.URL, token))
	require.NoError(t, app.Stop(ctx))
	require.NotEmpty(t, logLines(t, logs.String(), "http request"))
	require.NotContains(t, logs.String(), "trace_id")
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
