// Package postgres implements every adshare store interface on PostgreSQL
// with pgx v5.
//
// The schema is created and upgraded by versioned SQL migrations embedded in
// the binary (see [DB.Migrate]), applied with pressly/goose v3. Goose was
// chosen because it reads migrations from an embed.FS, runs each in a
// transaction, takes a PostgreSQL advisory lock so that several instances
// starting at once migrate exactly once, offers down migrations and status
// for operators, and has a Provider API without package globals, which a
// library needs. Plain SQL files keep the schema reviewable by DBAs.
//
// Constraints and indexes enforce what the domain promises (unique emails,
// foreign keys, range checks), so a bug in a caller cannot store what the
// domain forbids. Driver errors become domain errors in one place
// (errors.go).
//
// Analytics events live in a table partitioned by day (the UTC day of the
// tracking token's issue time) with a default partition for anything
// else; see [DB.EnsureEventPartitions] and [DB.DropEventPartitionsBefore].
// Each WriteEvents call is one transaction that inserts the new events
// (INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING)
// and folds only those into hourly rollups with one aggregated upsert per
// table; reports read the rollups, never the events.
//
// Durable background jobs run on River (github.com/riverqueue/river, pgx v5
// driver) over the DB's own pool: [DB.Jobs] returns the queue (jobs.Queue).
// River was chosen because it keeps jobs in PostgreSQL itself, so a job can
// be inserted in the same transaction as the ledger write that calls for
// it, and it has what the money's jobs need: unique jobs enforced by a
// unique index, retries with a per-worker backoff, periodic jobs enqueued
// by an elected leader only, jobs locked by one instance (FOR UPDATE SKIP
// LOCKED) and rescued when their instance dies. Its tables come with
// migration 6 (River's own migrations, pinned at [RiverSchemaVersion]).
//
// All statements are unqualified, so a connection's search_path selects the
// schema: tests use a fresh schema per test, and a host may keep adshare in a
// schema of its own. River is told that schema explicitly (the current
// schema at Open), because it also prefixes its LISTEN/NOTIFY topics with
// it: instances on other schemas of the same database never hear them.
package postgres
