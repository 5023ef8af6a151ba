package decisiontest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
)

// Stock is an ad the suite asks an implementation to make available.
type Stock struct {
	// AdvertiserID identifies the advertiser (numeric, so every engine can
	// represent it).
	AdvertiserID string
	Categories   []string
	// AdType and Format are what a placement must ask for to get the ad.
	AdType int
	Format string
	// PriceMicros is the CPM price.
	PriceMicros int64
	Title       string
}

// Harness adapts one Decider implementation to the suite.
type Harness struct {
	// Decider is the implementation under test.
	Decider decision.Decider
	// Stock makes the given ads available before the next Decide. It is
	// called at most once per Harness, before the first Decide.
	Stock func(t *testing.T, stock []Stock)
}

// AdType and Format are what the suite's placements ask for.
const (
	AdType = 5
	Format = "banner"
)

// RunDecider runs the behaviour every Decider keeps, against fresh
// harnesses from newHarness (one per subtest).
func RunDecider(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	stock := []Stock{
		{AdvertiserID: "101", Categories: []string{"sports"}, AdType: AdType, Format: Format, PriceMicros: 2_000_000, Title: "Run faster"},
		{AdvertiserID: "102", Categories: []string{"food"}, AdType: AdType, Format: Format, PriceMicros: 1_500_000, Title: "Eat better"},
		{AdvertiserID: "103", Categories: []string{"gambling"}, AdType: AdType, Format: Format, PriceMicros: 3_000_000, Title: "Bet more"},
	}
	placement := func(id string, count int) decision.Placement {
		return decision.Placement{ID: id, AdTypes: []int{AdType}, Formats: []string{Format}, Count: count}
	}
	ctx := context.Background()

	t.Run("invalid requests are refused as such", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Stock(t, stock)
		for _, req := range []decision.Request{
			{},
			{Placements: []decision.Placement{{ID: "a"}}},
			{Placements: []decision.Placement{placement("a", 1), placement("a", 1)}},
			{Placements: []decision.Placement{placement("a", decision.MaxCount+1)}},
			{Placements: []decision.Placement{placement("a", 1)}, UserKey: "u1", Consent: decision.Consent{DoNotSell: true}},
			{Placements: []decision.Placement{placement("a", 1)}, Keywords: []string{"\xff"}},
		} {
			_, err := h.Decider.Decide(ctx, req)
			require.ErrorIs(t, err, decision.ErrInvalidRequest, "%+v", req)
		}
	})

	t.Run("every placement is answered; ads respect the count", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Stock(t, stock)
		resp, err := h.Decider.Decide(ctx, decision.Request{Placements: []decision.Placement{placement("top", 2), placement("bottom", 1)}})
		require.NoError(t, err)
		require.Contains(t, resp.Ads, "top")
		require.Contains(t, resp.Ads, "bottom")
		require.NotEmpty(t, resp.Ads["top"])
		require.LessOrEqual(t, len(resp.Ads["top"]), 2)
		require.Len(t, resp.Ads["bottom"], 1)
		ids := map[string]bool{}
		for _, ads := range resp.Ads {
			for _, ad := range ads {
				require.NotEmpty(t, ad.ID)
				require.False(t, ids[ad.ID], "decision ids are unique")
				ids[ad.ID] = true
				require.NotEmpty(t, ad.Source)
			}
		}
	})

	t.Run("no ad is an empty list, not an error", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Stock(t, stock)
		resp, err := h.Decider.Decide(ctx, decision.Request{Placements: []decision.Placement{{ID: "odd", AdTypes: []int{999}, Formats: []string{"hologram"}}}})
		require.NoError(t, err)
		require.Contains(t, resp.Ads, "odd")
		require.Empty(t, resp.Ads["odd"])
	})

	t.Run("exclusions are honoured", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Stock(t, stock)
		req := decision.Request{
			Placements: []decision.Placement{placement("p", 3)},
			Exclude:    decision.Exclusions{Advertisers: []string{"101"}, Categories: []string{"gambling"}},
		}
		for range 5 {
			resp, err := h.Decider.Decide(ctx, req)
			require.NoError(t, err)
			for _, ad := range resp.Ads["p"] {
				require.NotEqual(t, "101", ad.AdvertiserID)
				require.NotContains(t, ad.Categories, "gambling")
			}
		}
	})

	t.Run("a cancelled context ends the call with ErrTimeout", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Stock(t, stock)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		start := time.Now()
		_, err := h.Decider.Decide(cctx, decision.Request{Placements: []decision.Placement{placement("p", 1)}})
		require.Error(t, err)
		require.True(t, errors.Is(err, decision.ErrTimeout) || errors.Is(err, context.Canceled), "got %v", err)
		require.Less(t, time.Since(start), 5*time.Second)
	})

	t.Run("prices are whole micros and positive", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Stock(t, stock)
		resp, err := h.Decider.Decide(ctx, decision.Request{Placements: []decision.Placement{placement("p", 3)}})
		require.NoError(t, err)
		for _, ad := range resp.Ads["p"] {
			require.Positive(t, ad.Price.Micros, fmt.Sprintf("%+v", ad))
		}
	})
}
