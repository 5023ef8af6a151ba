package local_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/decisiontest"
	"github.com/adshare/adshare/decision/local"
	"github.com/adshare/adshare/store/memory"
)

// inventory is a settable decision.Inventory.
type inventory struct {
	mu    sync.Mutex
	cands []decision.Candidate
	err   error
}

func (i *inventory) Candidates(context.Context, time.Time) ([]decision.Candidate, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]decision.Candidate(nil), i.cands...), i.err
}

func (i *inventory) set(c ...decision.Candidate) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.cands = c
}

var noon = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func cand(id, advertiser string, model decision.PricingModel, bid int64) decision.Candidate {
	return decision.Candidate{
		ID: id, AdvertiserID: advertiser, Format: "banner",
		Creative: decision.Creative{Format: "banner", Title: "ad " + id},
		Bid:      decision.Price{Model: model, Micros: bid}, TotalBudgetMicros: 1_000_000_000,
		Start: noon.Add(-time.Hour),
	}
}

type bundle struct {
	inv    *inventory
	stats  *memory.Store // the engine's decision.StatsSource, fed with events as analytics does
	freq   *memory.FrequencyCounter
	engine *local.Engine
}

func setup(t testing.TB) *bundle {
	t.Helper()
	b := &bundle{inv: &inventory{}, stats: memory.New(), freq: memory.NewFrequencyCounter(time.Hour)}
	b.freq.Now = func() time.Time { return noon }
	var err error
	b.engine, err = local.New(local.Config{Inventory: b.inv, Stats: b.stats, Frequency: b.freq, Now: func() time.Time { return noon }})
	require.NoError(t, err)
	return b
}

// deliver stores what the analytics pipeline stores when ad id of the local
// engine is shown impressions times and clicked clicks times at noon, every
// event valid and billable; the first one spends spendMicros.
func (b *bundle) deliver(t testing.TB, id string, impressions, clicks int, spendMicros int64) {
	t.Helper()
	events := make([]analytics.Event, 0, impressions+clicks)
	for i := range impressions + clicks {
		e := analytics.Event{TrackingID: uuid.New(), Type: analytics.Impression, OccurredAt: noon, ReceivedAt: noon, Valid: true,
			Ad: tracking.Ad{Source: "local", AdID: id, Billable: true, IssuedAt: noon}}
		if i >= impressions {
			e.Type = analytics.Click
		}
		if i == 0 {
			e.SpendMicros = spendMicros
		}
		events = append(events, e)
	}
	_, err := b.stats.WriteEvents(context.Background(), events)
	require.NoError(t, err)
}

func (b *bundle) decide(t *testing.T, req decision.Request) []decision.Ad {
	t.Helper()
	require.NoError(t, b.engine.Refresh(context.Background()))
	resp, err := b.engine.Decide(context.Background(), req)
	require.NoError(t, err)
	return resp.Ads["p"]
}

func placement(count int) []decision.Placement {
	return []decision.Placement{{ID: "p", Formats: []string{"banner"}, Count: count}}
}

func adIDs(ads []decision.Ad) []string {
	out := make([]string, len(ads))
	for i, a := range ads {
		out[i] = a.AdID
	}
	return out
}

func TestLocalEnginePassesTheSuite(t *testing.T) {
	t.Parallel()
	decisiontest.RunDecider(t, func(t *testing.T) decisiontest.Harness {
		b := setup(t)
		return decisiontest.Harness{Decider: b.engine, Stock: func(t *testing.T, stock []decisiontest.Stock) {
			var cs []decision.Candidate
			for i, s := range stock {
				c := cand(strconv.Itoa(i), s.AdvertiserID, decision.CPM, s.PriceMicros)
				c.Format, c.Categories, c.Creative.Title = s.Format, s.Categories, s.Title
				cs = append(cs, c)
			}
			b.inv.set(cs...)
		}}
	})
}

