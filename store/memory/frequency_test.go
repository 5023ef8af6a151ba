package memory_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/store/memory"
)

func TestFrequencyCounterWindowsPerViewerAndAd(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	f := memory.NewFrequencyCounter(time.Hour)
	f.Now = func() time.Time { return now }

	require.NoError(t, f.Record(ctx, "v1", []string{"a", "b"}))
	require.NoError(t, f.Record(ctx, "v1", []string{"a"}))
	require.NoError(t, f.Record(ctx, "v2", []string{"a"}))
	got, err := f.Counts(ctx, "v1", []string{"a", "b", "c"})
	require.NoError(t, err)
	require.Equal(t, map[string]int{"a": 2, "b": 1}, got, "per ad, never another viewer's")
	got, err = f.Counts(ctx, "v1", []string{"b"})
	require.NoError(t, err)
	require.Equal(t, map[string]int{"b": 1}, got, "only the ads asked about")

	now = now.Add(40 * time.Minute)
	require.NoError(t, f.Record(ctx, "v1", []string{"b"}))
	now = now.Add(30 * time.Minute) // 11:10: both windows began at 10:00
	got, err = f.Counts(ctx, "v1", []string{"a", "b"})
	require.NoError(t, err)
	require.Empty(t, got, "each pair's window runs an hour from its first showing")

	require.NoError(t, f.Record(ctx, "v1", []string{"b"}))
	got, err = f.Counts(ctx, "v1", []string{"a", "b"})
	require.NoError(t, err)
	require.Equal(t, map[string]int{"b": 1}, got, "a showing after the window starts a new one")
	got, err = f.Counts(ctx, "v2", []string{"a"})
	require.NoError(t, err)
	require.Empty(t, got, "swept with its window")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = f.Counts(cancelled, "v1", []string{"a"})
	require.ErrorIs(t, err, context.Canceled)
}

func TestFrequencyCounterCountsExactlyUnderConcurrentFills(t *testing.T) {
	ctx := context.Background()
	f := memory.NewFrequencyCounter(time.Hour)
	const workers, viewers, rounds = 8, 200, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				for v := range viewers {
					viewer := "v" + strconv.Itoa(v)
					_, err := f.Counts(ctx, viewer, []string{"a", "b"})
					require.NoError(t, err)
					require.NoError(t, f.Record(ctx, viewer, []string{"a", []string{"b", "c"}[(w+r)%2]}))
				}
			}
		})
	}
	wg.Wait()
	for v := range viewers {
		got, err := f.Counts(ctx, "v"+strconv.Itoa(v), []string{"a", "b", "c"})
		require.NoError(t, err)
		require.Equal(t, map[string]int{"a": workers * rounds, "b": workers * rounds / 2, "c": workers * rounds / 2}, got)
	}
}
