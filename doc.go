// Package adshare assembles the adshare backend: the user system (auth),
// ad spaces and fills (adspace), ad decisioning (decision), tracking and
// reports (analytics) and the HTTP API (transport), on the stores and
// deciders the host passes in.
//
// The domain packages can be used one by one; this package wires the usual
// set together once, so that a host writes none of it:
//
//	store := memory.New()
//	inventory, _ := adspace.NewInventory(store)
//	engine, _ := local.New(local.Config{Inventory: inventory, Stats: store, Frequency: memory.NewFrequencyCounter(time.Hour)})
//	app, err := adshare.New(&adshare.Config{Store: store, Shared: memory.NewShared(), Decider: engine})
//	...
//	err = app.Start(ctx)
//	mux.Handle("/", app.Handler())
//	...
//	err = app.Stop(ctx) // after http.Server.Shutdown
//
// For a fleet, Store is a store/postgres DB and Shared a store/redis
// Client; for Kevel, Decider is decision/cache over decision/kevel, and
// Pixels the Kevel pixel firer. This package imports none of them: the
// host chooses.
//
// # Lifecycle
//
// New starts nothing. [App.Start] starts what runs in the background, in
// dependency order (the store, the shared pieces, the decider and pixels,
// then analytics and ad spaces), and [App.Stop] stops them in reverse, so
// that each drains into what it depends on: queued events are committed
// before their pixels are fired and before the store closes. Every
// component in adshare has the same Start(ctx) error / Stop(ctx) error
// (Stop alone where nothing needs starting); Stop is idempotent and safe
// before Start, and no constructor starts a goroutine.
//
// # Secrets
//
// Config.Keys holds the secrets every instance must share: the access-token
// signing key, the refresh-token key, the tracking-token keys and the
// secret of viewers' pseudonymous keys. Missing ones are replaced by
// random keys with a warning, which suits a quick start on one machine and
// never a fleet.
package adshare
