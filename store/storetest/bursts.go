package storetest

import (
	"context"
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

	t.Run("unknown keys count zero; every listing adds one", func(t *testing.T) {
		t.Parallel()
		c := newCounter(t)
		got, err := c.Counts(ctx, []string{"a", "b"})
		require.NoError(t, err)
		require.Equal(t, []int64{0, 0}, got)
		require.NoError(t, c.Add(ctx, []string{"a", "b", "a"}, time.Minute))
		require.NoError(t, c.Add(ctx, []string{"a"}, time.Minute))
		got, err = c.Counts(ctx, []string{"b", "a", "c", "a"})
		require.NoError(t, err)
		require.Equal(t, []int64{1, 3, 0, 3}, got)
		require.NoError(t, c.Add(ctx, nil, time.Minute))
		got, err = c.Counts(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, got)
	})

	t.Run("a count is gone after its ttl", func(t *testing.T) {
		t.Parallel()
		c := newCounter(t)
		require.NoError(t, c.Add(ctx, []string{"short", "long"}, 150*time.Millisecond))
		require.NoError(t, c.Add(ctx, []string{"long"}, time.Minute)) // an add extends the key
		require.Eventually(t, func() bool {
			got, err := c.Counts(ctx, []string{"short"})
			return err == nil && got[0] == 0
		}, 5*time.Second, 20*time.Millisecond)
		got, err := c.Counts(ctx, []string{"long"})
		require.NoError(t, err)
		require.Equal(t, []int64{2}, got)
		require.NoError(t, c.Add(ctx, []string{"short"}, time.Minute))
		got, err = c.Counts(ctx, []string{"short"})
		require.NoError(t, err)
		require.Equal(t, []int64{1}, got, "an expired count starts again")
	})

	t.Run("concurrent adds all count", func(t *testing.T) {
		t.Parallel()
		c := newCounter(t)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 25 {
					require.NoError(t, c.Add(ctx, []string{"k", "k"}, time.Minute))
				}
			})
		}
		wg.Wait()
		got, err := c.Counts(ctx, []string{"k"})
		require.NoError(t, err)
		require.Equal(t, []int64{400}, got)
	})
}
