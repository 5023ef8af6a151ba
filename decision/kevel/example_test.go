package kevel_test

import (
	"context"
	"fmt"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/kevel"
	"github.com/adshare/adshare/decision/kevel/kevelfake"
)

// Example asks a fake Kevel for an ad, then fires its impression and its
// click the way a server does: once, server-side, only to Kevel's host.
func Example() {
	fake := kevelfake.New(kevelfake.Config{NetworkID: 23, Ads: []kevelfake.Ad{
		{AdType: 5, Title: "Run faster", ImageURL: "https://static.example/run.png", Width: 320, Height: 50, Price: "2.5",
			ClickThroughURL: "https://shoes.example/run"},
	}})
	ctx := context.Background()
	if err := fake.Start(ctx); err != nil {
		panic(err)
	}
	defer fake.Stop(ctx)

	client, err := kevel.New(kevel.Config{NetworkID: 23, SiteID: 667480, BaseURL: fake.URL()})
	if err != nil {
		panic(err)
	}
	resp, err := client.Decide(ctx, decision.Request{
		Placements: []decision.Placement{{ID: "header", AdTypes: []int{5}}},
		UserAgent:  "Mozilla/5.0 (iPhone)",
		IP:         "203.0.113.7",
	})
	if err != nil {
		panic(err) // a real server shows house content instead
	}
	ad := resp.Ads["header"][0]
	fmt.Println(ad.Source, ad.Creative.Format, ad.Creative.Title, ad.Price.Model, ad.Price.Micros)

	firer, err := kevel.NewFirer(kevel.FirerConfig{NetworkID: 23, BaseURL: fake.URL()})
	if err != nil {
		panic(err)
	}
	if err := firer.Start(ctx); err != nil {
		panic(err)
	}
	fmt.Println(firer.Fire(ad.Tracking.ImpressionURL))
	fmt.Println(firer.Fire(ad.Tracking.ImpressionURL))
	landing, err := firer.FireClick(ctx, ad.Tracking.ClickURL)
	fmt.Println(landing, err)
	if err := firer.Stop(ctx); err != nil {
		panic(err)
	}
	fmt.Println(fake.Stats().Impressions, fake.Stats().Clicks)
	// Output:
	// kevel banner Run faster cpm 2500000
	// <nil>
	// the pixel was already fired
	// https://shoes.example/run <nil>
	// 1 1
}
