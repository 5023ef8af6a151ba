package privacy_test

import (
	"context"
	"fmt"
	"time"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision/local"
	"github.com/adshare/adshare/privacy"
	"github.com/adshare/adshare/store/memory"
)

// A user asks for everything adshare holds about them (GDPR articles 15
// and 20): the export runs as a job, then downloads once through an
// expiring link. adshare.New wires privacy when the store keeps exports,
// as the memory and PostgreSQL stores do.
func ExampleService_RequestExport() {
	ctx := context.Background()
	store := memory.New()
	inventory, _ := adspace.NewInventory(store)
	engine, _ := local.New(local.Config{Inventory: inventory, Stats: store, Frequency: memory.NewFrequencyCounter(time.Hour)})
	app, err := adshare.New(&adshare.Config{Store: store, Shared: memory.NewShared(), Decider: engine})
	if err != nil {
		panic(err)
	}
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)

	user, pair, err := app.Auth().Register(ctx, auth.Registration{Email: "ada@example.com", Password: "a long enough passphrase"})
	if err != nil {
		panic(err)
	}
	me := auth.Principal{UserID: user.ID, SessionID: pair.SessionID, Role: auth.RoleUser}
	export, created, err := app.Privacy().RequestExport(ctx, me)
	if err != nil {
		panic(err)
	}
	fmt.Println("requested:", created)
	for export.Status == privacy.ExportPending {
		time.Sleep(10 * time.Millisecond)
		if export, err = app.Privacy().Export(ctx, me, export.ID); err != nil {
			panic(err)
		}
	}
	fmt.Println("status:", export.Status)

	token := app.Privacy().DownloadToken(export)
	_, bundle, err := app.Privacy().Download(ctx, token)
	fmt.Println("downloaded:", err == nil && len(bundle) > 0)
	_, _, err = app.Privacy().Download(ctx, token)
	fmt.Println("again:", err)
	// Output:
	// requested: true
	// status: ready
	// downloaded: true
	// again: this download link was used already or has expired; request a new export
}
