package redis

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/adshare/adshare/internal/testenv"
)

// inbox collects what a Bus subscription handles.
type inbox struct {
	mu  sync.Mutex
	got []string
}

func (in *inbox) handle(m string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.got = append(in.got, m)
}

// is returns a condition: the inbox holds exactly want.
func (in *inbox) is(want ...string) func() bool {
	return func() bool {
		in.mu.Lock()
		defer in.mu.Unlock()
		return slices.Equal(in.got, want)
	}
}

// subscribeInbox subscribes an inbox to channel on bus until tb ends.
func subscribeInbox(tb testing.TB, bus *Bus, channel string) *inbox {
	tb.Helper()
	in := &inbox{}
	stop, err := bus.Subscribe(context.Background(), channel, in.handle)
	require.NoError(tb, err)
	tb.Cleanup(stop)
	return in
}

func (in *inbox) String() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return fmt.Sprintf("handled %q", in.got)
}

// TestBusRestoresAKilledSubscription kills a subscriber's connection: the
// subscription comes back, says that messages may have been missed, and
// delivers what is published next.
func TestBusRestoresAKilledSubscription(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testBusRestoresAKilledSubscription)
}

func testBusRestoresAKilledSubscription(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c, name := openNamedTarget(t, target)
	bus := c.Bus(&SubscriptionOptions{RetryBackoff: 10 * time.Millisecond})
	in := subscribeInbox(t, bus, "ch")
	require.NoError(t, bus.Publish(ctx, "ch", "before"))
	require.Eventually(t, in.is("before"), 2*time.Second, 5*time.Millisecond, in)

	killSubscriber(t, c, name)
	require.Eventually(t, in.is("before", ""), 5*time.Second, 5*time.Millisecond, in)
	require.NoError(t, bus.Publish(ctx, "ch", "after"))
	require.Eventually(t, in.is("before", "", "after"), 2*time.Second, 5*time.Millisecond, in)
}

// TestBusReopensAStalledSubscription freezes a subscriber's connection
// without closing it, as a dead network path does: go-redis sees nothing
// wrong, but the health check does, and the subscription is opened anew.
func TestBusReopensAStalledSubscription(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, prefix := testenv.Redis(t)
	c, proxy := openProxiedClient(t, url, prefix)
	bus := c.Bus(&SubscriptionOptions{HealthCheckInterval: 100 * time.Millisecond, RetryBackoff: 10 * time.Millisecond})
	publisher := openClientWithPrefix(t, url, prefix, "").Bus(nil)
	in := subscribeInbox(t, bus, "ch")
	require.NoError(t, publisher.Publish(ctx, "ch", "before"))
	require.Eventually(t, in.is("before"), 2*time.Second, 5*time.Millisecond, in)

	proxy.freezeSubscribers()
	require.NoError(t, publisher.Publish(ctx, "ch", "lost"))
	require.Eventually(t, in.is("before", ""), 5*time.Second, 5*time.Millisecond, in)
	require.NoError(t, publisher.Publish(ctx, "ch", "after"))
	require.Eventually(t, in.is("before", "", "after"), 2*time.Second, 5*time.Millisecond, in)
	require.Equal(t, int64(1), proxy.frozen.Load())
}

// TestBusStopLeavesNoGoroutine stops subscriptions in every state: healthy,
// restored after a loss, and trying to reach a server that went away.
// Nothing they started may outlive stop.
//
// It does not run in parallel: goleak looks at every goroutine of the
// process, and the parallel tests wait while it runs.
func TestBusStopLeavesNoGoroutine(t *testing.T) {
	ctx := context.Background()
	direct, name := openNamedClient(t)
	url, prefix := testenv.Redis(t)
	proxied, proxy := openProxiedClient(t, url, prefix)
	opts := &SubscriptionOptions{HealthCheckInterval: 100 * time.Millisecond, RetryBackoff: 10 * time.Millisecond}
	require.NoError(t, direct.Ping(ctx))
	require.NoError(t, proxied.Ping(ctx))
	ignore := goleak.IgnoreCurrent()

	var first, second, orphaned inbox // on direct: one is killed, the other stays healthy
	stopFirst, err := direct.Bus(opts).Subscribe(ctx, "a", first.handle)
	require.NoError(t, err)
	stopSecond, err := direct.Bus(opts).Subscribe(ctx, "b", second.handle)
	require.NoError(t, err)
	stopOrphaned, err := proxied.Bus(opts).Subscribe(ctx, "c", orphaned.handle)
	require.NoError(t, err)

	killSubscriber(t, direct, name) // the first of the two listed
	proxy.shutdown()
	require.Eventually(t, func() bool { return first.is("")() || second.is("")() }, 5*time.Second, 5*time.Millisecond,
		"the killed subscription was restored")
	time.Sleep(100 * time.Millisecond) // the orphan keeps trying to reach the proxy

	stopFirst()
	stopSecond()
	stopOrphaned()
	goleak.VerifyNone(t, ignore)
}
