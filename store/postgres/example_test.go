package postgres_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/decision/decisiontest"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/store/postgres"
)

// Open connects to PostgreSQL; Migrate applies the embedded migrations
// (several instances may migrate at once: one applies each). The DB is the
// Store of adshare.New, which starts its maintenance (event partitions,
// retention) and stops it with the App. It needs a server, so it has no
// Output to check.
func ExampleOpen() {
	ctx := context.Background()
	// Keys come from the host's secret store; the library reads no
	// environment variable itself.
	ring, err := keyring.New(ctx, keyring.StaticKeys{
		Data:  []keyring.Secret{keyring.Secret(os.Getenv("ADSHARE_DATA_KEY"))},
		Index: keyring.Secret(os.Getenv("ADSHARE_DATA_INDEX_KEY")),
	})
	if err != nil {
		log.Fatal(err)
	}
	db, err := postgres.Open(ctx, os.Getenv("DATABASE_URL"), &postgres.Config{
		MaxConns:       20,
		EventRetention: 90 * 24 * time.Hour, // raw events; rollups stay
		Keyring:        ring,                // emails, names and payout details sealed at rest
	})
	if err != nil {
		log.Fatal(err)
	}
	applied, err := db.Migrate(ctx)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("applied %d migrations", len(applied))

	app, err := adshare.New(&adshare.Config{Store: db, Shared: memory.NewShared(), Decider: &decisiontest.Fake{}})
	if err != nil {
		log.Fatal(err)
	}
	if err := app.Start(ctx); err != nil { // starts db too
		log.Fatal(err)
	}
	defer app.Stop(ctx)
}
