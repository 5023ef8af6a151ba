package cache

import (
	"context"
	"testing"

	"github.com/adshare/adshare/internal/tracing/tracingtest"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"

	"github.com/adshare/adshare/decision"
)

func TestDecideSpansSayWhereTheAdsCameFrom(t *testing.T) {
	t.Parallel()
	rec, tp := tracingtest.NewRecorder()
	b := setup(t, false, Config{TracerProvider: tp}, nil)
	ctx := context.Background()

	_, err := b.d.Decide(ctx, banner(1)) // a miss: refill
	require.NoError(t, err)
	b.settle(t)
	_, err = b.d.Decide(ctx, banner(1)) // from the pool
	require.NoError(t, err)
	spans := rec.Ended()
	require.Len(t, spans, 2)
	require.Equal(t, "decision.cache", spans[0].Name())
	require.Equal(t, "refill", tracingtest.Attr(spans[0], "adshare.outcome").AsString())
	require.EqualValues(t, 1, tracingtest.Attr(spans[0], "adshare.ads").AsInt64())
	require.Equal(t, "memory", tracingtest.Attr(spans[1], "adshare.outcome").AsString())

	_, err = b.d.Decide(ctx, decision.Request{})
	require.ErrorIs(t, err, decision.ErrInvalidRequest)
	last := rec.Ended()[2]
	require.Equal(t, "invalid_decision_request", tracingtest.Attr(last, "adshare.outcome").AsString())
	require.Equal(t, codes.Error, last.Status().Code)
}