func TestRankingByExpectedRevenue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.inv.set(
		cand("cpm-2", "a1", decision.CPM, 2_000_000),    // eCPM 2.0
		cand("cpc-new", "a2", decision.CPC, 150_000),    // prior 1%: eCPM 1.5
		cand("cpc-proven", "a3", decision.CPC, 150_000), // 5% CTR after many impressions: eCPM ≈ 7
		cand("cpm-1", "a4", decision.CPM, 1_000_000),    // eCPM 1.0
	)
	b.deliver(t, "cpc-proven", 10_000, 500, 0)
	require.Equal(t, []string{"cpc-proven", "cpm-2", "cpc-new", "cpm-1"}, adIDs(b.decide(t, decision.Request{Placements: placement(4)})))

	// A keyword match lifts an ad by 10% per keyword.
	b2 := setup(t)
	low := cand("low", "a1", decision.CPM, 1_900_000)
	low.Keywords = []string{"cycling", "coffee"}
	b2.inv.set(cand("high", "a2", decision.CPM, 2_000_000), low)
	got := b2.decide(t, decision.Request{Placements: placement(1), Keywords: []string{"cycling"}})
	require.Equal(t, []string{"low"}, adIDs(got))
}

func TestOneAdPerAdvertiserAndExclusions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	gambling := cand("g", "a9", decision.CPM, 9_000_000)
	gambling.Categories = []string{"gambling"}
	b.inv.set(cand("x1", "a1", decision.CPM, 5_000_000), cand("x2", "a1", decision.CPM, 4_000_000),
		cand("y", "a2", decision.CPM, 3_000_000), gambling, cand("z", "a3", decision.CPM, 1_000_000))
	got := b.decide(t, decision.Request{Placements: placement(3), Exclude: decision.Exclusions{
		Categories: []string{"gambling"}, Creatives: []string{"y"}}})
	require.Equal(t, []string{"x1", "z"}, adIDs(got), "x2 shares x1's advertiser; y and g are excluded")
	got = b.decide(t, decision.Request{Placements: placement(3), Exclude: decision.Exclusions{Advertisers: []string{"a1"}}})
	require.NotContains(t, adIDs(got), "x1")
	require.NotContains(t, adIDs(got), "x2")

	// Past a few entries the exclusions are looked up, not scanned: the
	// same answers either way.
	var many decision.Exclusions
	for i := range 20 {
		many.Advertisers = append(many.Advertisers, fmt.Sprintf("other-%d", i))
		many.Categories = append(many.Categories, fmt.Sprintf("cat-%d", i))
		many.Creatives = append(many.Creatives, fmt.Sprintf("creative-%d", i))
	}
	many.Advertisers = append(many.Advertisers, "a3")
	many.Categories = append(many.Categories, "gambling")
	many.Creatives = append(many.Creatives, "y")
	got = b.decide(t, decision.Request{Placements: placement(3), Exclude: many})
	require.Equal(t, []string{"x1"}, adIDs(got), "z's advertiser, g's category and y itself are excluded from long lists")
}

func TestBudgetsPacingAndSchedule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spent := cand("spent", "a1", decision.CPM, 5_000_000)
	spent.TotalBudgetMicros = 10_000_000
	b.deliver(t, "spent", 1, 0, 10_000_000)
	ahead := cand("ahead", "a2", decision.CPM, 4_000_000)
	ahead.DailyBudgetMicros = 1_000_000
	b.deliver(t, "ahead", 1, 0, 700_000) // at noon an even pace allows 60% (50% + 10% slack)
	onPace := cand("onpace", "a3", decision.CPM, 3_000_000)
	onPace.DailyBudgetMicros = 1_000_000
	b.deliver(t, "onpace", 1, 0, 500_000)
	future := cand("future", "a4", decision.CPM, 9_000_000)
	future.Start = noon.Add(time.Hour)
	ended := cand("ended", "a5", decision.CPM, 9_000_000)
	ended.End = noon
	b.inv.set(spent, ahead, onPace, future, ended, cand("fine", "a6", decision.CPM, 1_000_000))
	require.Equal(t, []string{"onpace", "fine"}, adIDs(b.decide(t, decision.Request{Placements: placement(5)})))
}

