package kevel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/decisiontest"
	"github.com/adshare/adshare/decision/kevel"
	"github.com/adshare/adshare/decision/kevel/kevelfake"
	"github.com/adshare/adshare/internal/errs"
)

const (
	networkID = 23
	siteID    = 667480
	// apiKey is what the redaction tests look for.
	apiKey = "kvl-SECRET-3f9a1c0e5d7b"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects logs written concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testBundle struct {
	client *kevel.Client
	fake   *kevelfake.Server
	clock  *clock
	reg    *prometheus.Registry
	logs   *syncBuffer
}

// setup starts a fake Kevel with stock and a client on it; mutate may
// change the client's config.
func setup(t *testing.T, ads []kevelfake.Ad, mutate ...func(*kevel.Config)) *testBundle {
	t.Helper()
	c := newClock()
	b := &testBundle{
		fake:  kevelfake.StartTB(t, kevelfake.Config{NetworkID: networkID, SiteIDs: []int64{siteID}, APIKey: apiKey, Ads: ads, Now: c.Now}),
		clock: c,
		reg:   prometheus.NewRegistry(),
		logs:  &syncBuffer{},
	}
	cfg := kevel.Config{
		NetworkID: networkID, SiteID: siteID, BaseURL: b.fake.URL(), APIKey: apiKey,
		Logger:  slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: b.reg, Now: b.clock.Now,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	var err error
	b.client, err = kevel.New(cfg)
	require.NoError(t, err)
	return b
}

var banner = []kevelfake.Ad{
	{AdType: 5, Title: "Run faster", ImageURL: "https://static.adzerk.net/run.png", Width: 320, Height: 50, Price: "2.5", AdvertiserID: 101},
	{AdType: 5, HTML: "<b>Eat better</b>", Price: "1.5", AdvertiserID: 102, CustomData: map[string]any{"categories": []any{"food"}}},
}

func oneSlot(id string) decision.Request {
	return decision.Request{Placements: []decision.Placement{{ID: id, AdTypes: []int{5}}}}
}

func TestClientPassesTheSuite(t *testing.T) {
	t.Parallel()
	decisiontest.RunDecider(t, func(t *testing.T) decisiontest.Harness {
		b := setup(t, nil)
		return decisiontest.Harness{Decider: b.client, Stock: func(t *testing.T, stock []decisiontest.Stock) {
			ads := make([]kevelfake.Ad, 0, len(stock))
			for _, s := range stock {
				var adv int64
				_, err := fmt.Sscan(s.AdvertiserID, &adv)
				require.NoError(t, err)
				cats := make([]any, len(s.Categories))
				for i, c := range s.Categories {
					cats[i] = c
				}
				ads = append(ads, kevelfake.Ad{
					AdvertiserID: adv, AdType: s.AdType, Title: s.Title,
					CustomData: map[string]any{"categories": cats},
					Price:      fmt.Sprintf("%d.%06d", s.PriceMicros/1_000_000, s.PriceMicros%1_000_000),
				})
			}
			b.fake.SetAds(ads...)
		}}
	})
}

func TestNewRefusesMisuse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		description string
		cfg         kevel.Config
		expectErr   string
	}{
		{"no network", kevel.Config{}, "NetworkID is required"},
		{"negative site", kevel.Config{NetworkID: 1, SiteID: -1}, "SiteID"},
		{"relative base URL", kevel.Config{NetworkID: 1, BaseURL: "e-1.adzerk.net"}, "BaseURL"},
		{"base URL with credentials", kevel.Config{NetworkID: 1, BaseURL: "https://u:p@e-1.adzerk.net"}, "BaseURL"},
		{"ftp base URL", kevel.Config{NetworkID: 1, BaseURL: "ftp://e-1.adzerk.net"}, "BaseURL"},
		{"multi-line key", kevel.Config{NetworkID: 1, APIKey: "a\nb"}, "APIKey"},
		{"negative timeout", kevel.Config{NetworkID: 1, Timeout: -1}, "Timeout"},
		{"bad breaker ratio", kevel.Config{NetworkID: 1, Breaker: kevel.BreakerConfig{FailureRatio: 2}}, "Breaker"},
	} {
		_, err := kevel.New(tt.cfg)
		require.ErrorContains(t, err, tt.expectErr, tt.description)
	}
}

