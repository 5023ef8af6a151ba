package redis

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/cache"
	"github.com/adshare/adshare/decision/cache/cachetest"
	"github.com/adshare/adshare/decision/decisiontest"
	"github.com/adshare/adshare/internal/testenv"
)

func TestDecisionPools(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, func(t *testing.T, target testenv.RedisTarget) {
		cachetest.RunTier(t, func(t *testing.T) cache.Tier {
			return openTarget(t, testenv.RedisOn(t, target.Name), "").DecisionPools("")
		})
	})
}

// TestDecisionPoolsLayout checks, behind the decorator, what a refill
// leaves in Redis: the pool list under the namespace with the key in a
// hash tag, its JSON ads with their expiry, the list's own expiry, and no
// lock.
func TestDecisionPoolsLayout(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testDecisionPoolsLayout)
}

func testDecisionPoolsLayout(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c := openTarget(t, target, "")
	pools := c.DecisionPools("")
	now := time.Now()
	var ads []decision.Ad
	for range 4 {
		ads = append(ads, decision.Ad{Source: "fake", Creative: decision.Creative{Format: "banner"}, Price: decision.Price{Model: decision.CPM, Micros: 1},
			Tracking: decision.Tracking{ImpressionURL: "https://e.example/i"}})
	}
	d, err := cache.New(&decisiontest.Fake{Ads: ads}, &cache.Config{Prefetch: 4, Shared: pools, Now: func() time.Time { return now }})
	require.NoError(t, err)
	req := decision.Request{Placements: []decision.Placement{{ID: "slot", Formats: []string{"banner"}}}}
	resp, err := d.Decide(ctx, req)
	require.NoError(t, err)
	require.Len(t, resp.Ads["slot"], 1)

	// The refill stores its leftovers after the answer: find the pool.
	var pool string
	require.Eventually(t, func() bool {
		keys, err := testenv.Keys(ctx, c.Redis(), c.Prefix()+"decision-cache:{*}:pool")
		require.NoError(t, err)
		if len(keys) == 1 {
			pool = keys[0]
		}
		return pool != ""
	}, 5*time.Second, time.Millisecond)
	require.Regexp(t, `^`+c.Prefix()+`decision-cache:\{[0-9a-f]{64}\}:pool$`, pool)

	items, err := c.Redis().LRange(ctx, pool, 0, -1).Result()
	require.NoError(t, err)
	require.Len(t, items, 3)
	var e storedAd
	require.NoError(t, json.Unmarshal([]byte(items[0]), &e))
	require.Equal(t, "fake-2", e.Ad.ID)
	require.Equal(t, "https://e.example/i", e.Ad.Tracking.ImpressionURL)
	require.Equal(t, now.Add(cache.DefaultTTL).UnixNano(), e.Exp)
	ttl, err := c.Redis().PTTL(ctx, pool).Result()
	require.NoError(t, err)
	require.Positive(t, ttl)
	require.LessOrEqual(t, ttl, cache.DefaultTTL)
	lock := pool[:len(pool)-len("pool")] + "lock"
	n, err := c.Redis().Exists(ctx, lock).Result()
	require.NoError(t, err)
	require.Zero(t, n, "the lock is released with the store")
}

func TestDecisionPoolsNamespacesDoNotShare(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testDecisionPoolsNamespacesDoNotShare)
}

func testDecisionPoolsNamespacesDoNotShare(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c := openTarget(t, target, "")
	a, b := c.DecisionPools(""), c.DecisionPools("other-upstream")
	var k cache.Key
	held, err := a.Lock(ctx, "tok", time.Minute, []cache.Key{k})
	require.NoError(t, err)
	require.Equal(t, []bool{true}, held)
	held, err = b.Lock(ctx, "someone-else", time.Minute, []cache.Key{k})
	require.NoError(t, err)
	require.Equal(t, []bool{true}, held, "the same key in another namespace is another pool")
}

func TestDecisionPoolsFailWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pools := deadClient(t).DecisionPools("")
	keys := []cache.Key{{1}}
	require.Error(t, pools.Pop(ctx, time.Now(), []cache.Pop{{Key: keys[0], N: 1}}))
	_, err := pools.Lock(ctx, "tok", time.Minute, keys)
	require.Error(t, err)
	_, err = pools.Locked(ctx, keys)
	require.Error(t, err)
	_, err = pools.EndRefill(ctx, cache.Refill{Key: keys[0], Token: "tok", Max: 1, Now: time.Now()})
	require.Error(t, err)
	require.NotErrorIs(t, err, cache.ErrLockLost, "an unknown outcome is not a lost lock")
}
