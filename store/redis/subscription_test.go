package redis

import (
	"bytes"
	"context"
	"errors"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/testenv"
)

// received is one message a subscription delivered.
type received struct{ channel, payload string }

// recorder keeps what a subscription's hooks saw, for tests.
type recorder struct {
	mu       sync.Mutex
	messages []received
	resyncs  []time.Time // when onSubscribed ran
	healthy  []bool      // the subscription's health as each onSubscribed ran
	fail     func(n int) error
}

// hook sets s's hooks to record into r. onSubscribed's nth call (from 1)
// returns r.fail(n) when r.fail is set.
func (r *recorder) hook(s *subscription) {
	s.onSubscribed = func(context.Context) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.resyncs = append(r.resyncs, time.Now())
		r.healthy = append(r.healthy, s.healthy.Load())
		if r.fail != nil {
			return r.fail(len(r.resyncs))
		}
		return nil
	}
	s.onMessage = func(channel, payload string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.messages = append(r.messages, received{channel, payload})
	}
}

func (r *recorder) resyncCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.resyncs)
}

func (r *recorder) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.messages...)
}

// openNamedClient returns a client on the test Redis with a prefix unique to
// tb, whose connections carry a name unique to tb (for killSubscriber).
func openNamedClient(tb testing.TB) (c *Client, name string) {
	tb.Helper()
	url, prefix := testenv.Redis(tb)
	name = "adshare-test-" + uuid.NewString()
	return openClientWithPrefix(tb, url, prefix, name), name
}

// openNamedTarget returns a client on target r whose connections carry a
// name unique to tb (for killSubscriber).
func openNamedTarget(tb testing.TB, target testenv.RedisTarget) (c *Client, name string) {
	tb.Helper()
	name = "adshare-test-" + uuid.NewString()
	return openTarget(tb, target, name), name
}

// killSubscriber closes, from Redis's side, the first listed pub/sub
// connection of the client named name (CLIENT KILL ID), as a restart or a
// network failure does. On a Redis Cluster it looks for the connection on
// every master: a subscription lives on the node of its channel's slot.
func killSubscriber(tb testing.TB, c *Client, name string) {
	tb.Helper()
	ctx := context.Background()
	subscriber := regexp.MustCompile(`(?m)^id=(\d+) .*name=` + regexp.QuoteMeta(name) + ` .*sub=[1-9]\d* `)
	kill := func(ctx context.Context, node goredis.Cmdable) (bool, string, error) {
		list, err := node.ClientList(ctx).Result()
		if err != nil {
			return false, "", err
		}
		m := subscriber.FindStringSubmatch(list)
		if m == nil {
			return false, list, nil
		}
		return true, list, node.ClientKillByFilter(ctx, "ID", m[1]).Err()
	}
	cc, ok := c.Redis().(*goredis.ClusterClient)
	if !ok {
		killed, list, err := kill(ctx, c.Redis())
		require.NoError(tb, err)
		require.True(tb, killed, "the subscriber connection is listed:\n%s", list)
		return
	}
	var masters []*goredis.Client
	var mu sync.Mutex
	require.NoError(tb, cc.ForEachMaster(ctx, func(_ context.Context, n *goredis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters = append(masters, n)
		return nil
	}))
	var lists []string
	for _, n := range masters { // one at a time: kill one connection, not one per node
		killed, list, err := kill(ctx, n)
		require.NoError(tb, err)
		if killed {
			return
		}
		lists = append(lists, list)
	}
	tb.Fatalf("the subscriber connection is not listed on any master:\n%s", strings.Join(lists, "\n"))
}

func TestSubscriptionResyncsOncePerSubscriptionOfSeveralChannels(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testSubscriptionResyncsOncePerSubscriptionOfSeveralChannels)
}

