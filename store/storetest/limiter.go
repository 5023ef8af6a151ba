package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
)

// limiterSlack is how far a real-time answer may drift from the exact one:
// the time the calls themselves take on a loaded CI machine.
const limiterSlack = 250 * time.Millisecond

// RunLimiter runs the auth.Limiter contract against the limiters newLimiter
// returns, one fresh limiter per subtest. It runs on the real clock, with
// limits chosen so that each subtest waits at most a few hundred
// milliseconds.
func RunLimiter(t *testing.T, newLimiter func(t *testing.T) auth.Limiter) {
	t.Helper()
	ctx := context.Background()

	t.Run("a burst is allowed, then refused with RetryAfter of about one interval", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		lim := auth.Limit{Rate: 10, Period: 10 * time.Second, Burst: 3} // one event a second
		for want := 2; want >= 0; want-- {
			r, err := l.Allow(ctx, "k", lim)
			require.NoError(t, err)
			require.True(t, r.Allowed)
			require.Equal(t, want, r.Remaining)
			require.Zero(t, r.RetryAfter)
			require.InDelta(t, time.Duration(3-want)*time.Second, r.ResetAfter, float64(limiterSlack))
		}
		r, err := l.Allow(ctx, "k", lim)
		require.NoError(t, err)
		require.False(t, r.Allowed)
		require.Zero(t, r.Remaining)
		require.LessOrEqual(t, r.RetryAfter, time.Second)
		require.Greater(t, r.RetryAfter, time.Second-limiterSlack)
		require.InDelta(t, 3*time.Second, r.ResetAfter, float64(limiterSlack))

		// A refused event is not counted: the wait does not grow.
		again, err := l.Allow(ctx, "k", lim)
		require.NoError(t, err)
		require.False(t, again.Allowed)
		require.LessOrEqual(t, again.RetryAfter, r.RetryAfter)
		require.LessOrEqual(t, again.ResetAfter, r.ResetAfter)
	})

	t.Run("a burst of one allows one event per interval", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		lim := auth.Limit{Rate: 1, Period: time.Hour, Burst: 1}
		r, err := l.Allow(ctx, "k", lim)
		require.NoError(t, err)
		require.True(t, r.Allowed)
		require.Zero(t, r.Remaining)
		require.InDelta(t, time.Hour, r.ResetAfter, float64(limiterSlack))
		r, err = l.Allow(ctx, "k", lim)
		require.NoError(t, err)
		require.False(t, r.Allowed)
		require.InDelta(t, time.Hour, r.RetryAfter, float64(limiterSlack))
	})

	t.Run("keys are independent", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		lim := auth.Limit{Rate: 1, Period: time.Hour, Burst: 2}
		for range 2 {
			r, err := l.Allow(ctx, "a", lim)
			require.NoError(t, err)
			require.True(t, r.Allowed)
		}
		r, err := l.Allow(ctx, "a", lim)
		require.NoError(t, err)
		require.False(t, r.Allowed)

		r, err = l.Allow(ctx, "b", lim)
		require.NoError(t, err)
		require.True(t, r.Allowed)
		require.Equal(t, 1, r.Remaining)
	})

	t.Run("after waiting RetryAfter one more event is allowed", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		lim := auth.Limit{Rate: 4, Period: time.Second, Burst: 2} // 250ms interval
		for range 2 {
			r, err := l.Allow(ctx, "k", lim)
			require.NoError(t, err)
			require.True(t, r.Allowed)
		}
		r, err := l.Allow(ctx, "k", lim)
		require.NoError(t, err)
		require.False(t, r.Allowed)
		require.Positive(t, r.RetryAfter)

		// A little more than RetryAfter, for the clock's granularity.
		time.Sleep(r.RetryAfter + 2*time.Millisecond)
		r, err = l.Allow(ctx, "k", lim)
		require.NoError(t, err)
		require.True(t, r.Allowed)
		require.Zero(t, r.Remaining, "only one event's allowance has come back")
	})

	t.Run("invalid limits are errors", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		for _, tc := range []struct {
			description string
			limit       auth.Limit
		}{
			{"zero", auth.Limit{}},
			{"no rate", auth.Limit{Period: time.Second, Burst: 1}},
			{"negative rate", auth.Limit{Rate: -1, Period: time.Second, Burst: 1}},
			{"no period", auth.Limit{Rate: 1, Burst: 1}},
			{"negative period", auth.Limit{Rate: 1, Period: -time.Second, Burst: 1}},
			{"no burst", auth.Limit{Rate: 1, Period: time.Second}},
			{"interval under a microsecond", auth.Limit{Rate: 1_000_000_000, Period: time.Second, Burst: 1}},
		} {
			_, err := l.Allow(ctx, "k", tc.limit)
			require.Error(t, err, tc.description)
		}
		// The errors counted nothing.
		r, err := l.Allow(ctx, "k", auth.Limit{Rate: 1, Period: time.Hour, Burst: 1})
		require.NoError(t, err)
		require.True(t, r.Allowed)
	})

	t.Run("concurrent events never exceed the burst", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		lim := auth.Limit{Rate: 1, Period: time.Hour, Burst: 5}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 20*5)
		for range 20 {
			wg.Go(func() {
				for range 5 {
					r, err := l.Allow(ctx, "k", lim)
					if err != nil {
						errs <- err
						return
					}
					if r.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, int64(lim.Burst), allowed.Load())
	})
}
