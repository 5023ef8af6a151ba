package cache

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/testenv"
)

func TestInstancesShareTheRedisPools(t *testing.T) {
	t.Parallel()
	a := setup(t, true, Config{Prefetch: 5}, nil)
	b := a.instance(t, Config{Prefetch: 5})
	require.Equal(t, []string{"fake-1"}, ids(a.decide(t, banner(1)), "slot"))
	var got []string
	for range 4 {
		got = append(got, ids(b.decide(t, banner(1)), "slot")...)
	}
	require.Equal(t, []string{"fake-2", "fake-3", "fake-4", "fake-5"}, got, "B pops what A's refill left")
	require.Len(t, a.up.Calls(), 1)
	require.Equal(t, 4.0, testutil.ToFloat64(b.d.stats.hit))
	keys, pool := a.d.mem.size()
	require.Equal(t, 1, keys, "A's memory holds bookkeeping only")
	require.Zero(t, pool, "a refill goes to one tier: the shared one")
}

// TestAnAdIsHandedOutOnceAcrossTwoInstances runs rounds of 500 concurrent
// identical requests on each of two instances sharing one Redis.
func TestAnAdIsHandedOutOnceAcrossTwoInstances(t *testing.T) {
	t.Parallel()
	up := newUpstream(decision.MaxCount, "banner")
	up.Delay = 20 * time.Millisecond
	cfg := Config{Prefetch: decision.MaxCount, LockWait: 2 * time.Second}
	a := setup(t, true, cfg, up)
	b := a.instance(t, cfg)
	const perInstance, rounds = 500, 3
	var mu sync.Mutex
	seen := map[string]int{}
	served := 0
	for range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 2 * perInstance {
			d := a.d
			if i%2 == 1 {
				d = b.d
			}
			wg.Go(func() {
				<-start
				resp, err := d.Decide(context.Background(), banner(1))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, id := range ids(resp, "slot") {
					seen[id]++
					served++
				}
			})
		}
		close(start)
		wg.Wait()
		a.settle(t)
		b.settle(t)
	}
	for id, n := range seen {
		require.Equal(t, 1, n, "ad %s handed out %d times", id)
	}
	calls := len(up.Calls())
	require.GreaterOrEqual(t, calls, rounds)
	require.LessOrEqual(t, served, calls*decision.MaxCount)
	require.Positive(t, served)
	t.Logf("%d answers over %d rounds: %d ads served from %d upstream calls", 2*perInstance*rounds, rounds, served, calls)
	require.Zero(t, testutil.CollectAndCount(a.d.stats.sharedErrs)+testutil.CollectAndCount(b.d.stats.sharedErrs))
}

func TestAnInstanceWaitsForAnotherInstancesRefill(t *testing.T) {
	t.Parallel()
	up := newUpstream(5, "banner")
	release := make(chan struct{})
	up.setBefore(func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return decision.ErrTimeout
		}
	})
	cfg := Config{Prefetch: 5, LockWait: 10 * time.Second, UpstreamTimeout: 20 * time.Second}
	a := setup(t, true, cfg, up)
	b := a.instance(t, cfg)
	waiting := make(chan struct{})
	b.d.hooks.remoteWait = func() { close(waiting) }

	fromA := goDecide(context.Background(), a.d, banner(1))
	require.Eventually(t, func() bool { return len(up.Calls()) == 1 }, 5*time.Second, time.Millisecond, "A holds the lock and asks upstream")
	fromB := goDecide(context.Background(), b.d, banner(1))
	<-waiting
	close(release)

	ra, rb := <-fromA, <-fromB
	require.NoError(t, ra.err)
	require.NoError(t, rb.err)
	require.Equal(t, []string{"fake-1"}, ra.ids)
	require.Equal(t, []string{"fake-2"}, rb.ids, "B answered from A's refill")
	require.Len(t, up.Calls(), 1, "only one instance refilled")
}

func TestAnInstanceAnswersFromWhatExistsAfterLockWait(t *testing.T) {
	t.Parallel()
	b := setup(t, true, Config{LockWait: 20 * time.Millisecond}, nil)
	// Another instance holds the lock and never finishes.
	var slots [1]slot
	req := banner(1)
	requestKeys(&req, slots[:])
	held, err := b.shared.Lock(context.Background(), "someone-else", time.Minute, []Key{slots[0].key})
	require.NoError(t, err)
	require.Equal(t, []bool{true}, held)

	resp := b.decide(t, req)
	require.Empty(t, resp.Ads["slot"], "no fill rather than a second refill")
	require.Empty(t, b.up.Calls())
}

// TestASharedTierThatFailsFallsBackToMemoryAndUpstream runs the
// resilience policy against a tier that refuses every call, one that never
// answers, whatever its ctx, and one that panics.
func TestASharedTierThatFailsFallsBackToMemoryAndUpstream(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name         string
		hang, panics bool
	}{{"refused", false, false}, {"black hole", true, false}, {"panics", false, true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			logs := &testenv.Buffer{}
			b := setup(t, false, Config{}, nil)
			b = b.instance(t, Config{Prefetch: 3, Shared: newBrokenTier(t, c.hang, c.panics), SharedTimeout: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for i := range 3 {
				resp, err := b.d.Decide(ctx, banner(1))
				require.NoError(t, err)
				require.Len(t, resp.Ads["slot"], 1, "call %d", i)
				b.settle(t)
			}
			require.Len(t, b.up.Calls(), 1, "the refill went to memory and served the next two")
			require.Positive(t, testutil.ToFloat64(b.d.stats.sharedErrs.WithLabelValues("pop")))
			require.Contains(t, logs.String(), "level=WARN")
			require.Contains(t, logs.String(), "decision/cache: shared tier pop failed")
		})
	}
}
