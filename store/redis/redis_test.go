package redis_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/redis"
	"github.com/adshare/adshare/store/storetest"
)

// openOn opens a client on target r with r's prefix, as a host does: Open
// for a single server, OpenCluster for a cluster. Stop runs when tb ends.
func openOn(tb testing.TB, r testenv.RedisTarget) *redis.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var (
		c   *redis.Client
		err error
	)
	if r.Cluster() {
		c, err = redis.OpenCluster(ctx, r.Addrs, &redis.Config{Prefix: r.Prefix})
	} else {
		c, err = redis.Open(ctx, r.URL, &redis.Config{Prefix: r.Prefix})
	}
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

func TestPing(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, func(t *testing.T, r testenv.RedisTarget) {
		require.NoError(t, openOn(t, r).Ping(context.Background()))
	})
}

// OpenCluster finds the whole cluster from one seed node, pings every
// master, and refuses a node that serves no slot.
func TestOpenCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testenv.RedisOn(t, testenv.RedisCluster)
	c, err := redis.OpenCluster(ctx, r.Addrs[:1], &redis.Config{Prefix: r.Prefix})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	cc, ok := c.Redis().(*goredis.ClusterClient)
	require.True(t, ok, "a cluster client")
	var masters atomic.Int32
	require.NoError(t, cc.ForEachMaster(ctx, func(context.Context, *goredis.Client) error { masters.Add(1); return nil }))
	require.Equal(t, int32(len(r.Addrs)), masters.Load(), "every master found from one seed")

	_, err = redis.OpenCluster(ctx, nil, nil)
	require.ErrorContains(t, err, "at least one cluster node")

	// The single test server is not in cluster mode: it serves no slot.
	single := testenv.RedisOn(t, testenv.RedisSingle)
	opts, err := goredis.ParseURL(single.URL)
	require.NoError(t, err)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = redis.OpenCluster(sctx, []string{opts.Addr}, &redis.Config{DialTimeout: time.Second})
	require.Error(t, err)
}

func TestOpenRejectsABadURLWithoutEchoingIt(t *testing.T) {
	t.Parallel()
	_, err := redis.Open(context.Background(), "redis://:s3cret@host:notaport/0", nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
}

func TestBus(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, func(t *testing.T, target testenv.RedisTarget) {
		storetest.RunBroadcaster(t, func(t *testing.T) (adspace.Broadcaster, adspace.Broadcaster) {
			// Two clients on one prefix: two instances of the app.
			r := testenv.RedisOn(t, target.Name)
			return openOn(t, r).Bus(nil), openOn(t, r).Bus(nil)
		})
	})
}

func TestLiveCounters(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testLiveCounters)
}

func testLiveCounters(t *testing.T, r testenv.RedisTarget) {
	ctx := context.Background()
	live := openOn(t, r).LiveCounters(nil)
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
