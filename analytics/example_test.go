package analytics_test

import (
	"context"
	"fmt"
	"time"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/decisiontest"
	"github.com/adshare/adshare/store/memory"
)

// The app reports what the viewer saw and tapped; analytics checks each
// token, stores the event once, filters invalid traffic and counts it in
// the owner's reports. Here a fill's impression, a retried report of it,
// its click, and the owner's performance report for today.
func ExampleService_Ingest() {
	fake := &decisiontest.Fake{Ads: []decision.Ad{{
		Source: "fake", Creative: decision.Creative{Format: "banner", Title: "Ride further", LandingURL: "https://bikes.shop/spring"},
		Price: decision.Price{Model: decision.CPM, Micros: 2_000_000},
	}}}
	app, err := adshare.New(&adshare.Config{Store: memory.New(), Shared: memory.NewShared(), Decider: fake})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)

	register := func(email string) auth.Principal {
		_, pair, err := app.Auth().Register(ctx, auth.Registration{Email: email, Password: "a long enough passphrase"})
		if err != nil {
			panic(err)
		}
		p, err := app.Auth().Authenticate(ctx, pair.AccessToken)
		if err != nil {
			panic(err)
		}
		return p
	}
	owner, viewer := register("owner@example.com"), register("viewer@example.com")
	fill, err := app.AdSpaces().Fill(ctx, adspace.FillRequest{Owner: owner.UserID, Viewer: &viewer})
	if err != nil {
		panic(err)
	}
	token := fill.Ads[0].Token

	// Reports come from the viewer's device (its address and user agent
	// feed the invalid-traffic filters).
	device := auth.NewContextWithClient(ctx, auth.Client{IP: "203.0.113.7", UserAgent: "BikeApp/3.0 (Android 15)"})
	seen := time.Now().Add(1500 * time.Millisecond) // on screen long enough to count as viewable
	for range 2 {                                   // the second is an app retrying
		results, err := app.Analytics().Ingest(device, []analytics.Report{{Type: analytics.Impression, Token: token, OccurredAt: seen}})
		if err != nil {
			panic(err)
		}
		fmt.Println(results[0].Status, results[0].Valid)
	}
	landing, click, err := app.Analytics().Click(device, token)
	if err != nil {
		panic(err)
	}
	fmt.Println(click.Status, landing)

	today := time.Now().UTC().Truncate(24 * time.Hour)
	perf, err := app.Analytics().Performance(ctx, owner, analytics.ReportParams{ // yesterday to tomorrow
		Scope: analytics.ScopeOwner, From: today.Add(-24 * time.Hour), To: today.Add(48 * time.Hour), Granularity: analytics.Day,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("impressions", perf.Totals.Impressions, "clicks", perf.Totals.Clicks)
	// Output:
	// accepted true
	// duplicate true
	// accepted https://bikes.shop/spring
	// impressions 1 clicks 1
}