func TestFrequencyCapBackfills(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.inv.set(cand("top", "a1", decision.CPM, 5_000_000), cand("next", "a2", decision.CPM, 4_000_000))
	req := decision.Request{Placements: placement(1), UserKey: "viewer-1"}
	for range local.DefaultFrequencyCap {
		require.Equal(t, []string{"top"}, adIDs(b.decide(t, req)))
	}
	require.Equal(t, []string{"next"}, adIDs(b.decide(t, req)), "capped: the next best fills")
	other := decision.Request{Placements: placement(1), UserKey: "viewer-2"}
	require.Equal(t, []string{"top"}, adIDs(b.decide(t, other)), "caps are per viewer")
	// Without consent there is no key and so no cap (and no tracking).
	anon := decision.Request{Placements: placement(1)}
	require.Equal(t, []string{"top"}, adIDs(b.decide(t, anon)))
}

func TestInventoryErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.inv.err = fmt.Errorf("db down")
	_, err := b.engine.Decide(context.Background(), decision.Request{Placements: placement(1)})
	require.ErrorIs(t, err, decision.ErrUnavailable)

	// Once a snapshot exists, a failed refresh keeps it.
	b.inv.err = nil
	b.inv.set(cand("a", "a1", decision.CPM, 1_000_000))
	require.NoError(t, b.engine.Refresh(context.Background()))
	b.inv.err = fmt.Errorf("db down again")
	require.Error(t, b.engine.Refresh(context.Background()))
	resp, err := b.engine.Decide(context.Background(), decision.Request{Placements: placement(1)})
	require.NoError(t, err)
	require.Len(t, resp.Ads["p"], 1)
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.engine.Stop(context.Background()), "stop before start")
	b2 := setup(t)
	require.NoError(t, b2.engine.Start(context.Background()))
	require.NoError(t, b2.engine.Stop(context.Background()))
	require.NoError(t, b2.engine.Stop(context.Background()))
}

func benchmarkDecide(b *testing.B, n int) {
	bd := setup(b)
	cands := make([]decision.Candidate, n)
	for i := range cands {
		c := cand(strconv.Itoa(i), "adv"+strconv.Itoa(i%(n/10+1)), decision.CPM, int64(100_000+i%5000*1000))
		if i%2 == 0 {
			c.Bid.Model, c.Bid.Micros = decision.CPC, int64(10_000+i%3000*100)
		}
		c.Keywords = []string{"k" + strconv.Itoa(i%50), "k" + strconv.Itoa(i%7)}
		cands[i] = c
	}
	bd.inv.set(cands...)
	require.NoError(b, bd.engine.Refresh(context.Background()))
	req := decision.Request{Placements: placement(3), Keywords: []string{"k3", "k5"},
		Exclude: decision.Exclusions{Advertisers: []string{"adv1", "adv2"}, Categories: []string{"gambling"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bd.engine.Decide(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecide1k(b *testing.B)   { benchmarkDecide(b, 1_000) }
func BenchmarkDecide10k(b *testing.B)  { benchmarkDecide(b, 10_000) }
func BenchmarkDecide100k(b *testing.B) { benchmarkDecide(b, 100_000) }

func TestEngineIsImmediateOnceItHasASnapshotAndItsCounterIs(t *testing.T) {
	b := setup(t)
	require.False(t, b.engine.Immediate(), "before its first snapshot a fill may read the inventory")
	require.NoError(t, b.engine.Refresh(context.Background()))
	require.True(t, b.engine.Immediate(), "a snapshot and an in-process counter")
	require.True(t, decision.IsImmediate(b.engine))

	remote, err := local.New(local.Config{Inventory: b.inv, Stats: b.stats, Frequency: remoteCounter{b.freq}})
	require.NoError(t, err)
	require.NoError(t, remote.Refresh(context.Background()))
	require.False(t, remote.Immediate(), "a counter that may wait (Redis) makes the engine wait too")

	none, err := local.New(local.Config{Inventory: b.inv, Stats: b.stats})
	require.NoError(t, err)
	require.NoError(t, none.Refresh(context.Background()))
	require.True(t, none.Immediate(), "no frequency caps, nothing to wait on")
}

// remoteCounter is a frequency counter that does not say it is immediate,
// as the Redis one does not.
type remoteCounter struct{ decision.FrequencyCounter }
