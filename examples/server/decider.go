package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/cache"
	"github.com/adshare/adshare/decision/kevel"
	"github.com/adshare/adshare/decision/kevel/kevelfake"
	"github.com/adshare/adshare/decision/local"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/store/redis"
)

// deciders is what fills spaces, and what fires the ad server's pixels.
type deciders struct {
	decider decision.Decider
	pixels  analytics.Pixels  // nil for the local engine, which has none
	fake    *kevelfake.Server // the in-process fake Kevel network, when asked for
	userDB  adspace.UserDB    // Kevel's UserDB, told of consent changes; nil for the local engine
	// forget is Kevel UserDB, told to forget erased users' viewer keys;
	// nil without an API key (UserDB forget needs one) or without Kevel.
	forget adshare.ViewerForgetter
}

// newDeciders builds Kevel behind the caching decorator when a Kevel
// network is configured (or the in-process fake is asked for), and the
// local engine over users' own ads otherwise. rc, when set, shares the
// cached decisions between instances.
func newDeciders(ctx context.Context, cfg config, logger *slog.Logger, reg prometheus.Registerer, store adshare.Store, rc *redis.Client) (*deciders, error) {
	d := &deciders{}
	network, site, baseURL := cfg.kevelNetwork, cfg.kevelSite, cfg.kevelURL
	if cfg.kevelFake {
		d.fake = kevelfake.New(kevelfake.Config{NetworkID: 23, SiteIDs: []int64{1}, Ads: demoAds()})
		if err := d.fake.Start(ctx); err != nil {
			return nil, err
		}
		network, site, baseURL = 23, 1, d.fake.URL()
		logger.InfoContext(ctx, "kevel: in-process fake network", slog.String("url", baseURL))
	}
	if network == 0 {
		inventory, err := adspace.NewInventory(store)
		if err != nil {
			return nil, err
		}
		engine, err := local.New(local.Config{Inventory: inventory, Stats: store, Frequency: memory.NewFrequencyCounter(time.Hour), Logger: logger})
		if err != nil {
			return nil, err
		}
		d.decider = engine
		logger.InfoContext(ctx, "decisions: the local engine over users' own ads")
		return d, nil
	}

	fail := func(err error) (*deciders, error) {
		if d.fake != nil {
			stopAll(ctx, d.fake)
		}
		return nil, err
	}
	client, err := kevel.New(kevel.Config{
		NetworkID: network, SiteID: site, BaseURL: baseURL, APIKey: kevel.Secret(cfg.kevelAPIKey), Logger: logger, Metrics: reg,
	})
	if err != nil {
		return fail(fmt.Errorf("kevel: %w", err))
	}
	firer, err := kevel.NewFirer(kevel.FirerConfig{NetworkID: network, BaseURL: baseURL, APIKey: kevel.Secret(cfg.kevelAPIKey), Logger: logger, Metrics: reg})
	if err != nil {
		return fail(fmt.Errorf("kevel pixels: %w", err))
	}
	cacheCfg := &cache.Config{Logger: logger, Metrics: reg}
	if rc != nil {
		cacheCfg.Shared = rc.DecisionPools("")
	}
	cached, err := cache.New(client, cacheCfg)
	if err != nil {
		return fail(err)
	}
	d.decider, d.pixels, d.userDB = cached, firer, client.UserDB()
	if cfg.kevelAPIKey != "" {
		d.forget = client.UserDB()
	} else {
		logger.InfoContext(ctx, "kevel: no API key; erasures cannot ask Kevel UserDB to forget viewers")
	}
	logger.InfoContext(ctx, "decisions: Kevel, cached", slog.Int64("network", network), slog.Int64("site", site))
	return d, nil
}

// demoAds are the fake network's ads: two banners (ad type 4) and a
// native card (ad type 5), as the default formats ask for.
func demoAds() []kevelfake.Ad {
	return []kevelfake.Ad{
		{AdType: 4, SiteID: 1, Title: "Ride further", ImageURL: "https://cdn.example.com/bike.png", Width: 320, Height: 50,
			Price: "2.50", RateType: 2, ClickThroughURL: "https://bikes.example.com/"},
		{AdType: 4, SiteID: 1, Title: "Brew better", ImageURL: "https://cdn.example.com/coffee.png", Width: 320, Height: 50,
			Price: "1.80", RateType: 2, ClickThroughURL: "https://coffee.example.com/"},
		{AdType: 5, SiteID: 1, Title: "Learn a language", CustomData: map[string]any{"cta": "Start free", "categories": "education"},
			Price: "0.40", RateType: 3, ClickThroughURL: "https://lingo.example.com/"},
	}
}
