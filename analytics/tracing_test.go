package analytics_test

import (
	"context"
	"sync"
	"testing"

	"github.com/adshare/adshare/internal/tracing/tracingtest"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare/analytics"
)

// contextPixels records the span each pixel was queued in.
type contextPixels struct {
	pixels
	mu    sync.Mutex
	spans []trace.SpanContext
}

func (p *contextPixels) FireContext(ctx context.Context, url string) error {
	p.mu.Lock()
	p.spans = append(p.spans, trace.SpanContextFromContext(ctx))
	p.mu.Unlock()
	return p.Fire(url)
}

func TestIngestAndCommitSpans(t *testing.T) {
	t.Parallel()
	rec, tp := tracingtest.NewRecorder()
	px := &contextPixels{}
	b := setup(t, func(c *analytics.Config) {
		c.TracerProvider = tp
		c.Pixels = px
	})
	const requests = 8
	var wg sync.WaitGroup
	for range requests {
		tok, _ := b.served(t)
		wg.Go(func() {
			res, err := b.svc.Ingest(app, []analytics.Report{{Type: analytics.Impression, Token: tok}})
			if err != nil || res[0].Status != analytics.Accepted {
				t.Errorf("ingest: %v %+v", err, res)
			}
		})
	}
	wg.Wait()

	ingests := map[trace.SpanID]bool{}
	linked := map[trace.SpanID]bool{}
	commits := map[trace.SpanID]bool{}
	events := int64(0)
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "analytics.ingest":
			ingests[s.SpanContext().SpanID()] = true
			require.EqualValues(t, 1, tracingtest.Attr(s, "adshare.accepted").AsInt64())
		case "analytics.commit":
			commits[s.SpanContext().SpanID()] = true
			require.False(t, s.Parent().IsValid(), "a commit serves many requests: it is the child of none")
			require.Len(t, s.Links(), int(tracingtest.Attr(s, "adshare.requests").AsInt64()))
			for _, l := range s.Links() {
				linked[l.SpanContext.SpanID()] = true
			}
			events += tracingtest.Attr(s, "adshare.events").AsInt64()
		}
	}
	require.Len(t, ingests, requests)
	require.Equal(t, ingests, linked, "every ingest span is linked from the commit that wrote its events")
	require.EqualValues(t, requests, events)
	require.NotEmpty(t, commits)
	require.Len(t, px.spans, requests, "each impression's pixel is queued")
	for _, sc := range px.spans {
		require.True(t, commits[sc.SpanID()], "pixels are queued in their commit's span")
	}
}

func TestNoProviderNoSpanInContext(t *testing.T) {
	t.Parallel()
	px := &contextPixels{}
	b := setup(t, func(c *analytics.Config) { c.Pixels = px })
	tok, _ := b.served(t)
	b.one(t, app, analytics.Report{Type: analytics.Impression, Token: tok})
	require.Equal(t, 1, px.count())
	require.Empty(t, px.spans, "without tracing, pixels are fired as before")
}