func TestDecideAgainstTheFake(t *testing.T) {
	t.Parallel()
	b := setup(t, banner)
	req := decision.Request{
		Placements: []decision.Placement{{ID: "top", AdTypes: []int{5}, Count: 2, EventIDs: []int{30}}, {ID: "side", AdTypes: []int{7}}},
		UserKey:    "u-1", UserAgent: "Mozilla/5.0 (iPhone)", IP: "203.0.113.9",
	}
	resp, err := b.client.Decide(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, "u-1", resp.UserKey)
	require.Len(t, resp.Ads["top"], 2)
	require.Empty(t, resp.Ads["side"])
	first := resp.Ads["top"][0]
	require.Equal(t, "kevel", first.Source)
	require.Equal(t, "101", first.AdvertiserID)
	require.Equal(t, decision.Price{Model: decision.CPM, Micros: 2_500_000}, first.Price)
	require.Equal(t, "banner", first.Creative.Format)
	require.Equal(t, "Run faster", first.Creative.Title)
	require.Equal(t, 320, first.Creative.Width)
	require.True(t, strings.HasPrefix(first.Tracking.ImpressionURL, b.fake.URL()+"/i.gif?"))
	require.Contains(t, first.Tracking.Events, 30)
	require.Equal(t, b.clock.Now().Add(kevel.DecisionTTL), first.Tracking.ExpiresAt)
	require.Equal(t, "html", resp.Ads["top"][1].Creative.Format)
	require.Equal(t, []string{"food"}, resp.Ads["top"][1].Categories)

	sent := b.fake.DecisionRequests()
	require.Len(t, sent, 1)
	require.Equal(t, "Mozilla/5.0 (iPhone)", sent[0].Header.Get("User-Agent"), "the end user's agent is forwarded")
	require.Equal(t, apiKey, sent[0].Header.Get("X-Adzerk-ApiKey"))

	require.NoError(t, testutil.GatherAndCompare(b.reg, strings.NewReader(`
# HELP adshare_kevel_placements_filled_total Placements that got at least one ad.
# TYPE adshare_kevel_placements_filled_total counter
adshare_kevel_placements_filled_total{placement="side"} 0
adshare_kevel_placements_filled_total{placement="top"} 1
`), "adshare_kevel_placements_filled_total"))
}

func TestGeneratedUserKeyIsKeptOnlyWithConsent(t *testing.T) {
	t.Parallel()
	b := setup(t, banner)
	resp, err := b.client.Decide(context.Background(), oneSlot("p"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(resp.UserKey, "ue1-"), "Kevel's generated key is returned")

	req := oneSlot("p")
	req.Consent = decision.Consent{GDPRApplies: true}
	resp, err = b.client.Decide(context.Background(), req)
	require.NoError(t, err)
	require.Empty(t, resp.UserKey, "no consent: the generated key is dropped")
}

// down returns the URL of a port where nothing listens.
func down(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

func TestFaults(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		description string
		fault       kevelfake.Fault
		latency     time.Duration
		warm        bool // one successful call first, so the faulty one reuses its connection
		baseURL     func(t *testing.T) string
		expectErr   error
		check       func(t *testing.T, b *testBundle, err error)
	}{
		{description: "slow: beyond the deadline", latency: 5 * time.Second, expectErr: decision.ErrTimeout},
		{description: "down: connection refused", baseURL: down, expectErr: decision.ErrUnavailable,
			check: func(t *testing.T, b *testBundle, _ error) {
				require.Equal(t, float64(kevel.DefaultMaxRetries), testutil.ToFloat64(counter(t, b.reg, "adshare_kevel_decision_retries_total")),
					"dial errors are retried")
			}},
		{description: "500", fault: kevelfake.Fault{Status: 500, Body: []byte("oops")}, expectErr: decision.ErrUnavailable},
		{description: "502", fault: kevelfake.Fault{Status: 502}, expectErr: decision.ErrUnavailable},
		{description: "503 with Retry-After", fault: kevelfake.Fault{Status: 503, RetryAfter: "5"}, expectErr: decision.ErrUnavailable},
		{description: "connection dropped mid-exchange, on a reused connection", warm: true, fault: kevelfake.Fault{Drop: true}, expectErr: decision.ErrUnavailable,
			check: func(t *testing.T, b *testBundle, _ error) {
				require.Equal(t, 2, b.fake.Stats().Decisions, "never re-sent after the request may have reached Kevel")
			}},
		{description: "429", fault: kevelfake.Fault{Status: 429, RetryAfter: "30"}, expectErr: decision.ErrRateLimited,
			check: func(t *testing.T, b *testBundle, err error) {
				require.Equal(t, 30*time.Second, errs.As(err).RetryAfter)
			}},
		{description: "400", fault: kevelfake.Fault{Status: 400, Body: []byte("no valid placements")}, expectErr: decision.ErrInvalidRequest},
		{description: "403: the key is wrong", fault: kevelfake.Fault{Status: 403}, expectErr: decision.ErrUnavailable},
		{description: "malformed JSON", fault: kevelfake.Fault{Body: []byte(`{"decisions": {"p": [`)}, expectErr: decision.ErrUnavailable},
		{description: "not an object", fault: kevelfake.Fault{Body: []byte(`[]`)}, expectErr: decision.ErrUnavailable},
		{description: "decisions of the wrong type", fault: kevelfake.Fault{Body: []byte(`{"decisions": {"p": 5}}`)}, expectErr: decision.ErrUnavailable},
		{description: "huge body", fault: kevelfake.Fault{Size: 3 << 20}, expectErr: decision.ErrUnavailable},
		{description: "decisions for an unknown divName", fault: kevelfake.Fault{Body: []byte(`{"decisions": {"p": null, "ghost": {"adId": 1}}}`)},
			check: func(t *testing.T, b *testBundle, err error) {
				require.NoError(t, err)
				require.Equal(t, 1.0, testutil.ToFloat64(counter(t, b.reg, "adshare_kevel_unknown_placement_decisions_total")))
			}},
	} {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			b := setup(t, banner, func(c *kevel.Config) {
				c.Timeout = 300 * time.Millisecond
				if tt.baseURL != nil {
					c.BaseURL = tt.baseURL(t)
				}
			})
			if tt.warm {
				_, err := b.client.Decide(context.Background(), oneSlot("p"))
				require.NoError(t, err)
			}
			if tt.fault.Status != 0 || tt.fault.Body != nil || tt.fault.Drop || tt.fault.Size > 0 {
				b.fake.QueueFaults(tt.fault)
			}
			b.fake.SetLatency(tt.latency)
			start := time.Now()
			_, err := b.client.Decide(context.Background(), oneSlot("p"))
			if tt.expectErr != nil {
				require.ErrorIs(t, err, tt.expectErr)
			}
			if tt.latency > 0 {
				require.Less(t, time.Since(start), tt.latency/2, "returns at its deadline, not when Kevel answers")
			}
			if tt.check != nil {
				tt.check(t, b, err)
			}
		})
	}
}

