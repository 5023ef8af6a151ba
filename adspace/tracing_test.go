package adspace_test

import (
	"context"
	"testing"

	"github.com/adshare/adshare/internal/tracing/tracingtest"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/decisiontest"
)

func TestFillSpans(t *testing.T) {
	t.Parallel()
	rec, tp := tracingtest.NewRecorder()
	fake := &decisiontest.Fake{}
	b := setup(t, opts{decider: fake, tracer: tp})
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
	require.EqualValues(t, 1, tracingtest.Attr(dec, "adshare.placements").AsInt64())
	require.Equal(t, "ok", tracingtest.Attr(dec, "adshare.outcome").AsString())
	require.True(t, tracingtest.Attr(fill, "adshare.billable").AsBool())

	fake.Err = decision.ErrUnavailable
	_, err = b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID, Viewer: &viewer})
	require.NoError(t, err)
	spans = rec.Ended()[2:]
	require.Equal(t, "decision_unavailable", tracingtest.Attr(spans[0], "adshare.outcome").AsString())
	require.Equal(t, codes.Error, spans[0].Status().Code)
	require.Equal(t, codes.Unset, spans[1].Status().Code, "a fill that fell back did not fail")

	_, err = b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID, Count: -1})
	require.Error(t, err)
	last := rec.Ended()[len(rec.Ended())-1]
	require.Equal(t, "adspace.fill", last.Name())
	require.Equal(t, codes.Error, last.Status().Code, "a refused fill is a failed span")
}