func testSubscriptionResyncsOncePerSubscriptionOfSeveralChannels(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c, name := openNamedTarget(t, target)
	a, b := c.prefix+"a", c.prefix+"b"
	s := newSubscription(c.rdb, "test", &SubscriptionOptions{RetryBackoff: 10 * time.Millisecond}, a, b, a)
	var r recorder
	r.hook(s)
	require.NoError(t, s.start(ctx))
	t.Cleanup(func() { require.NoError(t, s.stop(context.Background())) })
	require.True(t, s.healthy.Load())
	require.Equal(t, 1, r.resyncCount(), "both confirmations make one subscription")

	require.NoError(t, c.rdb.Publish(ctx, a, "1").Err())
	require.NoError(t, c.rdb.Publish(ctx, b, "2").Err())
	require.Eventually(t, func() bool { return len(r.got()) == 2 }, 2*time.Second, 5*time.Millisecond)
	if target.Cluster() {
		// Each PUBLISH goes to its channel's node and on over the cluster
		// bus: messages of different channels may overtake each other.
		require.ElementsMatch(t, []received{{a, "1"}, {b, "2"}}, r.got(), "each with its channel")
	} else {
		require.Equal(t, []received{{a, "1"}, {b, "2"}}, r.got(), "in order, each with its channel")
	}

	killSubscriber(t, c, name)
	require.Eventually(t, func() bool { return r.resyncCount() == 2 && s.healthy.Load() }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, c.rdb.Publish(ctx, b, "3").Err())
	require.Eventually(t, func() bool { return len(r.got()) == 3 }, 2*time.Second, 5*time.Millisecond)
	require.Equal(t, received{b, "3"}, r.got()[2])
	time.Sleep(100 * time.Millisecond) // ten retry backoffs
	require.Equal(t, 2, r.resyncCount(), "one restoration, not one per channel")
}

// A failing onSubscribed after a loss leaves the subscription unhealthy and
// is retried, waiting twice as long each time, until it succeeds.
func TestSubscriptionRetriesAFailedResyncWithAGrowingBackoff(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testSubscriptionRetriesAFailedResyncWithAGrowingBackoff)
}

func testSubscriptionRetriesAFailedResyncWithAGrowingBackoff(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c, name := openNamedTarget(t, target)
	const backoff = 40 * time.Millisecond
	s := newSubscription(c.rdb, "test", &SubscriptionOptions{RetryBackoff: backoff}, c.prefix+"ch")
	errResync := errors.New("resync failed")
	r := recorder{fail: func(n int) error {
		if n == 2 || n == 3 || n == 4 { // the first three attempts to restore
			return errResync
		}
		return nil
	}}
	r.hook(s)
	require.NoError(t, s.start(ctx))
	t.Cleanup(func() { require.NoError(t, s.stop(context.Background())) })

	killSubscriber(t, c, name)
	require.Eventually(t, func() bool { return r.resyncCount() == 5 && s.healthy.Load() }, 5*time.Second, 5*time.Millisecond)

	r.mu.Lock()
	resyncs, healthy := append([]time.Time(nil), r.resyncs...), append([]bool(nil), r.healthy...)
	r.mu.Unlock()
	require.Equal(t, []bool{false, false, false, false, false}, healthy, "unhealthy until onSubscribed succeeded")
	for i, want := range []time.Duration{2 * backoff, 4 * backoff, 8 * backoff} {
		require.GreaterOrEqual(t, resyncs[i+2].Sub(resyncs[i+1]), want, "the wait before attempt %d", i+2)
	}
	require.NoError(t, c.rdb.Publish(ctx, c.prefix+"ch", "after").Err())
	require.Eventually(t, func() bool { return len(r.got()) == 1 }, 2*time.Second, 5*time.Millisecond)
}

func TestSubscriptionStartFailsWhenItCannotSubscribeOrResync(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testSubscriptionStartFailsWhenItCannotSubscribeOrResync)
}

func testSubscriptionStartFailsWhenItCannotSubscribeOrResync(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c := openTarget(t, target, "")
	errResync := errors.New("resync failed")
	s := newSubscription(c.rdb, "test", nil, c.prefix+"ch")
	r := recorder{fail: func(n int) error {
		if n == 1 {
			return errResync
		}
		return nil
	}}
	r.hook(s)
	require.ErrorIs(t, s.start(ctx), errResync)
	require.False(t, s.healthy.Load())
	require.NoError(t, s.start(ctx), "a failed start may be tried again")
	require.True(t, s.healthy.Load())
	require.NoError(t, s.stop(ctx))
	require.False(t, s.healthy.Load())
	require.Error(t, s.start(ctx), "a stopped subscription does not start again")

	dead := newSubscription(deadClient(t).rdb, "test", nil, "ch")
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	require.Error(t, dead.start(sctx))
	require.False(t, dead.healthy.Load())
	require.NoError(t, dead.stop(ctx))
}

