package cache

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/adshare/adshare/decision"
)

func attrOf(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func TestDecideSpansSayWhereTheAdsCameFrom(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	b := setup(t, false, Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))}, nil)
	ctx := context.Background()

	_, err := b.d.Decide(ctx, banner(1)) // a miss: refill
	require.NoError(t, err)
	b.settle(t)
	_, err = b.d.Decide(ctx, banner(1)) // from the pool
	require.NoError(t, err)
	spans := rec.Ended()
	require.Len(t, spans, 2)
	require.Equal(t, "decision.cache", spans[0].Name())
	require.Equal(t, "refill", attrOf(spans[0], "adshare.outcome").AsString())
	require.EqualValues(t, 1, attrOf(spans[0], "adshare.ads").AsInt64())
	require.Equal(t, "memory", attrOf(spans[1], "adshare.outcome").AsString())

	_, err = b.d.Decide(ctx, decision.Request{})
	require.ErrorIs(t, err, decision.ErrInvalidRequest)
	last := rec.Ended()[2]
	require.Equal(t, "invalid_decision_request", attrOf(last, "adshare.outcome").AsString())
	require.Equal(t, codes.Error, last.Status().Code)
}
