package cache

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/decisiontest"
)

func TestDeciderPassesTheSuite(t *testing.T) {
	t.Parallel()
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			t.Parallel()
			decisiontest.RunDecider(t, func(t *testing.T) decisiontest.Harness {
				f := &decisiontest.Fake{}
				b := setup(t, tier.redis, Config{}, &upstream{Fake: f})
				return decisiontest.Harness{Decider: b.d, Stock: func(t *testing.T, stock []decisiontest.Stock) {
					for _, s := range stock {
						f.Ads = append(f.Ads, decision.Ad{
							Source: "fake", AdvertiserID: s.AdvertiserID, Categories: s.Categories,
							Creative: decision.Creative{Format: s.Format, Title: s.Title},
							Price:    decision.Price{Model: decision.CPM, Micros: s.PriceMicros},
						})
					}
				}}
			})
		})
	}
}

func TestEachPooledAdIsHandedOutOnce(t *testing.T) {
	t.Parallel()
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tier.redis, Config{Prefetch: 5}, nil)
			var got []string
			for range 5 {
				got = append(got, ids(b.decide(t, banner(1)), "slot")...)
			}
			require.Equal(t, []string{"fake-1", "fake-2", "fake-3", "fake-4", "fake-5"}, got, "the refill's ads, once each, in the upstream's order")
			calls := b.up.Calls()
			require.Len(t, calls, 1)
			require.Equal(t, 5, calls[0].Placements[0].Count, "the refill asks for Prefetch ads")

			require.Equal(t, []string{"fake-6"}, ids(b.decide(t, banner(1)), "slot"), "an empty pool is refilled")
			require.Len(t, b.up.Calls(), 2)
			require.Equal(t, 4.0, testutil.ToFloat64(b.d.stats.hit))
			require.Equal(t, 2.0, testutil.ToFloat64(b.d.stats.miss))
		})
	}
}

func TestAPlacementAskingForMoreThanThePoolHoldsWaitsForTheRest(t *testing.T) {
	t.Parallel()
	b := setup(t, false, Config{Prefetch: 3}, nil)
	require.Equal(t, []string{"fake-1"}, ids(b.decide(t, banner(1)), "slot"))
	resp := b.decide(t, banner(4))
	require.Equal(t, []string{"fake-2", "fake-3", "fake-4", "fake-5"}, ids(resp, "slot"), "the pool's two, then two of the refill")
	calls := b.up.Calls()
	require.Len(t, calls, 2)
	require.Equal(t, 4, calls[1].Placements[0].Count, "a count above Prefetch is kept")
}

// TestConcurrentIdenticalMissesMakeOneUpstreamCall sends 1,000 identical
// requests at once to a cold cache whose upstream answers in 20 ms (after
// every request has joined the refill, so that the count is exact).
func TestConcurrentIdenticalMissesMakeOneUpstreamCall(t *testing.T) {
	t.Parallel()
	const callers, supply = 1000, decision.MaxCount
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(supply, "banner")
			up.Delay = 20 * time.Millisecond
			var joined atomic.Int64
			up.setBefore(func(ctx context.Context) error {
				for joined.Load() < callers-1 {
					select {
					case <-ctx.Done():
						return decision.ErrTimeout.WithCause(ctx.Err())
					case <-time.After(time.Millisecond):
					}
				}
				return nil
			})
			b := setup(t, tier.redis, Config{Prefetch: supply, UpstreamTimeout: 20 * time.Second}, up)
			b.d.hooks.joined = func() { joined.Add(1) }

			start := make(chan struct{})
			answers := make([][]string, callers)
			errs := make([]error, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() {
					<-start
					resp, err := b.d.Decide(context.Background(), banner(1))
					answers[i], errs[i] = ids(resp, "slot"), err
				})
			}
			close(start)
			wg.Wait()

			require.Len(t, up.Calls(), 1, "one upstream call for the whole flight")
			seen := map[string]bool{}
			filled := 0
			for i := range callers {
				require.NoError(t, errs[i])
				require.LessOrEqual(t, len(answers[i]), 1)
				for _, id := range answers[i] {
					require.False(t, seen[id], "ad %s handed out twice", id)
					seen[id] = true
					filled++
				}
			}
			require.Equal(t, supply, filled, "every ad of the refill went to one waiter")
			require.Equal(t, float64(callers-supply), testutil.ToFloat64(b.d.stats.noFill), "waiters beyond the supply get no fill")

			require.NotEmpty(t, ids(b.decide(t, banner(1)), "slot"), "the next call after the flight refills")
			require.Len(t, up.Calls(), 2)
			require.Zero(t, testutil.CollectAndCount(b.d.stats.sharedErrs))
		})
	}
}

