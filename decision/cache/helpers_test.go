package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/decisiontest"
)

// tiers names the two configurations every behaviour is checked in:
// memory alone, and with store/redis's DecisionPools as the shared tier.
var tiers = []struct {
	name  string
	redis bool
}{{"memory", false}, {"redis", true}}

// clock is a settable clock for TTL tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// upstream is a decisiontest.Fake (which counts calls) answering from an
// inner Fake stocked with ads, each decision getting tracking URLs unique
// to it, as Kevel's are. Err and Before are read on every call; set them
// through their setters.
type upstream struct {
	*decisiontest.Fake
	inner  decisiontest.Fake
	err    atomic.Pointer[error]
	before atomic.Pointer[func(context.Context) error]
}

// newUpstream returns an upstream stocked with n ads of format (IDs
// "fake-1", "fake-2"... in the order it hands them out).
func newUpstream(n int, format string) *upstream {
	u := &upstream{}
	for i := range n {
		u.inner.Ads = append(u.inner.Ads, decision.Ad{
			Source: "fake", AdID: strconv.Itoa(i + 1), AdvertiserID: strconv.Itoa(100 + i),
			Creative: decision.Creative{Format: format, Title: fmt.Sprintf("Ad %d", i+1), LandingURL: "https://advertiser.example/"},
			Price:    decision.Price{Model: decision.CPM, Micros: 1_000_000},
		})
	}
	u.Fake = &decisiontest.Fake{Func: u.decide}
	return u
}

func (u *upstream) decide(ctx context.Context, req decision.Request) (decision.Response, error) {
	if f := u.before.Load(); f != nil {
		if err := (*f)(ctx); err != nil {
			return decision.Response{}, err
		}
	}
	if err := u.err.Load(); err != nil && *err != nil {
		return decision.Response{}, *err
	}
	resp, err := u.inner.Decide(ctx, req)
	for _, ads := range resp.Ads {
		for i := range ads {
			ads[i].Tracking = decision.Tracking{
				ImpressionURL: "https://e.example/i?d=" + ads[i].ID,
				ClickURL:      "https://e.example/r?d=" + ads[i].ID,
				ExpiresAt:     time.Now().Add(24 * time.Hour),
			}
		}
	}
	return resp, err
}

func (u *upstream) setErr(err error) { u.err.Store(&err) }

func (u *upstream) setBefore(f func(context.Context) error) { u.before.Store(&f) }

// testBundle is one decorator under test and what it is made of.
type testBundle struct {
	d      *Decider
	up     *upstream
	clock  *clock
	reg    *prometheus.Registry
	shared Tier // nil in memory-only bundles
}

// setup returns a decorator over up (a fresh one with 20 banner ads when
// nil), with a fake clock and a registry, with a shared tier in Redis
// when withRedis.
func setup(t testing.TB, withRedis bool, cfg Config, up *upstream) *testBundle {
	t.Helper()
	b := &testBundle{up: up, clock: newClock(), reg: prometheus.NewRegistry()}
	if b.up == nil {
		b.up = newUpstream(20, "banner")
	}
	if withRedis {
		b.shared = sharedTier(t)
	}
	return b.instance(t, cfg)
}

// instance returns a bundle for another decorator (another app instance)
// sharing b's upstream, clock and shared tier.
func (b *testBundle) instance(t testing.TB, cfg Config) *testBundle {
	t.Helper()
	nb := *b
	nb.reg = prometheus.NewRegistry()
	cfg.Metrics = nb.reg
	cfg.Now = cmpOr(cfg.Now, b.clock.Now)
	if b.shared != nil {
		cfg.Shared = b.shared
		if cfg.SharedTimeout == 0 {
			cfg.SharedTimeout = 5 * time.Second // generous under -race on a loaded machine
		}
	}
	d, err := New(b.up, &cfg)
	require.NoError(t, err)
	nb.d = d
	return &nb
}

func cmpOr(f, def func() time.Time) func() time.Time {
	if f != nil {
		return f
	}
	return def
}

// banner is a request for n banner ads in one placement.
func banner(n int) decision.Request {
	return decision.Request{Placements: []decision.Placement{{ID: "slot", AdTypes: []int{5}, Formats: []string{"banner"}, Count: n}}}
}

// decide calls the decorator once its background refills are over, and
// waits for the ones the call starts, so that counts are exact. It fails
// the test on an error.
func (b *testBundle) decide(t testing.TB, req decision.Request) decision.Response {
	t.Helper()
	b.settle(t)
	resp, err := b.d.Decide(context.Background(), req)
	require.NoError(t, err)
	b.settle(t)
	return resp
}

// settle waits until no refill is in progress: a Decide returns once its
// share is out, before the leftovers are stored.
func (b *testBundle) settle(t testing.TB) {
	t.Helper()
	require.Eventually(t, func() bool {
		b.d.mu.Lock()
		defer b.d.mu.Unlock()
		return len(b.d.flights) == 0
	}, 10*time.Second, 100*time.Microsecond)
}

// result is one Decide's outcome, for calls made in goroutines.
type result struct {
	ids []string
	err error
}

// goDecide calls d in a goroutine; the result arrives on the channel.
func goDecide(ctx context.Context, d decision.Decider, req decision.Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := d.Decide(ctx, req)
		ch <- result{ids(resp, "slot"), err}
	}()
	return ch
}

// ids returns the decision IDs of a placement's ads.
func ids(resp decision.Response, placement string) []string {
	var out []string
	for _, ad := range resp.Ads[placement] {
		out = append(out, ad.ID)
	}
	return out
}

// brokenTier is a shared tier whose every call fails with errBroken, or
// panics; with hang set, a call first blocks, whatever its ctx, until the
// test ends: only the decorator's bounds can then save the caller.
type brokenTier struct {
	hang   chan struct{}
	panics bool
}

var errBroken = errors.New("tier: connection refused")

var _ Tier = brokenTier{}

// newBrokenTier returns a failing tier: one that hangs, or one that
// panics, when asked.
func newBrokenTier(t *testing.T, hang, panics bool) brokenTier {
	t.Helper()
	b := brokenTier{panics: panics}
	if hang {
		b.hang = make(chan struct{})
		t.Cleanup(func() { close(b.hang) })
	}
	return b
}

func (b brokenTier) fail() error {
	if b.hang != nil {
		<-b.hang
	}
	if b.panics {
		panic("tier: bug")
	}
	return errBroken
}

func (b brokenTier) Pop(context.Context, time.Time, []Pop) error { return b.fail() }

func (b brokenTier) Lock(context.Context, string, time.Duration, []Key) ([]bool, error) {
	return nil, b.fail()
}

func (b brokenTier) Locked(context.Context, []Key) ([]bool, error) { return nil, b.fail() }

func (b brokenTier) EndRefill(context.Context, Refill) (RefillResult, error) {
	return RefillResult{}, b.fail()
}
