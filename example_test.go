package adshare_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/local"
	"github.com/adshare/adshare/store/memory"
)

// Example assembles adshare on the embedded defaults (everything in
// memory, the built-in engine over users' own ads) and serves its API.
func Example() {
	store := memory.New()
	inventory, err := adspace.NewInventory(store)
	if err != nil {
		panic(err)
	}
	engine, err := local.New(local.Config{Inventory: inventory, Stats: store, Frequency: memory.NewFrequencyCounter(time.Hour)})
	if err != nil {
		panic(err)
	}
	app, err := adshare.New(&adshare.Config{Store: store, Shared: memory.NewShared(), Decider: engine})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)

	srv := httptest.NewServer(app.Handler()) // a host mounts it in its own server
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 {"checks":{"store":"ok"},"status":"ok"}
}

// bikeShop is a Decider of the host's own: it answers every placement
// with one banner.
type bikeShop struct{}

func (bikeShop) Decide(ctx context.Context, req decision.Request) (decision.Response, error) {
	if err := req.Validate(); err != nil {
		return decision.Response{}, err
	}
	resp := decision.Response{Ads: map[string][]decision.Ad{}}
	for _, p := range req.Placements {
		resp.Ads[p.ID] = []decision.Ad{{
			ID: "d-" + p.ID, Source: "bikeshop", AdID: "spring-sale", AdvertiserID: "bike-shop",
			Creative: decision.Creative{Format: "banner", Title: "Ride further", ImageURL: "https://cdn.example/bike.png",
				LandingURL: "https://bikes.example/spring"},
			Price: decision.Price{Model: decision.CPM, Micros: 2_500_000}, // 2.50 per thousand
		}}
	}
	return resp, nil
}

// Example_customDecider fills spaces with a Decider of the host's own:
// any type with Decide(ctx, decision.Request) does.
func Example_customDecider() {
	store := memory.New()
	app, err := adshare.New(&adshare.Config{Store: store, Shared: memory.NewShared(), Decider: bikeShop{}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)

	owner, _, err := app.Auth().Register(ctx, auth.Registration{Email: "owner@example.com", Password: "a long enough passphrase"})
	if err != nil {
		panic(err)
	}
	viewer := signIn(ctx, app, "viewer@example.com") // someone else, signed in
	fill, err := app.AdSpaces().Fill(ctx, adspace.FillRequest{Owner: owner.ID, Viewer: &viewer})
	if err != nil {
		panic(err)
	}
	ad := fill.Ads[0]
	fmt.Println(ad.Source, ad.Creative.Title, ad.Creative.Width, "x", ad.Creative.Height, ad.Billable)
	// Output: bikeshop Ride further 320 x 50 true
}

// Example_fillAndImpression fills an owner's space for a viewer and
// reports the viewable impression, as the app does over HTTP, from Go.
func Example_fillAndImpression() {
	store := memory.New()
	app, err := adshare.New(&adshare.Config{Store: store, Shared: memory.NewShared(), Decider: bikeShop{}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)

	owner, _, err := app.Auth().Register(ctx, auth.Registration{Email: "owner@example.com", Password: "a long enough passphrase"})
	if err != nil {
		panic(err)
	}
	viewer := signIn(ctx, app, "viewer@example.com") // someone else, signed in
	fill, err := app.AdSpaces().Fill(ctx, adspace.FillRequest{Owner: owner.ID, Viewer: &viewer})
	if err != nil {
		panic(err)
	}

	// The app shows the ad and reports it once it was viewable (half on
	// screen for a second), from the viewer's device.
	device := auth.NewContextWithClient(ctx, auth.Client{IP: "203.0.113.7", UserAgent: "BikeApp/3.0 (Android 15)"})
	results, err := app.Analytics().Ingest(device, []analytics.Report{{
		Type: analytics.Impression, Token: fill.Ads[0].Token, OccurredAt: time.Now().Add(1500 * time.Millisecond),
	}})
	if err != nil {
		panic(err)
	}
	fmt.Println(results[0].Status, "valid:", results[0].Valid, "billable:", results[0].Billable)

	// The same report again (an app retrying) counts once.
	results, err = app.Analytics().Ingest(device, []analytics.Report{{Type: analytics.Impression, Token: fill.Ads[0].Token}})
	if err != nil {
		panic(err)
	}
	fmt.Println(results[0].Status)
	// Output:
	// accepted valid: true billable: true
	// duplicate
}

// signIn registers someone and returns who they are, as an access token
// says.
func signIn(ctx context.Context, app *adshare.App, email string) auth.Principal {
	_, tokens, err := app.Auth().Register(ctx, auth.Registration{Email: email, Password: "a long enough passphrase"})
	if err != nil {
		panic(err)
	}
	p, err := app.Auth().Authenticate(ctx, tokens.AccessToken)
	if err != nil {
		panic(err)
	}
	return p
}
