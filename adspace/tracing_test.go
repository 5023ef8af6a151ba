package adspace_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/decisiontest"
)

func attrOf(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func TestFillSpans(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	fake := &decisiontest.Fake{}
	b := setup(t, opts{decider: fake, tracer: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})
	owner := b.user(t, "owner@example.com", auth.RoleAdvertiser)
	viewer := b.user(t, "viewer@example.com", auth.RoleUser)
	ctx := context.Background()

	_, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID, Viewer: &viewer})
	require.NoError(t, err)
	spans := rec.Ended()
	require.Len(t, spans, 2)
	dec, fill := spans[0], spans[1] // the child ends first
	require.Equal(t, "decision.decide", dec.Name())
	require.Equal(t, "adspace.fill", fill.Name())
	require.Equal(t, fill.SpanContext().SpanID(), dec.Parent().SpanID(), "the decision is the fill's child")
	require.EqualValues(t, 1, attrOf(dec, "adshare.placements").AsInt64())
	require.Equal(t, "ok", attrOf(dec, "adshare.outcome").AsString())
	require.True(t, attrOf(fill, "adshare.billable").AsBool())

	fake.Err = decision.ErrUnavailable
	_, err = b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID, Viewer: &viewer})
	require.NoError(t, err)
	spans = rec.Ended()[2:]
	require.Equal(t, "decision_unavailable", attrOf(spans[0], "adshare.outcome").AsString())
	require.Equal(t, codes.Error, spans[0].Status().Code)
	require.Equal(t, codes.Unset, spans[1].Status().Code, "a fill that fell back did not fail")

	_, err = b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID, Count: -1})
	require.Error(t, err)
	last := rec.Ended()[len(rec.Ended())-1]
	require.Equal(t, "adspace.fill", last.Name())
	require.Equal(t, codes.Error, last.Status().Code, "a refused fill is a failed span")
}
