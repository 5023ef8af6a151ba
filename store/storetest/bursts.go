package storetest

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
)

// RunBurstCounter runs the analytics.BurstCounter contract against the
// counters newCounter returns, one fresh counter per subtest.
func RunBurstCounter(t *testing.T, newCounter func(t *testing.T) analytics.BurstCounter) {
	t.Helper()
	ctx := context.Background()

	key := func(window, member string) analytics.BurstKey {
		return analytics.BurstKey{Window: window, Member: member}
	}
	a, b, c, d := key("w1", "a"), key("w1", "b"), key("w2", "a"), key("w1", "d")

	t.Run("unknown keys count zero; every listing adds one", func(t *testing.T) {
		t.Parallel()
		counter := newCounter(t)
		got, err := counter.Counts(ctx, []analytics.BurstKey{a, b})
		require.NoError(t, err)
		require.Equal(t, []int64{0, 0}, got)
		require.NoError(t, counter.Add(ctx, []analytics.BurstKey{a, b, a}, time.Minute))
		require.NoError(t, counter.Add(ctx, []analytics.BurstKey{a}, time.Minute))
		got, err = counter.Counts(ctx, []analytics.BurstKey{b, a, c, d, a})
		require.NoError(t, err)
		require.Equal(t, []int64{1, 3, 0, 0, 3}, got, "a member counts apart in each window")
		require.NoError(t, counter.Add(ctx, nil, time.Minute))
		got, err = counter.Counts(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, got)
	})

	t.Run("many members of one window", func(t *testing.T) {
		t.Parallel()
		counter := newCounter(t)
		var keys []analytics.BurstKey
		for i := range 500 {
			keys = append(keys, key("w", strconv.Itoa(i)))
		}
		require.NoError(t, counter.Add(ctx, append(keys, keys[:100]...), time.Minute))
		got, err := counter.Counts(ctx, keys)
		require.NoError(t, err)
		for i, n := range got {
			want := int64(1)
			if i < 100 {
				want = 2 // listed twice
			}
			require.Equal(t, want, n, "member %d", i)
		}
	})

	t.Run("a window's counts are gone after their ttl", func(t *testing.T) {
		t.Parallel()
		counter := newCounter(t)
		short, long := key("short", "m"), key("long", "m")
		require.NoError(t, counter.Add(ctx, []analytics.BurstKey{short, long}, 150*time.Millisecond))
		require.NoError(t, counter.Add(ctx, []analytics.BurstKey{long}, time.Minute)) // an add extends the count
		require.Eventually(t, func() bool {
			got, err := counter.Counts(ctx, []analytics.BurstKey{short})
			return err == nil && got[0] == 0
		}, 5*time.Second, 20*time.Millisecond)
		got, err := counter.Counts(ctx, []analytics.BurstKey{long})
		require.NoError(t, err)
		require.Equal(t, []int64{2}, got)
		require.NoError(t, counter.Add(ctx, []analytics.BurstKey{short}, time.Minute))
		got, err = counter.Counts(ctx, []analytics.BurstKey{short})
		require.NoError(t, err)
		require.Equal(t, []int64{1}, got, "an expired count starts again")
	})

	t.Run("concurrent adds all count", func(t *testing.T) {
		t.Parallel()
		counter := newCounter(t)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 25 {
					require.NoError(t, counter.Add(ctx, []analytics.BurstKey{a, a}, time.Minute))
				}
			})
		}
		wg.Wait()
		got, err := counter.Counts(ctx, []analytics.BurstKey{a})
		require.NoError(t, err)
		require.Equal(t, []int64{400}, got)
	})
}
