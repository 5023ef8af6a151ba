// Package postgrestest gives tests a migrated adshare database of their own.
//
// The server comes from ADSHARE_TEST_DATABASE_URL, or from a container when
// Docker answers; without either the test is skipped, and when CI is set the
// skip is a failure. Each call creates a fresh schema that is dropped when
// the test ends, so tests never see each other's rows or an earlier run's.
package postgrestest

import (
	"context"
	"testing"
	"time"

	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres"
)

// New returns a store on a fresh, fully migrated schema, closed when tb ends.
func New(tb testing.TB) *postgres.DB {
	tb.Helper()
	return NewWithConfig(tb, nil)
}

// NewWithKeyring is New with a fresh test keyring (Keyring) as
// Config.Keyring: what billing's sealed fields need.
func NewWithKeyring(tb testing.TB) *postgres.DB {
	tb.Helper()
	return NewWithConfig(tb, &postgres.Config{Keyring: Keyring(tb)})
}

// NewWithConfig is New with cfg (nil: the defaults).
func NewWithConfig(tb testing.TB, cfg *postgres.Config) *postgres.DB {
	tb.Helper()
	db := open(tb, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatalf("postgrestest: migrate: %v", err)
	}
	return db
}

// Open returns a store on a fresh, empty schema (not migrated), closed when
// tb ends; for tests of the migrations themselves.
func Open(tb testing.TB) *postgres.DB {
	tb.Helper()
	return open(tb, nil)
}

func open(tb testing.TB, cfg *postgres.Config) *postgres.DB {
	tb.Helper()
	url := URL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, url, cfg)
	if err != nil {
		tb.Fatalf("postgrestest: open: %v", err)
	}
	tb.Cleanup(func() { _ = db.Stop(context.Background()) })
	return db
}

// Keyring returns a ring of fresh random keys (one data key and an index
// key), for tests that store sealed values.
func Keyring(tb testing.TB) *keyring.Ring {
	tb.Helper()
	r, err := keyring.New(context.Background(), keyring.Keys{Data: [][]byte{keyring.NewKey()}, Index: keyring.NewKey()})
	if err != nil {
		tb.Fatalf("postgrestest: keyring: %v", err)
	}
	return r
}

// URL returns a connection URL for a fresh, empty schema dropped when tb ends.
func URL(tb testing.TB) string {
	tb.Helper()
	return testenv.PostgresSchema(tb)
}
