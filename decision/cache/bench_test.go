package cache

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/decisiontest"
)

// benchRequest is a realistic request: one placement, a user key,
// keywords, categories and properties (all hashed into the key), and the
// viewer's context (not hashed).
func benchRequest(user int) decision.Request {
	return decision.Request{
		Placements: []decision.Placement{{ID: "slot", AdTypes: []int{5}, Formats: []string{"banner"}, SiteID: 42, ZoneIDs: []int64{7}, Count: 1}},
		UserKey:    "user-" + strconv.Itoa(user),
		Keywords:   []string{"sports", "running", "shoes"},
		Categories: []string{"fitness"},
		Properties: map[string]string{"locale": "en-GB", "screen": "1080x1920"},
		IP:         "198.51.100.7", UserAgent: "adshare-bench/1.0", URL: "https://app.example/feed",
	}
}

func benchAd() decision.Ad {
	return decision.Ad{
		ID: "d-1", Source: "kevel", AdID: "1", CreativeID: "2", CampaignID: "3", FlightID: "4", AdvertiserID: "5",
		Creative: decision.Creative{Format: "banner", Title: "Run faster", ImageURL: "https://cdn.example/a.png", Width: 300, Height: 250},
		Price:    decision.Price{Model: decision.CPM, Micros: 2_000_000},
		Tracking: decision.Tracking{ImpressionURL: "https://e.example/i?e=x&s=y", ClickURL: "https://e.example/r?e=x&s=y"},
	}
}

// BenchmarkHit measures a cache hit: one pop from a warm memory pool, over
// 1,000 and 100,000 keys visited round-robin. Allocations per hit must not
// grow with the number of keys. Compare with BenchmarkFakeBaseline.
func BenchmarkHit(b *testing.B) {
	for _, keys := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) { benchHit(b, keys) })
	}
}

func benchHit(b *testing.B, nKeys int) {
	const perKey = 2
	d, err := New(&decisiontest.Fake{}, &Config{MaxKeys: nKeys, MaxAdsPerKey: perKey, TTL: MaxTTL})
	require.NoError(b, err)
	// One request template, hot in cache as a freshly decoded request is;
	// only the user key (and so the pool) changes between iterations. The
	// pools' own memory is what grows with the number of keys.
	tmpl := benchRequest(0)
	users := make([]string, nKeys)
	keys := make([]Key, nKeys)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(i)
		req := tmpl
		req.UserKey = users[i]
		var s [1]slot
		requestKeys(&req, s[:])
		keys[i] = s[0].key
	}
	batch := []decision.Ad{benchAd(), benchAd()}
	refill := func() {
		exp := time.Now().Add(time.Hour).UnixNano()
		for _, k := range keys {
			d.mem.push(k, batch, exp)
		}
	}
	refill()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i > 0 && i%(nKeys*perKey) == 0 {
			b.StopTimer()
			refill()
			b.StartTimer()
		}
		req := tmpl
		req.UserKey = users[i%nKeys]
		resp, err := d.Decide(ctx, req)
		if err != nil || len(resp.Ads["slot"]) != 1 {
			b.Fatalf("not a hit: %v %v", resp, err)
		}
	}
	b.StopTimer()
	if n := len(d.upstream.(*decisiontest.Fake).Calls()); n > 0 {
		b.Fatalf("%d upstream calls: the benchmark measured misses", n)
	}
}

// BenchmarkFakeBaseline calls decisiontest.Fake directly with the same
// request: the floor of any Decider (validation, one ad, the response).
func BenchmarkFakeBaseline(b *testing.B) {
	f := &decisiontest.Fake{Ads: []decision.Ad{benchAd()}}
	req := benchRequest(1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := f.Decide(ctx, req)
		if err != nil || len(resp.Ads["slot"]) != 1 {
			b.Fatal(resp, err)
		}
	}
}

// BenchmarkHitRedis measures a hit from the shared tier in Redis
// (store/redis's DecisionPools): one LPOP round trip to the test Redis and
// a JSON decode.
func BenchmarkHitRedis(b *testing.B) {
	shared := sharedTier(b)
	d, err := New(&decisiontest.Fake{}, &Config{Shared: shared, TTL: MaxTTL, MaxAdsPerKey: decision.MaxCount})
	require.NoError(b, err)
	const nKeys, perKey = 100, decision.MaxCount
	reqs := make([]decision.Request, nKeys)
	keys := make([]Key, nKeys)
	for i := range reqs {
		reqs[i] = benchRequest(i)
		var s [1]slot
		requestKeys(&reqs[i], s[:])
		keys[i] = s[0].key
	}
	batch := make([]decision.Ad, perKey)
	for i := range batch {
		batch[i] = benchAd()
	}
	ctx := context.Background()
	refill := func() {
		now := time.Now()
		for i, k := range keys {
			token := "bench-" + strconv.Itoa(i) + "-" + strconv.FormatInt(now.UnixNano(), 10)
			held, err := shared.Lock(ctx, token, time.Minute, []Key{k})
			require.NoError(b, err)
			require.Equal(b, []bool{true}, held)
			_, err = shared.EndRefill(ctx, Refill{Key: k, Token: token, Ads: batch, Expires: now.Add(time.Hour), Max: perKey, Now: now})
			require.NoError(b, err)
		}
	}
	refill()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i > 0 && i%(nKeys*perKey) == 0 {
			b.StopTimer()
			refill()
			b.StartTimer()
		}
		resp, err := d.Decide(ctx, reqs[i%nKeys])
		if err != nil || len(resp.Ads["slot"]) != 1 {
			b.Fatalf("not a hit: %v %v", resp, err)
		}
	}
}

// TestAHitAllocatesNoMoreThanTheFloor holds a pool hit to at most the
// allocations of the floor of any Decider (decisiontest.Fake answering the
// same request): a hit must keep its slots on the stack. Allocation counts
// do not depend on the machine's speed, so this is a test, not a
// benchmark.
func TestAHitAllocatesNoMoreThanTheFloor(t *testing.T) {
	d, err := New(&decisiontest.Fake{}, &Config{TTL: MaxTTL, MaxAdsPerKey: 1000})
	require.NoError(t, err)
	req := benchRequest(1)
	var s [1]slot
	requestKeys(&req, s[:])
	ads := make([]decision.Ad, 600)
	for i := range ads {
		ads[i] = benchAd()
	}
	d.mem.push(s[0].key, ads, time.Now().Add(time.Hour).UnixNano())
	ctx := context.Background()
	hit := testing.AllocsPerRun(500, func() {
		if resp, err := d.Decide(ctx, req); err != nil || len(resp.Ads["slot"]) != 1 {
			t.Fatalf("not a hit: %v %v", resp, err)
		}
	})
	f := &decisiontest.Fake{Ads: []decision.Ad{benchAd()}}
	floor := testing.AllocsPerRun(500, func() { _, _ = f.Decide(ctx, req) })
	require.LessOrEqual(t, hit, floor, "a hit allocates %v times, the floor %v", hit, floor)
}
