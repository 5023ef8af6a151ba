package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
)

// RunBroadcaster runs the adspace.Broadcaster contract. newBus returns
// buses that share one medium (two "instances" of the service).
func RunBroadcaster(t *testing.T, newBus func(t *testing.T) (a, b adspace.Broadcaster)) {
	t.Helper()
	ctx := context.Background()

	collect := func(t *testing.T, bus adspace.Broadcaster, channel string) (*sync.Mutex, *[]string, func()) {
		var mu sync.Mutex
		var got []string
		stop, err := bus.Subscribe(ctx, channel, func(m string) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, m)
		})
		require.NoError(t, err)
		return &mu, &got, stop
	}
	seen := func(mu *sync.Mutex, got *[]string, want ...string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			var real []string
			for _, m := range *got {
				if m != "" { // "" only says messages may have been missed
					real = append(real, m)
				}
			}
			if len(real) != len(want) {
				return false
			}
			for i := range want {
				if real[i] != want[i] {
					return false
				}
			}
			return true
		}
	}

	t.Run("every subscriber on every instance gets each message, in order", func(t *testing.T) {
		t.Parallel()
		a, b := newBus(t)
		muA, gotA, stopA := collect(t, a, "c1")
		defer stopA()
		muB, gotB, stopB := collect(t, b, "c1")
		defer stopB()
		require.NoError(t, a.Publish(ctx, "c1", "one"))
		require.NoError(t, b.Publish(ctx, "c1", "two"))
		require.Eventually(t, seen(muA, gotA, "one", "two"), 2*time.Second, 5*time.Millisecond)
		require.Eventually(t, seen(muB, gotB, "one", "two"), 2*time.Second, 5*time.Millisecond)
	})

	t.Run("channels are separate and stop stops", func(t *testing.T) {
		t.Parallel()
		a, b := newBus(t)
		mu, got, stop := collect(t, b, "c2")
		require.NoError(t, a.Publish(ctx, "other", "nope"))
		require.NoError(t, a.Publish(ctx, "c2", "yes"))
		require.Eventually(t, seen(mu, got, "yes"), 2*time.Second, 5*time.Millisecond)
		stop()
		stop = func() {}
		require.NoError(t, a.Publish(ctx, "c2", "after stop"))
		time.Sleep(50 * time.Millisecond)
		require.True(t, seen(mu, got, "yes")(), "nothing after stop")
	})
}
