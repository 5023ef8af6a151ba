package adspace_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision/local"
	"github.com/adshare/adshare/store/memory"
)

// Normalize validates an owner's settings and puts them in their stored
// form: keywords lower-cased, trimmed, unique and sorted.
func ExampleSettings_Normalize() {
	s := adspace.DefaultSettings()
	s.Keywords = []string{" Cycling", "outdoors", "cycling "}
	s.RefreshInterval = 45 * time.Second
	n, err := s.Normalize()
	if err != nil {
		panic(err)
	}
	fmt.Println(n.Keywords, n.RefreshInterval, n.Formats)

	s.RefreshInterval = time.Second // under MinRefreshInterval
	_, err = s.Normalize()
	fmt.Println(err != nil)
	// Output:
	// [cycling outdoors] 45s [banner]
	// true
}

// Check validates an advertiser's draft before it is stored: the error
// names every bad field by its JSON name.
func ExampleRules_Check() {
	rules := adspace.DefaultRules()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	draft := adspace.ContentDraft{
		Format: "banner", Title: "Spring <b>sale</b>", ClickURL: "https://bikes.shop/spring",
		Bid: adspace.Bid{Model: adspace.BidCPM, Micros: 2_000_000}, TotalBudgetMicros: 50_000_000,
	}
	ok, err := rules.Check(draft, now)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q from %s\n", ok.Title, ok.Schedule.Start.Format(time.DateOnly))

	draft.ClickURL = "http://bikes.shop/spring" // not https
	draft.TotalBudgetMicros = 0
	_, err = rules.Check(draft, now)
	fmt.Println(errors.Is(err, adspace.ErrInvalidContent))
	fmt.Println(err)
	// Output:
	// "Spring sale" from 2026-05-01
	// true
	// the ad content is not valid (click_url: must be an https URL; total_budget_micros: is required)
}

// An owner reads and changes their space through the Service (here the one
// adshare.New assembles on the embedded defaults). A write that names the
// version it read is refused when someone changed the space meanwhile.
func ExampleService_UpdateSettings() {
	store := memory.New()
	inventory, err := adspace.NewInventory(store)
	if err != nil {
		panic(err)
	}
	engine, err := local.New(local.Config{Inventory: inventory, Stats: store})
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

	_, tokens, err := app.Auth().Register(ctx, auth.Registration{Email: "owner@example.com", Password: "a long enough passphrase"})
	if err != nil {
		panic(err)
	}
	owner, err := app.Auth().Authenticate(ctx, tokens.AccessToken)
	if err != nil {
		panic(err)
	}
	spaces := app.AdSpaces()
	space, err := spaces.MySpace(ctx, owner) // made at registration
	if err != nil {
		panic(err)
	}
	fmt.Println("version", space.Version, "enabled", space.Settings.Enabled)

	set := space.Settings
	set.Keywords = []string{"Cycling"}
	updated, err := spaces.UpdateSettings(ctx, owner, set, space.Version)
	if err != nil {
		panic(err)
	}
	fmt.Println("version", updated.Version, updated.Settings.Keywords)

	_, err = spaces.UpdateSettings(ctx, owner, set, space.Version) // the version read before
	fmt.Println(errors.Is(err, adspace.ErrVersionConflict))
	// Output:
	// version 1 enabled true
	// version 2 [cycling]
	// true
}