func TestTheFirstWaiterIsServedFirstAndTheOthersInOrder(t *testing.T) {
	t.Parallel()
	up := newUpstream(3, "banner")
	release := make(chan struct{})
	up.setBefore(func(ctx context.Context) error { <-release; return nil })
	b := setup(t, false, Config{Prefetch: 3}, up)
	joined := make(chan struct{}, 10)
	b.d.hooks.joined = func() { joined <- struct{}{} }

	got := make([]<-chan result, 4)
	for i := range got {
		got[i] = goDecide(context.Background(), b.d, banner(1))
		if i == 0 {
			require.Eventually(t, func() bool { return len(up.Calls()) == 1 }, 5*time.Second, time.Millisecond)
		} else {
			<-joined
		}
	}
	close(release)
	for i, want := range [][]string{{"fake-1"}, {"fake-2"}, {"fake-3"}, nil} {
		r := <-got[i]
		require.NoError(t, r.err)
		require.Equal(t, want, r.ids, "waiter %d (beyond the supply: no fill, not a second call)", i)
	}
	require.Len(t, up.Calls(), 1)
}

func TestACallerThatGivesUpDoesNotStarveTheOthers(t *testing.T) {
	t.Parallel()
	up := newUpstream(3, "banner")
	release := make(chan struct{})
	up.setBefore(func(ctx context.Context) error { <-release; return nil })
	b := setup(t, false, Config{Prefetch: 3}, up)
	joined := make(chan struct{}, 1)
	b.d.hooks.joined = func() { joined <- struct{}{} }

	ctx, cancel := context.WithCancel(context.Background())
	leader := goDecide(ctx, b.d, banner(1))
	require.Eventually(t, func() bool { return len(up.Calls()) == 1 }, 5*time.Second, time.Millisecond)
	follower := goDecide(context.Background(), b.d, banner(1))
	<-joined
	cancel()
	require.ErrorIs(t, (<-leader).err, decision.ErrTimeout)

	close(release)
	r := <-follower
	require.NoError(t, r.err)
	require.Equal(t, []string{"fake-1"}, r.ids, "the refill outlives its starter; its share goes on")
	require.Equal(t, []string{"fake-2"}, ids(b.decide(t, banner(1)), "slot"))
	require.Len(t, up.Calls(), 1)
}

func TestPooledAdsExpireAfterTheTTL(t *testing.T) {
	t.Parallel()
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tier.redis, Config{Prefetch: 3}, nil)
			require.Equal(t, []string{"fake-1"}, ids(b.decide(t, banner(1)), "slot"))
			b.clock.Add(DefaultTTL - time.Second)
			require.Equal(t, []string{"fake-2"}, ids(b.decide(t, banner(1)), "slot"), "within the TTL: pooled")
			b.clock.Add(2 * time.Second)
			require.Equal(t, []string{"fake-4"}, ids(b.decide(t, banner(1)), "slot"), "past the TTL: fake-3 is dropped, not handed out")
			require.Len(t, b.up.Calls(), 2)
			require.Equal(t, 1.0, testutil.ToFloat64(b.d.stats.evictedExpired))
		})
	}
}

