package redis_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/faultproxy"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/memory"
	redisstore "github.com/adshare/adshare/store/redis"
)

// Two instances, each with its own leased limiter on one Redis: a client
// alternating between them gets the limit once, not twice.
func TestLeasedLimiterHoldsAcrossInstances(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testLeasedLimiterHoldsAcrossInstances)
}

func testLeasedLimiterHoldsAcrossInstances(t *testing.T, r testenv.RedisTarget) {
	// No fallback: every answer is Redis's (a generous timeout, for a
	// loaded CI machine).
	opts := &redisstore.LeasedLimiterOptions{Timeout: 10 * time.Second}
	a, b := openOn(t, r).LeasedLimiter(opts), openOn(t, r).LeasedLimiter(opts)
	lim := auth.Limit{Rate: 1, Period: time.Hour, Burst: 50} // no refill during the test
	ctx := context.Background()
	allowed := 0
	for i := range 200 {
		l := a
		if i%2 == 1 {
			l = b
		}
		r, err := l.Allow(ctx, "client", lim)
		require.NoError(t, err)
		if r.Allowed {
			allowed++
		} else {
			require.Positive(t, r.RetryAfter)
		}
	}
	require.LessOrEqual(t, allowed, lim.Burst, "never more than the limit across instances")
	require.GreaterOrEqual(t, allowed, lim.Burst-2*(lim.Burst/10), "at most a lease per instance is lost")
}

// While Redis does not answer, the fallback limits per instance, and the
// outage is logged once.
func TestLeasedLimiterFallsBackWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	url, prefix := testenv.Redis(t)
	proxy := newProxy(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := redisstore.Open(ctx, proxy.url, &redisstore.Config{Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	logs := &testenv.Buffer{}
	l := c.LeasedLimiter(&redisstore.LeasedLimiterOptions{Fallback: memory.NewLimiter(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	lim := auth.Limit{Rate: 1, Period: time.Hour, Burst: 3}
	r, err := l.Allow(ctx, "k", lim)
	require.NoError(t, err)
	require.True(t, r.Allowed)

	proxy.down()
	var allowed int
	for range 5 {
		r, err := l.Allow(ctx, "other", lim)
		require.NoError(t, err, "the fallback answers")
		if r.Allowed {
			allowed++
		}
	}
	require.Equal(t, 3, allowed, "the fallback's own limit")
	require.Equal(t, 1, strings.Count(logs.String(), "does not answer"), "one warning per outage")
}

// proxy forwards TCP to Redis until down is called; then every connection
// is cut and new ones are refused.
type proxy struct {
	url  string
	l    net.Listener
	mu   sync.Mutex
	cons []net.Conn
}

func newProxy(t *testing.T, redisURL string) *proxy {
	t.Helper()
	opts, err := goredis.ParseURL(redisURL)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{l: l, url: "redis://" + l.Addr().String() + "/" + strconv.Itoa(opts.DB)}
	t.Cleanup(p.down)
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", opts.Addr)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.mu.Lock()
			p.cons = append(p.cons, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
	return p
}

func (p *proxy) down() {
	_ = p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.cons {
		_ = c.Close()
	}
	p.cons = nil
}

// openBehindProxy opens a client on a fresh Redis prefix through a fault
// proxy, and returns it with the proxy, Redis's own URL and the prefix.
func openBehindProxy(t *testing.T) (*redisstore.Client, *faultproxy.Proxy, string, string) {
	t.Helper()
	url, prefix := testenv.Redis(t)
	u, err := neturl.Parse(url)
	require.NoError(t, err)
	proxy, err := faultproxy.Start(u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	u.Host = proxy.Addr()
	c, err := redisstore.Open(context.Background(), u.String(), &redisstore.Config{Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c, proxy, url, prefix
}

// A Redis slower than the lease timeout counts as down: the borrowing
// gives up in that time and the fallback answers.
func TestLeasedLimiterGivesUpOnASlowRedis(t *testing.T) {
	t.Parallel()
	c, proxy, _, _ := openBehindProxy(t)
	l := c.LeasedLimiter(&redisstore.LeasedLimiterOptions{Fallback: memory.NewLimiter(), Timeout: 100 * time.Millisecond})
	lim := auth.Limit{Rate: 100, Period: time.Second, Burst: 10}

	proxy.Set(faultproxy.Fault{HalfOpen: true})
	began := time.Now()
	res, err := l.Allow(context.Background(), "k", lim)
	require.NoError(t, err)
	require.True(t, res.Allowed, "the fallback answered")
	require.Less(t, time.Since(began), 2*time.Second, "the borrowing gave up at its timeout, not the socket's")
}

// A busy key's lease is renewed in the background before it runs out:
// when Redis stops answering at the old lease's expiry, the key's
// requests go on from the new lease, with no fallback to answer for them.
// A quiet key is not renewed ahead (it would take allowance it does not
// spend): it borrows when it needs to.
func TestLeasedLimiterRenewsABusyLeaseAhead(t *testing.T) {
	t.Parallel()
	c, proxy, url, prefix := openBehindProxy(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	l := c.LeasedLimiter(&redisstore.LeasedLimiterOptions{Now: clock, Timeout: 2 * time.Second})
	lim := auth.Limit{Rate: 1, Period: time.Hour, Burst: 1000} // leases of 100, no refill
	ctx := context.Background()
	allow := func(key string) auth.LimitResult {
		t.Helper()
		r, err := l.Allow(ctx, key, lim)
		require.NoError(t, err)
		return r
	}

	require.True(t, allow("busy").Allowed) // the first lease
	require.True(t, allow("quiet").Allowed)
	for range 60 {
		require.True(t, allow("busy").Allowed)
	}
	opts, err := goredis.ParseURL(url) // the GCRA state in Redis, read directly
	require.NoError(t, err)
	direct := goredis.NewClient(opts)
	t.Cleanup(func() { _ = direct.Close() })
	tat := func(key string) string { return direct.Get(ctx, prefix+"rl:"+key).Val() }
	before, quietBefore := tat("busy"), tat("quiet")
	require.NotEmpty(t, before)

	advance(850 * time.Millisecond) // late in the lease, more than half of it spent
	first := allow("busy")
	require.True(t, first.Allowed)
	require.True(t, allow("quiet").Allowed) // late, but hardly spent: no renewal
	var next auth.LimitResult
	require.Eventually(t, func() bool { // the answer to the renewal has come back: a reset 100 events later
		next = allow("busy")
		return next.ResetAfter > first.ResetAfter+90*lim.Interval()
	}, 5*time.Second, 10*time.Millisecond, "the busy lease is renewed in the background")
	require.NotEqual(t, before, tat("busy"))
	require.Less(t, next.Remaining, first.Remaining, "a renewal adds to the live lease: what may be spent goes on counting down")
	require.Greater(t, next.Remaining, first.Remaining-10)

	proxy.Down()
	advance(300 * time.Millisecond) // past the first lease's expiry
	for range 20 {
		require.True(t, allow("busy").Allowed, "served from the renewed lease")
	}
	require.Equal(t, quietBefore, tat("quiet"), "the quiet key borrowed nothing ahead")
	_, err = l.Allow(ctx, "quiet", lim)
	require.Error(t, err, "the quiet key's lease expired and Redis does not answer")
}
