package local_test

import (
	"context"
	"fmt"
	"time"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/local"
)

// fixedInventory is a fixed decision.Inventory; adspace.NewInventory is the
// real one, over users' approved and funded content.
type fixedInventory []decision.Candidate

func (inv fixedInventory) Candidates(context.Context, time.Time) ([]decision.Candidate, error) {
	return inv, nil
}

// The engine keeps the funded candidates of the asked format, ranks them by
// expected revenue per thousand impressions (here two CPM bids) and gives
// each placement a different ad.
func Example() {
	engine, err := local.New(local.Config{Inventory: fixedInventory{
		{ID: "lemonade", AdvertiserID: "stand", Format: "banner", Creative: decision.Creative{Format: "banner", Title: "Fresh lemonade"},
			Bid: decision.Price{Model: decision.CPM, Micros: 1_000_000}, TotalBudgetMicros: 50_000_000},
		{ID: "bikes", AdvertiserID: "shop", Format: "banner", Creative: decision.Creative{Format: "banner", Title: "Spring bikes"},
			Bid: decision.Price{Model: decision.CPM, Micros: 3_000_000}, TotalBudgetMicros: 50_000_000},
		{ID: "video", AdvertiserID: "studio", Format: "video", Creative: decision.Creative{Format: "video", Title: "Trailer"},
			Bid: decision.Price{Model: decision.CPM, Micros: 9_000_000}, TotalBudgetMicros: 50_000_000},
	}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	// Start rereads the fixedInventory in the background; without it, the first
	// Decide reads it once.
	if err := engine.Start(ctx); err != nil {
		panic(err)
	}
	defer engine.Stop(ctx)

	resp, err := engine.Decide(ctx, decision.Request{Placements: []decision.Placement{
		{ID: "first", Formats: []string{"banner"}},
		{ID: "second", Formats: []string{"banner"}},
	}})
	if err != nil {
		panic(err)
	}
	for _, slot := range []string{"first", "second"} {
		ad := resp.Ads[slot][0]
		fmt.Println(slot, ad.Source, ad.AdID, ad.Price.Micros)
	}
	// Output:
	// first local bikes 3000000
	// second local lemonade 1000000
}
