package memory_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/store/storetest"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	storetest.RunLimiter(t, func(*testing.T) auth.Limiter { return memory.NewLimiter() })
}

func TestRevocationList(t *testing.T) {
	t.Parallel()
	storetest.RunRevocationList(t, func(*testing.T) auth.RevocationList { return memory.NewRevocationList() })
}

func TestOneTimeStore(t *testing.T) {
	t.Parallel()
	storetest.RunOneTimeStore(t, func(*testing.T) auth.OneTimeStore { return memory.NewOneTimeStore() })
}

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestLimiterFollowsTheClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type testBundle struct {
		clock *fakeClock
		l     *memory.Limiter
	}
	setup := func(t *testing.T) testBundle {
		t.Helper()
		clock := newFakeClock()
		l := memory.NewLimiter()
		l.Now = clock.Now
		return testBundle{clock: clock, l: l}
	}
	lim := auth.Limit{Rate: 10, Period: time.Second, Burst: 3} // 100ms interval
	allow := func(t *testing.T, l *memory.Limiter, key string) auth.LimitResult {
		t.Helper()
		r, err := l.Allow(ctx, key, lim)
		require.NoError(t, err)
		return r
	}

	t.Run("exact answers through a burst and a refusal", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.Equal(t, auth.LimitResult{Allowed: true, Remaining: 2, ResetAfter: 100 * time.Millisecond}, allow(t, b.l, "k"))
		require.Equal(t, auth.LimitResult{Allowed: true, Remaining: 1, ResetAfter: 200 * time.Millisecond}, allow(t, b.l, "k"))
		require.Equal(t, auth.LimitResult{Allowed: true, Remaining: 0, ResetAfter: 300 * time.Millisecond}, allow(t, b.l, "k"))
		require.Equal(t, auth.LimitResult{RetryAfter: 100 * time.Millisecond, ResetAfter: 300 * time.Millisecond}, allow(t, b.l, "k"))

		b.clock.Advance(40 * time.Millisecond)
		require.Equal(t, auth.LimitResult{RetryAfter: 60 * time.Millisecond, ResetAfter: 260 * time.Millisecond}, allow(t, b.l, "k"))
		b.clock.Advance(59 * time.Millisecond)
		require.False(t, allow(t, b.l, "k").Allowed)
		b.clock.Advance(time.Millisecond)
		require.Equal(t, auth.LimitResult{Allowed: true, Remaining: 0, ResetAfter: 300 * time.Millisecond}, allow(t, b.l, "k"))
	})

	t.Run("the burst refills one interval at a time", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for range 3 {
			require.True(t, allow(t, b.l, "k").Allowed)
		}
		b.clock.Advance(250 * time.Millisecond)
		// Two intervals have passed (and half of a third): two allowed.
		require.Equal(t, 1, allow(t, b.l, "k").Remaining)
		require.Equal(t, 0, allow(t, b.l, "k").Remaining)
		require.False(t, allow(t, b.l, "k").Allowed)

		b.clock.Advance(time.Hour)
		r := allow(t, b.l, "k")
		require.Equal(t, 2, r.Remaining, "idle time does not bank more than a burst")
	})

	t.Run("keys back to a full burst are swept", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for i := range 100 {
			allow(t, b.l, fmt.Sprint("k", i))
		}
		require.Equal(t, 100, b.l.Len())
		b.clock.Advance(memory.LimiterSweepInterval)
		allow(t, b.l, "fresh")
		require.Equal(t, 1, b.l.Len())
	})

	t.Run("a full limiter evicts rather than grows", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.l.MaxKeys = 10
		slow := auth.Limit{Rate: 1, Period: time.Hour, Burst: 1}
		for i := range 50 {
			_, err := b.l.Allow(ctx, fmt.Sprint("k", i), slow)
			require.NoError(t, err)
			require.LessOrEqual(t, b.l.Len(), 10)
		}
		// Held keys still refuse.
		_, err := b.l.Allow(ctx, "held", slow)
		require.NoError(t, err)
		r, err := b.l.Allow(ctx, "held", slow)
		require.NoError(t, err)
		require.False(t, r.Allowed)
	})

	t.Run("a done context is an error", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := b.l.Allow(cctx, "k", lim)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestRevocationListFollowsTheClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock()
	l := memory.NewRevocationList()
	l.Now = clock.Now

	sid, user := uuid.New(), uuid.New()
	require.NoError(t, l.RevokeSession(ctx, sid, clock.Now().Add(time.Minute)))
	require.NoError(t, l.RevokeUserTokensBefore(ctx, user, clock.Now(), clock.Now().Add(2*time.Minute)))
	issued := clock.Now().Add(-time.Second)

	clock.Advance(time.Minute - time.Millisecond)
	require.ErrorIs(t, l.CheckToken(ctx, sid, uuid.New(), issued), auth.ErrTokenRevoked)
	clock.Advance(time.Millisecond)
	require.NoError(t, l.CheckToken(ctx, sid, uuid.New(), issued), "the session's entry expired")
	require.ErrorIs(t, l.CheckToken(ctx, uuid.New(), user, issued), auth.ErrTokenRevoked)
	clock.Advance(time.Minute)
	require.NoError(t, l.CheckToken(ctx, uuid.New(), user, issued), "the user's mark expired")

	// Expired entries are swept on the next write.
	require.Equal(t, 2, l.Len())
	require.NoError(t, l.RevokeSession(ctx, uuid.New(), clock.Now().Add(time.Minute)))
	require.Equal(t, 1, l.Len())
}

func TestOneTimeStoreFollowsTheClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type testBundle struct {
		clock *fakeClock
		s     *memory.OneTimeStore
	}
	setup := func(t *testing.T) testBundle {
		t.Helper()
		clock := newFakeClock()
		s := memory.NewOneTimeStore()
		s.Now = clock.Now
		return testBundle{clock: clock, s: s}
	}

	t.Run("a value lives for its ttl, in whole milliseconds", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.NoError(t, b.s.PutOnce(ctx, "a", []byte("v"), time.Second+999*time.Microsecond))
		require.NoError(t, b.s.PutOnce(ctx, "b", []byte("v"), time.Second))
		b.clock.Advance(time.Second - time.Nanosecond)
		_, ok, err := b.s.Take(ctx, "b")
		require.NoError(t, err)
		require.True(t, ok)
		b.clock.Advance(time.Nanosecond)
		_, ok, err = b.s.Take(ctx, "a")
		require.NoError(t, err)
		require.False(t, ok, "the ttl was truncated to 1s")
	})

	t.Run("expired values are swept and a full store refuses", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.s.MaxEntries = 3
		for i := range 3 {
			require.NoError(t, b.s.PutOnce(ctx, fmt.Sprint("k", i), []byte("v"), time.Second))
		}
		require.ErrorIs(t, b.s.PutOnce(ctx, "k3", []byte("v"), time.Second), memory.ErrOneTimeStoreFull)
		b.clock.Advance(time.Second)
		require.NoError(t, b.s.PutOnce(ctx, "k3", []byte("v"), time.Second))
		require.Equal(t, 1, b.s.Len())
	})
}

func TestBurstCounter(t *testing.T) {
	t.Parallel()
	storetest.RunBurstCounter(t, func(*testing.T) analytics.BurstCounter { return memory.NewBurstCounter() })
}