func TestAdsAreNotPooledPastTheirTrackingExpiry(t *testing.T) {
	t.Parallel()
	inner := newUpstream(3, "banner")
	f := &decisiontest.Fake{Func: func(ctx context.Context, req decision.Request) (decision.Response, error) {
		resp, err := inner.Decide(ctx, req)
		for _, ads := range resp.Ads {
			for i := range ads {
				ads[i].Tracking.ExpiresAt = time.Now().Add(trackingMargin + 10*time.Second)
			}
		}
		return resp, err
	}}
	b := setup(t, false, Config{Prefetch: 3}, &upstream{Fake: f})
	b.decide(t, banner(1))
	b.clock.Add(11 * time.Second)
	b.decide(t, banner(1))
	require.Len(t, f.Calls(), 2, "the pool's ads expired with their tracking URLs' margin")
}

func TestNoFillIsRememberedForTheNegativeTTL(t *testing.T) {
	t.Parallel()
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tier.redis, Config{}, newUpstream(3, "native"))
			require.Empty(t, b.decide(t, banner(1)).Ads["slot"])
			require.Empty(t, b.decide(t, banner(1)).Ads["slot"])
			require.Len(t, b.up.Calls(), 1, "the second no-fill comes from the cache")
			require.Equal(t, 1.0, testutil.ToFloat64(b.d.stats.negative))

			if tier.redis {
				other := b.instance(t, Config{})
				require.Empty(t, other.decide(t, banner(1)).Ads["slot"])
				require.Len(t, b.up.Calls(), 1, "another instance learns it from Redis")
			}

			b.clock.Add(DefaultNegativeTTL + time.Millisecond)
			require.Empty(t, b.decide(t, banner(1)).Ads["slot"])
			require.Len(t, b.up.Calls(), 2, "past the negative TTL, upstream is asked again")
		})
	}
}

