package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/redis"
	"github.com/adshare/adshare/store/storetest"
)

func open(t *testing.T) *redis.Client {
	t.Helper()
	url, prefix := testenv.Redis(t)
	c, err := redis.Open(context.Background(), url, &redis.Config{Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

func TestPing(t *testing.T) {
	t.Parallel()
	require.NoError(t, open(t).Ping(context.Background()))
}

func TestOpenRejectsABadURLWithoutEchoingIt(t *testing.T) {
	t.Parallel()
	_, err := redis.Open(context.Background(), "redis://:s3cret@host:notaport/0", nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
}

func TestBus(t *testing.T) {
	t.Parallel()
	storetest.RunBroadcaster(t, func(t *testing.T) (adspace.Broadcaster, adspace.Broadcaster) {
		// Two clients on one prefix: two instances of the app.
		url, prefix := testenv.Redis(t)
		open := func() *redis.Client {
			c, err := redis.Open(context.Background(), url, &redis.Config{Prefix: prefix})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Stop(context.Background()) })
			return c
		}
		return open().Bus(nil), open().Bus(nil)
	})
}

func TestLiveCounters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	live := open(t).LiveCounters(nil)
	owner, other := uuid.New(), uuid.New()
	now := time.Now().UTC()
	live.Accepted(ctx, []analytics.Event{
		{Ad: tracking.Ad{Owner: owner}, Type: analytics.Impression, Valid: true, OccurredAt: now, OwnerEarningsMicros: 1000},
		{Ad: tracking.Ad{Owner: owner}, Type: analytics.Impression, Valid: false, OccurredAt: now},
		{Ad: tracking.Ad{Owner: owner}, Type: analytics.Click, Valid: true, OccurredAt: now, OwnerEarningsMicros: 250},
		{Ad: tracking.Ad{Owner: other}, Type: analytics.Impression, Valid: true, OccurredAt: now},
		{Ad: tracking.Ad{Owner: owner}, Type: analytics.Impression, Valid: true, OccurredAt: now.Add(-24 * time.Hour)},
	})
	got, err := live.Today(ctx, owner, now)
	require.NoError(t, err)
	require.Equal(t, redis.LiveFigures{Impressions: 2, ValidImpressions: 1, Clicks: 1, EarningsMicros: 1250}, got)
	yesterday, err := live.Today(ctx, owner, now.Add(-24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(1), yesterday.Impressions)
	none, err := live.Today(ctx, uuid.New(), now)
	require.NoError(t, err)
	require.Zero(t, none)
}
