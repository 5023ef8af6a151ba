package analytics_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
)

// capturingStore keeps a copy of every event written.
type capturingStore struct {
	analytics.Store
	mu     sync.Mutex
	events []analytics.Event
}

func (c *capturingStore) WriteEvents(ctx context.Context, e []analytics.Event) ([]bool, error) {
	c.mu.Lock()
	c.events = append(c.events, e...)
	c.mu.Unlock()
	return c.Store.WriteEvents(ctx, e)
}

// Without analytics consent a viewer's events are stored without their id
// or key; with it, with both. The checks at ingest still see them: a
// signed-in viewer may not report someone else's token either way.
func TestNoPerViewerAnalyticsWithoutConsent(t *testing.T) {
	t.Parallel()
	var cs *capturingStore
	b := setup(t, func(c *analytics.Config) {
		cs = &capturingStore{Store: c.Store}
		c.Store = cs
	})
	viewer := uuid.New()
	unprofiled, _ := b.served(t, func(p *tracking.Payload) { p.Viewer, p.NoViewerAnalytics = viewer, true })
	profiled, _ := b.served(t, func(p *tracking.Payload) { p.Viewer = viewer })
	for _, tok := range []string{unprofiled, profiled} {
		require.Equal(t, analytics.Accepted, b.one(t, app, analytics.Report{Type: analytics.Impression, Token: tok}).Status)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	require.Len(t, cs.events, 2)
	require.Equal(t, uuid.Nil, uuid.UUID(cs.events[0].Ad.Viewer))
	require.Empty(t, cs.events[0].Ad.ViewerKey)
	require.Equal(t, viewer, uuid.UUID(cs.events[1].Ad.Viewer))
	require.NotEmpty(t, cs.events[1].Ad.ViewerKey)
}
