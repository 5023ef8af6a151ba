package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the embedded SQL migrations, for tools that apply them
// their own way. River's tables are not among them: migration 6 is Go code
// (see RiverSchemaVersion), so such a tool also runs River's own migrations
// (rivermigrate, or the river CLI) up to RiverSchemaVersion in the same
// schema.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// MigrationStatus is the state of one migration.
type MigrationStatus struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time // zero when not applied
}

// MigrationTable is the table in which applied versions are recorded, in the
// connection's current schema.
const MigrationTable = "adshare_schema_version"

// Migrate applies every pending migration. Several processes may call it at
// once: an advisory lock, keyed by the current schema, lets one migrate while
// the others wait and then find nothing to do. It returns the versions
// applied.
//
// Migration 6 creates the tables of the job queue (see [DB.Jobs]): it runs
// River's own migrations (rivermigrate) up to RiverSchemaVersion, in the
// current schema, inside the same locked run. So River's tables live and
// go with adshare's: MigrationStatuses lists them as migration 6, and
// MigrateDown past it drops them, with the jobs they hold.
func (db *DB) Migrate(ctx context.Context) ([]int64, error) {
	var applied []int64
	err := db.withProvider(ctx, func(p *goose.Provider) error {
		results, err := p.Up(ctx)
		for _, r := range results {
			if r.Error == nil {
				applied = append(applied, r.Source.Version)
				db.logger.InfoContext(ctx, "postgres: migration applied", "version", r.Source.Version, "duration", r.Duration)
			}
		}
		return err
	})
	if err != nil {
		return applied, fmt.Errorf("postgres: migrate up: %w", err)
	}
	return applied, nil
}

// MigrateDown rolls back the most recent migration and returns its version,
// or 0 when none is applied.
func (db *DB) MigrateDown(ctx context.Context) (int64, error) {
	var version int64
	err := db.withProvider(ctx, func(p *goose.Provider) error {
		r, err := p.Down(ctx)
		if errors.Is(err, goose.ErrNoNextVersion) {
			return nil
		}
		if r != nil && r.Error == nil {
			version = r.Source.Version
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: migrate down: %w", err)
	}
	return version, nil
}

// MigrationStatuses reports every known migration and whether it is applied.
func (db *DB) MigrationStatuses(ctx context.Context) ([]MigrationStatus, error) {
	var out []MigrationStatus
	err := db.withProvider(ctx, func(p *goose.Provider) error {
		statuses, err := p.Status(ctx)
		if err != nil {
			return err
		}
		for _, s := range statuses {
			out = append(out, MigrationStatus{
				Version:   s.Source.Version,
				Name:      s.Source.Path,
				Applied:   s.State == goose.StateApplied,
				AppliedAt: s.AppliedAt.UTC(),
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: migration status: %w", err)
	}
	return out, nil
}

// River's schema, as migration 6 applies it.
const (
	// RiverSchemaVersion is the version of River's schema (rivermigrate's
	// main line) that migration 6 brings the database to. An upgrade of
	// River that adds migrations of its own comes with a new adshare
	// migration that takes River's schema from this version to the next:
	// an applied migration never changes.
	RiverSchemaVersion = 8
	// riverMigrationVersion is the adshare migration that applies River's.
	riverMigrationVersion = 6
)

// riverMigration is migration 6: River's tables, in schema, up to
// RiverSchemaVersion; down removes them all. River runs each of its
// versions in a transaction of its own and records it in its own
// river_migration table, so a run cut short resumes where it stopped.
func (db *DB) riverMigration(schema string) *goose.Migration {
	run := func(direction rivermigrate.Direction, target int) func(context.Context, *sql.DB) error {
		return func(ctx context.Context, _ *sql.DB) error {
			m, err := rivermigrate.New(riverpgxv5.New(db.pool), &rivermigrate.Config{Schema: schema, Logger: db.logger})
			if err != nil {
				return fmt.Errorf("river migrator: %w", err)
			}
			if _, err := m.Migrate(ctx, direction, &rivermigrate.MigrateOpts{TargetVersion: target}); err != nil {
				return fmt.Errorf("river migrate %s: %w", direction, err)
			}
			return nil
		}
	}
	m := goose.NewGoMigration(riverMigrationVersion,
		&goose.GoFunc{RunDB: run(rivermigrate.DirectionUp, RiverSchemaVersion)},
		&goose.GoFunc{RunDB: run(rivermigrate.DirectionDown, -1)}, // -1: every version River applied
	)
	m.Source = "00006_river_jobs.go"
	return m
}

// currentSchema returns the connections' current schema (the first of
// search_path that exists), or "" when there is none.
func (db *DB) currentSchema(ctx context.Context) (string, error) {
	var schema *string
	if err := db.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", fmt.Errorf("postgres: current schema: %w", err)
	}
	if schema == nil {
		return "", nil
	}
	return *schema, nil
}

// withProvider runs fn with a goose provider over a database/sql view of the
// pool, locked per schema.
func (db *DB) withProvider(ctx context.Context, fn func(*goose.Provider) error) error {
	schema, err := db.currentSchema(ctx)
	if err != nil {
		return err
	}
	h := fnv.New64a()
	h.Write([]byte("adshare:" + schema))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64()>>1)),
		lock.WithLockTimeout(1, 300), // probe every second, for up to five minutes
	)
	if err != nil {
		return err
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, Migrations(),
		goose.WithSessionLocker(locker),
		goose.WithTableName(MigrationTable),
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(db.riverMigration(schema)),
	)
	if err != nil {
		return err
	}
	return fn(p)
}
