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

// A Redis slower than the lease timeout counts as down: the borrowing
// gives up in that time and the fallback answers.
func TestLeasedLimiterGivesUpOnASlowRedis(t *testing.T) {
	t.Parallel()
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
	l := c.LeasedLimiter(&redisstore.LeasedLimiterOptions{Fallback: memory.NewLimiter(), Timeout: 100 * time.Millisecond})
	lim := auth.Limit{Rate: 100, Period: time.Second, Burst: 10}

	proxy.Set(faultproxy.Fault{HalfOpen: true})
	began := time.Now()
	res, err := l.Allow(context.Background(), "k", lim)
	require.NoError(t, err)
	require.True(t, res.Allowed, "the fallback answered")
	require.Less(t, time.Since(began), 2*time.Second, "the borrowing gave up at its timeout, not the socket's")
}
