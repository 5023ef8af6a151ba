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

	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres"
)

// New returns a store on a fresh, fully migrated schema, closed when tb ends.
func New(tb testing.TB) *postgres.DB {
	tb.Helper()
	db := Open(tb)
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
	url := URL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, url, nil)
	if err != nil {
		tb.Fatalf("postgrestest: open: %v", err)
	}
	tb.Cleanup(func() { _ = db.Stop(context.Background()) })
	return db
}

// URL returns a connection URL for a fresh, empty schema dropped when tb ends.
func URL(tb testing.TB) string {
	tb.Helper()
	return testenv.PostgresSchema(tb)
}