func TestStaleOnErrorServesANonBillableCopy(t *testing.T) {
	t.Parallel()
	setupFailing := func(t *testing.T, cfg Config) (*testBundle, decision.Ad) {
		t.Helper()
		cfg.Prefetch = 1 // no pool: every request goes upstream
		b := setup(t, false, cfg, nil)
		resp := b.decide(t, banner(1))
		require.Len(t, resp.Ads["slot"], 1)
		b.up.setErr(decision.ErrUnavailable.WithCause(errors.New("kevel: 503")))
		return b, resp.Ads["slot"][0]
	}

	t.Run("a recent ad is copied without tracking", func(t *testing.T) {
		t.Parallel()
		b, shown := setupFailing(t, Config{})
		b.clock.Add(DefaultStaleFor - time.Second)
		resp := b.decide(t, banner(1))
		require.Len(t, resp.Ads["slot"], 1)
		stale := resp.Ads["slot"][0]
		require.NotEqual(t, shown.ID, stale.ID, "a fresh ID")
		require.True(t, strings.HasPrefix(stale.ID, "stale-"))
		require.Equal(t, decision.Tracking{}, stale.Tracking, "nothing to fire")
		require.Zero(t, stale.Price.Micros, "no one pays for it")
		require.Equal(t, shown.Creative, stale.Creative)
		require.Equal(t, shown.AdvertiserID, stale.AdvertiserID)
		require.NotEmpty(t, shown.Tracking.ImpressionURL, "the original keeps its own")
		require.Equal(t, 1.0, testutil.ToFloat64(b.d.stats.stale))

		again := b.decide(t, banner(1)).Ads["slot"][0]
		require.NotEqual(t, stale.ID, again.ID, "every copy has its own ID")
	})

	t.Run("past StaleFor the upstream error is returned unchanged", func(t *testing.T) {
		t.Parallel()
		b, _ := setupFailing(t, Config{})
		b.clock.Add(DefaultStaleFor + time.Second)
		_, err := b.d.Decide(context.Background(), banner(1))
		require.ErrorIs(t, err, decision.ErrUnavailable)
		require.Equal(t, "kevel: 503", errors.Unwrap(err).Error())
		require.Zero(t, testutil.ToFloat64(b.d.stats.stale))
	})

	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		b, _ := setupFailing(t, Config{StaleFor: -1})
		_, err := b.d.Decide(context.Background(), banner(1))
		require.ErrorIs(t, err, decision.ErrUnavailable)
	})

	t.Run("other keys have no stale ad", func(t *testing.T) {
		t.Parallel()
		b, _ := setupFailing(t, Config{})
		req := banner(1)
		req.UserKey = "someone-else"
		_, err := b.d.Decide(context.Background(), req)
		require.ErrorIs(t, err, decision.ErrUnavailable)
	})

	t.Run("invalid requests upstream are not covered", func(t *testing.T) {
		t.Parallel()
		b, _ := setupFailing(t, Config{})
		b.up.setErr(decision.ErrInvalidRequest.WithMessage("kevel refuses this"))
		_, err := b.d.Decide(context.Background(), banner(1))
		require.ErrorIs(t, err, decision.ErrInvalidRequest)
	})

	t.Run("an ad that embeds its tracking is never copied", func(t *testing.T) {
		t.Parallel()
		inner := newUpstream(1, "banner")
		f := &decisiontest.Fake{Func: func(ctx context.Context, req decision.Request) (decision.Response, error) {
			resp, err := inner.Decide(ctx, req)
			for _, ads := range resp.Ads {
				for i := range ads {
					ads[i].Creative.HTML = `<a href="` + ads[i].Tracking.ClickURL + `">go</a>`
				}
			}
			return resp, err
		}}
		b := setup(t, false, Config{Prefetch: 1}, &upstream{Fake: f})
		b.decide(t, banner(1))
		inner.setErr(decision.ErrRateLimited)
		_, err := b.d.Decide(context.Background(), banner(1))
		require.ErrorIs(t, err, decision.ErrRateLimited)
	})
}

func TestInvalidRequestsNeverReachUpstream(t *testing.T) {
	t.Parallel()
	b := setup(t, false, Config{}, nil)
	p := banner(1).Placements[0]
	for _, req := range []decision.Request{
		{},
		{Placements: []decision.Placement{{ID: "a"}}},
		{Placements: []decision.Placement{p, p}},
		{Placements: []decision.Placement{{ID: "a", Formats: []string{"banner"}, Count: decision.MaxCount + 1}}},
		{Placements: []decision.Placement{p}, UserKey: "u1", Consent: decision.Consent{DoNotSell: true}},
		{Placements: []decision.Placement{p}, Keywords: []string{"\xff"}},
	} {
		_, err := b.d.Decide(context.Background(), req)
		require.ErrorIs(t, err, decision.ErrInvalidRequest, "%+v", req)
	}
	require.Empty(t, b.up.Calls())
	require.Zero(t, testutil.ToFloat64(b.d.stats.hit)+testutil.ToFloat64(b.d.stats.miss)+testutil.ToFloat64(b.d.stats.negative), "nothing was looked up")
}

