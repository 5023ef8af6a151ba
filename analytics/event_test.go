package analytics_test

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
)

// Add adds every counter: one forgotten in Add (the old copies of the
// field list each had to name all eleven) reads as zero in every report.
func TestCountsAddAddsEveryCounter(t *testing.T) {
	t.Parallel()
	var c analytics.Counts
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		v.Field(i).SetInt(int64(i + 1)) // every counter is an integer, each a different one
	}
	sum := c
	sum.Add(c)
	sum.Add(analytics.Counts{})
	got := reflect.ValueOf(sum)
	for i := range got.NumField() {
		require.Equal(t, int64(2*(i+1)), got.Field(i).Int(), "Counts.%s", got.Type().Field(i).Name)
	}
}

// recordingStore keeps the events it is asked to write.
type recordingStore struct {
	analytics.Store
	mu     sync.Mutex
	events []analytics.Event
}

func (r *recordingStore) WriteEvents(ctx context.Context, events []analytics.Event) ([]bool, error) {
	r.mu.Lock()
	r.events = append(r.events, events...)
	r.mu.Unlock()
	return r.Store.WriteEvents(ctx, events)
}

// exportedStrings returns every string reachable through v's exported
// fields.
func exportedStrings(v reflect.Value) []string {
	switch v.Kind() {
	case reflect.String:
		return []string{v.String()}
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out = append(out, exportedStrings(v.Field(i))...)
			}
		}
		return out
	}
	return nil
}

// An event carries its token's ad whole, every field of it, to the store;
// the ad server's pixels reach the pixel firer and no field a store can
// read.
func TestEventsCarryTheirTokensAd(t *testing.T) {
	t.Parallel()
	rec := &recordingStore{}
	b := setup(t, func(c *analytics.Config) { rec.Store, c.Store = c.Store, rec })
	tok, tr := b.served(t, func(tr *tracking.Payload) {
		tr.Viewer, tr.CampaignID, tr.LandingURL = uuid.New(), "camp-9", "https://shop.example.com/beans"
	})
	v := reflect.ValueOf(tr.Ad)
	for i := range v.NumField() {
		require.False(t, v.Field(i).IsZero(), "the test sets tracking.Ad.%s", v.Type().Field(i).Name)
	}

	res := b.one(t, app, analytics.Report{Type: analytics.Impression, Token: tok})
	require.Equal(t, analytics.Accepted, res.Status)
	require.True(t, res.Billable)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Len(t, rec.events, 1)
	e := rec.events[0]
	opened, err := b.sealer.Open(tok) // what the token says: times to the microsecond
	require.NoError(t, err)
	require.Equal(t, tr.ID, e.TrackingID)
	require.Equal(t, opened.Ad, e.Ad)
	for _, s := range exportedStrings(reflect.ValueOf(e)) {
		require.NotContains(t, s, "adzerk", "the ad server's pixels are not for stores")
		require.NotContains(t, s, "shop.example.com", "nor is the landing page")
	}
	require.Equal(t, []string{tr.Upstream.ImpressionURL}, b.pixels.fired, "but they are fired")
}