// TestSubscriptionStopInterruptsARestoration stops a subscription while it
// waits for Redis to confirm a new subscription that will never be
// confirmed: stop must not wait for the confirmation's timeout.
func TestSubscriptionStopInterruptsARestoration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, prefix := testenv.Redis(t)
	c, proxy := openProxiedClient(t, url, prefix)
	s := newSubscription(c.rdb, "test", &SubscriptionOptions{HealthCheckInterval: 30 * time.Second, RetryBackoff: time.Millisecond}, prefix+"ch")
	var r recorder
	r.hook(s)
	require.NoError(t, s.start(ctx))

	// From now on every SUBSCRIBE goes unanswered; killing the connection
	// sends the subscription to restore itself through one of those.
	proxy.freezeNewSubscribers.Store(true)
	frozen := proxy.frozen.Load()
	proxy.killSubscribers()
	require.Eventually(t, func() bool { return proxy.frozen.Load() > frozen && !s.healthy.Load() }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // for the restoration to be waiting (a millisecond's backoff)

	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	require.NoError(t, s.stop(sctx), "stop interrupts the wait for a confirmation")
	require.Equal(t, 1, r.resyncCount())
}

// openProxiedClient returns a client on url, with the given prefix, that
// reaches Redis through a proxy the test can break.
func openProxiedClient(tb testing.TB, url, prefix string) (*Client, *freezableProxy) {
	tb.Helper()
	opts, err := goredis.ParseURL(url)
	require.NoError(tb, err)
	proxy := startFreezableProxy(tb, opts.Addr)
	opts.Addr = proxy.addr
	c := New(goredis.NewClient(opts), &Config{Prefix: prefix})
	tb.Cleanup(func() { _ = c.Redis().Close() })
	return c, proxy
}

// freezableProxy forwards TCP connections to a Redis server. It can stop
// forwarding on the subscriber connections it has seen without closing
// them (as a dead network path does), close them, or shut down (as a
// server going away does).
type freezableProxy struct {
	addr   string
	frozen atomic.Int64 // connections frozen
	// freezeNewSubscribers freezes every connection as it sends a
	// SUBSCRIBE (which is dropped).
	freezeNewSubscribers atomic.Bool

	ln   net.Listener
	done sync.WaitGroup // the accept loop and every pump

	mu     sync.Mutex
	closed bool
	pairs  []*proxyPair
}

type proxyPair struct {
	client, server net.Conn
	subscriber     atomic.Bool
	frozen         atomic.Bool
}

func startFreezableProxy(tb testing.TB, target string) *freezableProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	p := &freezableProxy{addr: ln.Addr().String(), ln: ln}
	tb.Cleanup(p.shutdown)
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			pair := &proxyPair{client: client, server: server}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				_, _ = client.Close(), server.Close()
				return
			}
			p.pairs = append(p.pairs, pair)
			p.done.Add(2)
			p.mu.Unlock()
			go func() { defer p.done.Done(); p.pump(pair, server, client, true) }()
			go func() { defer p.done.Done(); p.pump(pair, client, server, false) }()
		}
	}()
	return p
}

// pump copies src to dst until either fails, dropping the bytes once the
// pair is frozen. Upstream, it notes a SUBSCRIBE.
func (p *freezableProxy) pump(pair *proxyPair, dst, src net.Conn, upstream bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if upstream && bytes.Contains(bytes.ToLower(buf[:n]), []byte("subscribe")) {
			pair.subscriber.Store(true)
			if p.freezeNewSubscribers.Load() && !pair.frozen.Swap(true) {
				p.frozen.Add(1)
			}
		}
		if pair.frozen.Load() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (p *freezableProxy) freezeSubscribers() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pair := range p.pairs {
		if pair.subscriber.Load() && !pair.frozen.Swap(true) {
			p.frozen.Add(1)
		}
	}
}

// killSubscribers closes the subscriber connections it has seen.
func (p *freezableProxy) killSubscribers() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pair := range p.pairs {
		if pair.subscriber.Load() {
			_, _ = pair.client.Close(), pair.server.Close()
		}
	}
}

// shutdown stops accepting, closes every connection and waits for its
// goroutines. It is idempotent.
func (p *freezableProxy) shutdown() {
	p.mu.Lock()
	p.closed = true
	for _, pair := range p.pairs {
		_, _ = pair.client.Close(), pair.server.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.done.Wait()
}