func TestMultiPlacementRequestsAskOnlyForTheShortPools(t *testing.T) {
	t.Parallel()
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			t.Parallel()
			inner := &decisiontest.Fake{}
			for i, format := range []string{"banner", "banner", "banner", "banner", "native"} {
				inner.Ads = append(inner.Ads, decision.Ad{Source: "fake", AdID: string(rune('a' + i)), Creative: decision.Creative{Format: format}, Price: decision.Price{Model: decision.CPM, Micros: 1}})
			}
			b := setup(t, tier.redis, Config{Prefetch: 4}, &upstream{Fake: &decisiontest.Fake{Func: inner.Decide}})
			req := decision.Request{Placements: []decision.Placement{
				{ID: "top", AdTypes: []int{5}, Formats: []string{"banner"}},
				{ID: "side", AdTypes: []int{7}, Formats: []string{"native"}},
			}}
			resp := b.decide(t, req)
			require.Equal(t, []string{"fake-1"}, ids(resp, "top"))
			require.Equal(t, []string{"fake-5"}, ids(resp, "side"))

			resp = b.decide(t, req)
			require.Equal(t, []string{"fake-2"}, ids(resp, "top"), "from the pool")
			require.Equal(t, []string{"fake-6"}, ids(resp, "side"), "refilled")
			calls := b.up.Fake.Calls()
			require.Len(t, calls, 2, "one upstream call per Decide")
			require.Len(t, calls[0].Placements, 2)
			require.Len(t, calls[1].Placements, 1, "only the short placement is asked for")
			require.Equal(t, "side", calls[1].Placements[0].ID)
			require.Equal(t, 4, calls[1].Placements[0].Count)
		})
	}
}

func TestKeyIgnoresTheViewerContextButSeparatesUsersAndConsent(t *testing.T) {
	t.Parallel()
	b := setup(t, false, Config{Prefetch: 10}, nil)
	req := banner(1)
	req.IP, req.UserAgent, req.URL, req.Referrer, req.Time = "198.51.100.1", "A", "https://a.example/", "https://r.example/", time.Now()
	b.decide(t, req)
	req.IP, req.UserAgent, req.URL, req.Referrer, req.Time = "203.0.113.9", "B", "https://b.example/", "", time.Now().Add(time.Hour)
	b.decide(t, req)
	require.Len(t, b.up.Calls(), 1, "IP, user agent, URL, referrer and time share a pool")

	req.UserKey = "u1"
	b.decide(t, req)
	require.Len(t, b.up.Calls(), 2, "another user, another pool")
	req.UserKey = "u2"
	b.decide(t, req)
	require.Len(t, b.up.Calls(), 3)

	req.UserKey = ""
	req.Consent = decision.Consent{GDPRApplies: true}
	b.decide(t, req)
	require.Len(t, b.up.Calls(), 4, "another consent state, another pool")
	req.Consent = decision.Consent{DoNotSell: true}
	b.decide(t, req)
	require.Len(t, b.up.Calls(), 5)
}

func TestMemoryBoundsHoldUnderManyKeys(t *testing.T) {
	t.Parallel()
	const maxKeys, maxAds = 50, 3
	b := setup(t, false, Config{Prefetch: 10, MaxKeys: maxKeys, MaxAdsPerKey: maxAds}, nil)
	for i := range 500 {
		req := banner(1)
		req.UserKey = "user-" + string(rune('a'+i%26)) + "-" + time.Duration(i).String()
		b.decide(t, req)
		keys, pool := b.d.mem.size()
		require.LessOrEqual(t, keys, maxKeys)
		require.LessOrEqual(t, pool, maxAds)
	}
	keys, _ := b.d.mem.size()
	require.Equal(t, maxKeys, keys)
	require.Equal(t, 500.0*(10-1-maxAds), testutil.ToFloat64(b.d.stats.evictedPoolFull))
	require.Equal(t, (500.0-maxKeys)*maxAds, testutil.ToFloat64(b.d.stats.evictedKey))
}

func TestNewRefusesMisconfiguration(t *testing.T) {
	t.Parallel()
	_, err := New(nil, nil)
	require.ErrorContains(t, err, "upstream")
	for _, cfg := range []Config{
		{TTL: MaxTTL + time.Second},
		{TTL: -time.Second},
		{NegativeTTL: 2 * time.Hour},
		{Prefetch: decision.MaxCount + 1},
		{Prefetch: -1},
		{MaxKeys: -1},
		{LockWait: -1},
		{SharedTimeout: -1},
	} {
		_, err := New(&decisiontest.Fake{}, &cfg)
		require.Error(t, err, "%+v", cfg)
		require.True(t, strings.HasPrefix(err.Error(), "decision/cache: Config."), err.Error())
	}
	d, err := New(&decisiontest.Fake{}, nil)
	require.NoError(t, err)
	require.Equal(t, DefaultTTL, d.cfg.TTL)
	require.Equal(t, DefaultPrefetch, d.cfg.Prefetch)
	require.Nil(t, d.shared)
	require.Same(t, d.mem, d.refills)
}