// counter finds a registered collector by name, for testutil.ToFloat64.
func counter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return gathered{mf.GetMetric()[0].GetCounter().GetValue(), name}
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// gathered is a constant collector holding one gathered value.
type gathered struct {
	v    float64
	name string
}

func (g gathered) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc() }
func (g gathered) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(g.desc(), prometheus.CounterValue, g.v)
}
func (g gathered) desc() *prometheus.Desc { return prometheus.NewDesc(g.name, "gathered", nil, nil) }

func TestRetryAfterRefusesLocallyUntilItPasses(t *testing.T) {
	t.Parallel()
	b := setup(t, banner)
	b.fake.QueueFaults(kevelfake.Fault{Status: 429, RetryAfter: "30"})
	ctx := context.Background()
	_, err := b.client.Decide(ctx, oneSlot("p"))
	require.ErrorIs(t, err, decision.ErrRateLimited)
	require.Equal(t, 1, b.fake.Stats().Decisions)

	b.clock.Advance(29 * time.Second)
	_, err = b.client.Decide(ctx, oneSlot("p"))
	require.ErrorIs(t, err, decision.ErrRateLimited)
	require.Equal(t, time.Second, errs.As(err).RetryAfter)
	require.Equal(t, 1, b.fake.Stats().Decisions, "refused without calling Kevel")

	b.clock.Advance(time.Second)
	_, err = b.client.Decide(ctx, oneSlot("p"))
	require.NoError(t, err)
	require.Equal(t, 2, b.fake.Stats().Decisions)
}

func TestTokenBucketRefusesBeyondTheBurst(t *testing.T) {
	t.Parallel()
	b := setup(t, banner, func(c *kevel.Config) { c.RatePerSecond, c.RateBurst = 1, 2 })
	ctx := context.Background()
	for range 2 {
		_, err := b.client.Decide(ctx, oneSlot("p"))
		require.NoError(t, err)
	}
	_, err := b.client.Decide(ctx, oneSlot("p"))
	require.ErrorIs(t, err, decision.ErrRateLimited)
	require.Equal(t, 2, b.fake.Stats().Decisions)
	b.clock.Advance(time.Second)
	_, err = b.client.Decide(ctx, oneSlot("p"))
	require.NoError(t, err)
}

