package cache_test

import (
	"context"
	"fmt"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/cache"
	"github.com/adshare/adshare/decision/decisiontest"
)

// Each ad of a refill is handed out once; the fourth request finds the
// pool empty and refills it.
func Example() {
	upstream := &decisiontest.Fake{}
	for _, title := range []string{"Run faster", "Eat better", "Sleep more"} {
		upstream.Ads = append(upstream.Ads, decision.Ad{
			Source:   "kevel",
			Creative: decision.Creative{Format: "banner", Title: title},
			Price:    decision.Price{Model: decision.CPM, Micros: 1_500_000},
		})
	}
	d, err := cache.New(upstream, &cache.Config{Prefetch: 3})
	if err != nil {
		panic(err)
	}
	req := decision.Request{Placements: []decision.Placement{{ID: "feed", Formats: []string{"banner"}}}}
	for range 4 {
		resp, err := d.Decide(context.Background(), req)
		if err != nil {
			panic(err)
		}
		ad := resp.Ads["feed"][0]
		fmt.Println(ad.ID, ad.Creative.Title)
	}
	fmt.Println("upstream calls:", len(upstream.Calls()))
	// Output:
	// fake-1 Run faster
	// fake-2 Eat better
	// fake-3 Sleep more
	// fake-4 Run faster
	// upstream calls: 2
}
