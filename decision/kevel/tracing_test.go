package kevel_test

import (
	"context"
	"testing"

	"github.com/adshare/adshare/internal/tracing/tracingtest"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare/decision/kevel"
	"github.com/adshare/adshare/decision/kevel/kevelfake"
)

func recorder() (*tracetest.SpanRecorder, trace.TracerProvider) {
	rec, tp := tracingtest.NewRecorder()
	return rec, tp
}

func TestDecideSpans(t *testing.T) {
	t.Parallel()
	rec, tp := recorder()
	b := setup(t, banner, func(c *kevel.Config) { c.TracerProvider = tp })
	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")

	resp, err := b.client.Decide(ctx, oneSlot("top"))
	require.NoError(t, err)
	require.Len(t, resp.Ads["top"], 1)
	spans := rec.Ended()
	require.Len(t, spans, 1)
	s := spans[0]
	require.Equal(t, "kevel.decide", s.Name())
	require.Equal(t, trace.SpanKindClient, s.SpanKind())
	require.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID())
	require.EqualValues(t, 1, tracingtest.Attr(s, "adshare.placements").AsInt64())
	require.EqualValues(t, 1, tracingtest.Attr(s, "adshare.ads").AsInt64())
	require.Equal(t, "ok", tracingtest.Attr(s, "adshare.outcome").AsString())
	require.EqualValues(t, 200, tracingtest.Attr(s, "http.response.status_code").AsInt64())
	for _, r := range b.fake.DecisionRequests() {
		require.Empty(t, r.Header.Get("Traceparent"), "internal trace ids never reach Kevel")
		require.Empty(t, r.Header.Get("Tracestate"))
	}

	b.fake.QueueFaults(kevelfake.Fault{Status: 503})
	_, err = b.client.Decide(ctx, oneSlot("top"))
	require.Error(t, err)
	s = rec.Ended()[1]
	require.Equal(t, "unavailable", tracingtest.Attr(s, "adshare.outcome").AsString())
	require.Equal(t, codes.Error, s.Status().Code)
	require.EqualValues(t, 503, tracingtest.Attr(s, "http.response.status_code").AsInt64())
	require.NotContains(t, s.Status().Description, apiKey)
}

func TestPixelSpans(t *testing.T) {
	t.Parallel()
	rec, tp := recorder()
	b := setupPixels(t, func(c *kevel.FirerConfig) { c.TracerProvider = tp })
	ctx, commit := tp.Tracer("test").Start(context.Background(), "commit")
	require.NoError(t, b.firer.FireContext(ctx, b.ad.Tracking.ImpressionURL))
	commit.End()
	require.NoError(t, b.firer.Stop(context.Background()))

	var pixels []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "kevel.pixel" {
			pixels = append(pixels, s)
		}
	}
	require.Len(t, pixels, 1)
	s := pixels[0]
	require.Equal(t, "impression", tracingtest.Attr(s, "adshare.pixel").AsString())
	require.False(t, s.Parent().IsValid(), "a queued pixel is a span of its own")
	require.Len(t, s.Links(), 1)
	require.Equal(t, commit.SpanContext().SpanID(), s.Links()[0].SpanContext.SpanID(), "linked to what queued it")
	require.Less(t, tracingtest.Attr(s, "http.response.status_code").AsInt64(), int64(400))
	require.Equal(t, 1, b.fake.Fires(b.ad.Tracking.ImpressionURL))
}