func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	b := setup(t, banner, func(c *kevel.Config) {
		c.Breaker = kevel.BreakerConfig{ConsecutiveFailures: 3, CoolDown: 10 * time.Second}
	})
	ctx := context.Background()
	state := func() float64 { return testutil.ToFloat64(counterGauge(t, b.reg, "adshare_kevel_circuit_state")) }
	b.fake.QueueFaults(kevelfake.Fault{Status: 500}, kevelfake.Fault{Status: 500}, kevelfake.Fault{Status: 500})
	for range 3 {
		_, err := b.client.Decide(ctx, oneSlot("p"))
		require.ErrorIs(t, err, decision.ErrUnavailable)
	}
	require.Equal(t, 2.0, state(), "open after 3 failures in a row")

	_, err := b.client.Decide(ctx, oneSlot("p"))
	require.ErrorIs(t, err, decision.ErrUnavailable)
	require.Equal(t, 10*time.Second, errs.As(err).RetryAfter)
	require.Equal(t, 3, b.fake.Stats().Decisions, "open: fails fast without calling Kevel")

	// A failed probe opens it again.
	b.clock.Advance(10 * time.Second)
	b.fake.QueueFaults(kevelfake.Fault{Status: 503})
	_, err = b.client.Decide(ctx, oneSlot("p"))
	require.ErrorIs(t, err, decision.ErrUnavailable)
	require.Equal(t, 4, b.fake.Stats().Decisions)
	require.Equal(t, 2.0, state())
	_, err = b.client.Decide(ctx, oneSlot("p"))
	require.ErrorIs(t, err, decision.ErrUnavailable)
	require.Equal(t, 4, b.fake.Stats().Decisions)

	// A successful probe closes it.
	b.clock.Advance(10 * time.Second)
	_, err = b.client.Decide(ctx, oneSlot("p"))
	require.NoError(t, err)
	require.Equal(t, 0.0, state())
	_, err = b.client.Decide(ctx, oneSlot("p"))
	require.NoError(t, err)
	require.Equal(t, 6, b.fake.Stats().Decisions)
}

func TestCallerCancellationDoesNotTripTheBreaker(t *testing.T) {
	t.Parallel()
	b := setup(t, banner, func(c *kevel.Config) { c.Breaker = kevel.BreakerConfig{ConsecutiveFailures: 1} })
	b.fake.SetLatency(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := b.client.Decide(ctx, oneSlot("p"))
	require.ErrorIs(t, err, decision.ErrTimeout)
	b.fake.SetLatency(0)
	_, err = b.client.Decide(context.Background(), oneSlot("p"))
	require.NoError(t, err, "the caller's short deadline is not Kevel's failure")
}

func counterGauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return gathered{mf.GetMetric()[0].GetGauge().GetValue(), name}
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func TestTheAPIKeyNeverLeaks(t *testing.T) {
	t.Parallel()
	b := setup(t, banner)
	ctx := context.Background()
	var errTexts []string
	// Kevel echoing the key in an error body, in every failure path.
	b.fake.QueueFaults(
		kevelfake.Fault{Status: 400, Body: []byte("bad key " + apiKey)},
		kevelfake.Fault{Status: 500, Body: []byte(strings.Repeat("x", 190) + apiKey)},
		kevelfake.Fault{Status: 429, Body: []byte(apiKey)},
	)
	for range 3 {
		_, err := b.client.Decide(ctx, oneSlot("p"))
		require.Error(t, err)
		errTexts = append(errTexts, err.Error(), fmt.Sprintf("%+v", err))
		for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
			errTexts = append(errTexts, e.Error())
		}
	}
	udb := b.client.UserDB()
	b.fake.QueueFaults(kevelfake.Fault{Path: "/udb/23", Status: 500, Body: []byte(apiKey)})
	err := udb.Forget(ctx, "user-1")
	require.Error(t, err)
	errTexts = append(errTexts, err.Error())

	cfg := kevel.Config{NetworkID: 1, APIKey: apiKey}
	errTexts = append(errTexts, fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.APIKey))

	for _, s := range errTexts {
		require.NotContains(t, s, apiKey)
		require.NotContains(t, s, apiKey[:12], "not even cut in half")
	}
	require.Contains(t, b.logs.String(), "kevel: decision failed")
	require.NotContains(t, b.logs.String(), apiKey)
	require.NotContains(t, b.logs.String(), "user-1", "user keys are not logged either")
}
