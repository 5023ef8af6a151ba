// Package cachetest holds the contract suite of decision/cache's Tier: the
// decorator's memory tier and store/redis's DecisionPools run it, and a
// host that writes its own shared tier can run it too.
package cachetest

import (
	"context"
	"crypto/rand"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/cache"
)

// RunTier runs the Tier contract against the tiers newTier returns, one
// fresh, empty tier per subtest. Times passed to the tier start at the
// wall clock, so that a tier may expire its storage by its own.
func RunTier(t *testing.T, newTier func(t *testing.T) cache.Tier) {
	t.Helper()
	ctx := context.Background()

	t.Run("an empty pool pops nothing", func(t *testing.T) {
		t.Parallel()
		tier := newTier(t)
		pops := []cache.Pop{{Key: newKey(), N: 3, Expired: 7}}
		require.NoError(t, tier.Pop(ctx, time.Now(), pops))
		require.Equal(t, []cache.Pop{{Key: pops[0].Key, N: 3}}, pops, "nothing popped, earlier results cleared")
	})

	t.Run("ads pop oldest first, at most N at a time, each once", func(t *testing.T) {
		t.Parallel()
		tier, k, now := newTier(t), newKey(), time.Now()
		exp := now.Add(time.Minute)
		sent := ads("a", 3)
		sent[0].Tracking.ClickURL = "https://e.example/r?d=a-1"
		sent[0].Creative.Data = map[string]any{"cta": "Go"}
		require.Equal(t, cache.RefillResult{}, refill(t, tier, k, sent, exp, 10, time.Time{}, now))

		got := pop(t, tier, now, k, 2)
		require.Equal(t, sent[:2], got.Ads, "the oldest two, every field intact")
		require.True(t, exp.Equal(got.Expires), "Expires %v, want %v", got.Expires, exp)
		require.Equal(t, sent[2:], pop(t, tier, now, k, 5).Ads, "what is left, no more")
		require.Empty(t, pop(t, tier, now, k, 5).Ads, "each ad is popped once")
	})

	t.Run("each ad goes to exactly one of many concurrent poppers", func(t *testing.T) {
		t.Parallel()
		tier, k, now := newTier(t), newKey(), time.Now()
		const n, poppers = 200, 20
		refill(t, tier, k, ads("c", n), now.Add(time.Minute), n, time.Time{}, now)
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range poppers {
			wg.Go(func() {
				<-start
				for {
					pops := []cache.Pop{{Key: k, N: 3}}
					if err := tier.Pop(ctx, now, pops); err != nil {
						t.Error(err)
						return
					}
					if len(pops[0].Ads) == 0 {
						return
					}
					mu.Lock()
					for _, ad := range pops[0].Ads {
						seen[ad.ID]++
					}
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		require.Len(t, seen, n, "every ad was popped")
		for id, times := range seen {
			require.Equal(t, 1, times, "ad %s popped %d times", id, times)
		}
	})

	t.Run("expired ads are dropped, not popped", func(t *testing.T) {
		t.Parallel()
		tier, k, now := newTier(t), newKey(), time.Now()
		refill(t, tier, k, ads("old", 3), now.Add(time.Second), 10, time.Time{}, now)
		fresh := ads("new", 2)
		exp := now.Add(time.Minute)
		refill(t, tier, k, fresh, exp, 10, time.Time{}, now)

		later := now.Add(2 * time.Second)
		got := pop(t, tier, later, k, 2)
		require.Equal(t, fresh, got.Ads, "popped past the expired ones")
		require.Equal(t, 3, got.Expired)
		require.True(t, exp.Equal(got.Expires))
		require.Empty(t, pop(t, tier, now, k, 5).Ads, "the expired ones are gone, even for an earlier now")
	})

	t.Run("a pool keeps the newest Max ads", func(t *testing.T) {
		t.Parallel()
		tier, k, now := newTier(t), newKey(), time.Now()
		first, second := ads("a", 3), ads("b", 4)
		require.Equal(t, cache.RefillResult{}, refill(t, tier, k, first, now.Add(time.Minute), 5, time.Time{}, now))
		require.Equal(t, cache.RefillResult{Trimmed: 2}, refill(t, tier, k, second, now.Add(time.Minute), 5, time.Time{}, now))
		require.Equal(t, append(first[2:], second...), pop(t, tier, now, k, 10).Ads, "the two oldest were dropped")
	})

	t.Run("a negative mark is read until it ends", func(t *testing.T) {
		t.Parallel()
		tier, k, other, now := newTier(t), newKey(), newKey(), time.Now()
		until := now.Add(5 * time.Second)
		refill(t, tier, k, nil, now.Add(time.Minute), 10, until, now)

		pops := []cache.Pop{{Key: k, N: 1}, {Key: other, N: 1}}
		require.NoError(t, tier.Pop(ctx, now, pops))
		require.True(t, until.Equal(pops[0].NegativeUntil), "NegativeUntil %v, want %v", pops[0].NegativeUntil, until)
		require.Empty(t, pops[0].Ads)
		require.Zero(t, pops[1].NegativeUntil, "another key has no mark")
		require.Zero(t, pop(t, tier, now.Add(6*time.Second), k, 1).NegativeUntil, "past its end the mark is not in force")
		require.Equal(t, []bool{false}, locked(t, tier, k), "the refill released its lock")
	})

	t.Run("a lock is held by one token until released", func(t *testing.T) {
		t.Parallel()
		tier, k, k2 := newTier(t), newKey(), newKey()
		require.Equal(t, []bool{true}, lock(t, tier, "tok-a", time.Minute, k))
		require.Equal(t, []bool{true}, lock(t, tier, "tok-a", time.Minute, k), "a retry with the same token still holds it")
		require.Equal(t, []bool{false, true}, lock(t, tier, "tok-b", time.Minute, k, k2), "another token gets only the free key")
		require.Equal(t, []bool{true, true}, locked(t, tier, k, k2))
		require.Equal(t, []bool{false}, locked(t, tier, newKey()))

		_, err := tier.EndRefill(ctx, cache.Refill{Key: k, Token: "tok-a", Expires: time.Now().Add(time.Minute), Max: 10, Now: time.Now()})
		require.NoError(t, err)
		require.Equal(t, []bool{false, true}, locked(t, tier, k, k2))
		require.Equal(t, []bool{true}, lock(t, tier, "tok-b", time.Minute, k), "released, it can be taken")
	})

	t.Run("one of many concurrent lockers gets the lock", func(t *testing.T) {
		t.Parallel()
		tier, k := newTier(t), newKey()
		const lockers = 20
		won := make([]bool, lockers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range lockers {
			wg.Go(func() {
				<-start
				held, err := tier.Lock(ctx, "tok-"+strconv.Itoa(i), time.Minute, []cache.Key{k})
				if err != nil {
					t.Error(err)
					return
				}
				won[i] = held[0]
			})
		}
		close(start)
		wg.Wait()
		n := 0
		for _, w := range won {
			if w {
				n++
			}
		}
		require.Equal(t, 1, n, "exactly one token holds the lock")
	})

	t.Run("a lock expires after its ttl, and its refill then stores nothing", func(t *testing.T) {
		t.Parallel()
		tier, k, now := newTier(t), newKey(), time.Now()
		require.Equal(t, []bool{true}, lock(t, tier, "tok-a", 50*time.Millisecond, k))
		require.Eventually(t, func() bool { return lock(t, tier, "tok-b", time.Minute, k)[0] }, 5*time.Second, 10*time.Millisecond)

		_, err := tier.EndRefill(ctx, cache.Refill{Key: k, Token: "tok-a", Ads: ads("a", 2), Expires: now.Add(time.Minute), Max: 10, NegativeUntil: now.Add(time.Minute), Now: now})
		require.ErrorIs(t, err, cache.ErrLockLost)
		require.Equal(t, []bool{true}, locked(t, tier, k), "tok-b still holds it")
		got := pop(t, tier, now, k, 5)
		require.Empty(t, got.Ads, "nothing pushed")
		require.Zero(t, got.NegativeUntil, "no mark set")
	})

	t.Run("a refill that never held the lock stores nothing", func(t *testing.T) {
		t.Parallel()
		tier, k, now := newTier(t), newKey(), time.Now()
		_, err := tier.EndRefill(ctx, cache.Refill{Key: k, Token: "never-locked", Ads: ads("a", 2), Expires: now.Add(time.Minute), Max: 10, Now: now})
		require.ErrorIs(t, err, cache.ErrLockLost)
		require.Empty(t, pop(t, tier, now, k, 5).Ads)
	})

	t.Run("ending a refill again with its token changes nothing", func(t *testing.T) {
		t.Parallel()
		tier, k, now := newTier(t), newKey(), time.Now()
		sent := ads("a", 2)
		require.Equal(t, []bool{true}, lock(t, tier, "tok", time.Minute, k))
		r := cache.Refill{Key: k, Token: "tok", Ads: sent, Expires: now.Add(time.Minute), Max: 10, Now: now}
		_, err := tier.EndRefill(ctx, r)
		require.NoError(t, err)
		res, err := tier.EndRefill(ctx, r)
		require.NoError(t, err, "a retry is recognised, not refused")
		require.Equal(t, cache.RefillResult{}, res)
		require.Equal(t, sent, pop(t, tier, now, k, 5).Ads, "the ads were pushed once")
		require.Equal(t, []bool{false}, locked(t, tier, k))
	})

	t.Run("keys are independent; a key listed twice gets distinct ads", func(t *testing.T) {
		t.Parallel()
		tier, k, other, now := newTier(t), newKey(), newKey(), time.Now()
		sent := ads("a", 4)
		refill(t, tier, k, sent, now.Add(time.Minute), 10, time.Time{}, now)
		pops := []cache.Pop{{Key: k, N: 2}, {Key: other, N: 1}, {Key: k, N: 2}}
		require.NoError(t, tier.Pop(ctx, now, pops))
		require.Empty(t, pops[1].Ads)
		require.ElementsMatch(t, sent, append(pops[0].Ads, pops[2].Ads...))
		require.Len(t, pops[0].Ads, 2)
	})
}

// refill takes k's lock with a fresh token and ends the refill with ads,
// failing the test on an error.
func refill(t *testing.T, tier cache.Tier, k cache.Key, ads []decision.Ad, exp time.Time, max int, negUntil, now time.Time) cache.RefillResult {
	t.Helper()
	token := rand.Text()
	require.Equal(t, []bool{true}, lock(t, tier, token, time.Minute, k))
	res, err := tier.EndRefill(context.Background(), cache.Refill{Key: k, Token: token, Ads: ads, Expires: exp, Max: max, NegativeUntil: negUntil, Now: now})
	require.NoError(t, err)
	return res
}

func pop(t *testing.T, tier cache.Tier, now time.Time, k cache.Key, n int) cache.Pop {
	t.Helper()
	pops := []cache.Pop{{Key: k, N: n}}
	require.NoError(t, tier.Pop(context.Background(), now, pops))
	require.LessOrEqual(t, len(pops[0].Ads), n)
	return pops[0]
}

func lock(t *testing.T, tier cache.Tier, token string, ttl time.Duration, keys ...cache.Key) []bool {
	t.Helper()
	held, err := tier.Lock(context.Background(), token, ttl, keys)
	require.NoError(t, err)
	return held
}

func locked(t *testing.T, tier cache.Tier, keys ...cache.Key) []bool {
	t.Helper()
	held, err := tier.Locked(context.Background(), keys)
	require.NoError(t, err)
	return held
}

// newKey returns a random key, so that subtests never share a pool.
func newKey() cache.Key {
	var k cache.Key
	_, _ = rand.Read(k[:])
	return k
}

// ads returns n ads with IDs prefix-1, prefix-2..., each with tracking URLs
// of its own.
func ads(prefix string, n int) []decision.Ad {
	out := make([]decision.Ad, n)
	for i := range out {
		id := prefix + "-" + strconv.Itoa(i+1)
		out[i] = decision.Ad{
			ID: id, Source: "test", AdID: strconv.Itoa(i + 1), AdvertiserID: "100",
			Creative: decision.Creative{Format: "banner", Title: "Ad " + id, LandingURL: "https://advertiser.example/"},
			Price:    decision.Price{Model: decision.CPM, Micros: 1_000_000},
			Tracking: decision.Tracking{ImpressionURL: "https://e.example/i?d=" + id},
		}
	}
	return out
}