func TestMetricLabelsCarryOnlyOutcomes(t *testing.T) {
	t.Parallel()
	b := setup(t, false, Config{Prefetch: 2}, nil)
	req := banner(1)
	req.UserKey = "secret-user-key"
	for range 3 {
		b.decide(t, req)
	}
	families, err := b.reg.Gather()
	require.NoError(t, err)
	require.NotEmpty(t, families)
	for _, mf := range families {
		require.True(t, strings.HasPrefix(mf.GetName(), "adshare_decision_cache_"), mf.GetName())
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				require.Contains(t, []string{"outcome", "reason", "op"}, l.GetName())
				require.NotContains(t, l.GetValue(), "secret")
			}
		}
	}
	require.Equal(t, 2.0, testutil.ToFloat64(b.d.stats.upCalls.WithLabelValues("ok")))
	require.Equal(t, uint64(2), histogramCount(t, b, "adshare_decision_cache_upstream_duration_seconds"))
}

func histogramCount(t *testing.T, b *testBundle, name string) uint64 {
	t.Helper()
	families, err := b.reg.Gather()
	require.NoError(t, err)
	for _, mf := range families {
		if mf.GetName() == name {
			var n uint64
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
			return n
		}
	}
	return 0
}

func TestAPanickingUpstreamFailsTheFlightNotTheProcess(t *testing.T) {
	t.Parallel()
	up := &decisiontest.Fake{Func: func(context.Context, decision.Request) (decision.Response, error) { panic("boom") }}
	b := setup(t, false, Config{}, &upstream{Fake: up})
	for range 2 {
		_, err := b.d.Decide(context.Background(), banner(1))
		require.ErrorIs(t, err, decision.ErrUnavailable)
		b.settle(t)
	}
	require.Len(t, up.Calls(), 2, "the flight ended: the next call tries again")
}

// lifecycleUpstream is an upstream with a lifecycle that records it.
type lifecycleUpstream struct {
	*upstream
	started, stopped atomic.Int64
}

func (u *lifecycleUpstream) Start(context.Context) error { u.started.Add(1); return nil }
func (u *lifecycleUpstream) Stop(context.Context) error  { u.stopped.Add(1); return nil }

func TestStopWaitsForTheRefillsInFlightThenStopsUpstream(t *testing.T) {
	t.Parallel()
	up := &lifecycleUpstream{upstream: newUpstream(3, "banner")}
	release := make(chan struct{})
	up.setBefore(func(ctx context.Context) error { <-release; return nil })
	d, err := New(up, nil)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, d.Start(ctx))
	require.Equal(t, int64(1), up.started.Load(), "Start reaches the upstream")

	// A Decide whose caller gives up leaves its refill flying.
	callerCtx, cancel := context.WithCancel(ctx)
	leader := goDecide(callerCtx, d, banner(1))
	require.Eventually(t, func() bool { return len(up.Calls()) == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, (<-leader).err, decision.ErrTimeout)

	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	require.ErrorContains(t, d.Stop(short), "refills still in flight", "Stop waits for the refill")
	require.Zero(t, up.stopped.Load(), "and does not stop upstream under it")

	close(release)
	require.NoError(t, d.Stop(ctx))
	require.Equal(t, int64(1), up.stopped.Load(), "then Stop reaches the upstream")
	_, maxPool := d.mem.size()
	require.Equal(t, 3, maxPool, "the refill landed in the pool before Stop returned")
}
