package postgres

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// partitionLockTimeout bounds how long DropEventPartitionsBefore waits for
// the table lock that detaching needs: while it waits, it queues inserts
// behind it, so it gives up instead and reports the error.
const partitionLockTimeout = 5 * time.Second

// EnsureEventPartitions creates the daily partitions of the events table
// for every UTC day from the day of `from` to the day of `to`, inclusive,
// that does not have one yet.
//
// The events table is partitioned by the UTC day of the tracking token's
// issue time, one partition per day named events_yYYYYmMMdDD, plus
// events_default for anything outside the days that have one, so an
// insert never fails for want of a partition. Migration 4 creates the days
// from two before to seven after the day it runs; a long-running host
// calls EnsureEventPartitions daily (say for today to today+7), and
// DropEventPartitionsBefore for retention.
//
// Rows of the new days waiting in the default partition move into their
// partition. Each partition is built detached and then attached, which
// does not block inserts into the other days (inserts into the default
// partition wait while it is scanned). It is idempotent, and safe to call
// from several instances at once.
func (db *DB) EnsureEventPartitions(ctx context.Context, from, to time.Time) error {
	_, err := db.pool.Exec(ctx, `SELECT ensure_event_partitions($1::date, $2::date)`,
		from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly))
	if err != nil {
		return fmt.Errorf("postgres: ensure event partitions: %w", translate(err, nil))
	}
	return nil
}

// partitionName matches the daily partitions EnsureEventPartitions names.
var partitionName = regexp.MustCompile(`^events_y(\d{4})m(\d{2})d(\d{2})$`)

// EventPartitions returns the days (UTC midnights) that have a partition
// of the events table, oldest first.
func (db *DB) EventPartitions(ctx context.Context) ([]time.Time, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'events'::regclass`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list event partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: list event partitions: %w", err)
	}
	var days []time.Time
	for _, n := range names {
		if m := partitionName.FindStringSubmatch(n); m != nil {
			d, err := time.Parse(time.DateOnly, m[1]+"-"+m[2]+"-"+m[3])
			if err == nil {
				days = append(days, d)
			}
		}
	}
	slices.SortFunc(days, time.Time.Compare)
	return days, nil
}

// DropEventPartitionsBefore deletes, for retention, every daily partition
// of the events table that ends at or before t (so none that holds a
// moment at or after t), with its rows, and returns how many it dropped.
// The default partition and the rollups are never touched. Each partition
// is detached and dropped in a transaction of its own; waiting for the
// table lock is bounded (5s), and on timeout the error is returned and the
// remaining partitions stay for the next call.
func (db *DB) DropEventPartitionsBefore(ctx context.Context, t time.Time) (int, error) {
	days, err := db.EventPartitions(ctx)
	if err != nil {
		return 0, err
	}
	dropped := 0
	for _, d := range days {
		if d.Add(24 * time.Hour).After(t) {
			break
		}
		name := pgx.Identifier{partitionNameOf(d)}.Sanitize()
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", partitionLockTimeout.Milliseconds())); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `ALTER TABLE events DETACH PARTITION `+name); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DROP TABLE `+name)
			return err
		})
		if err != nil {
			return dropped, fmt.Errorf("postgres: drop event partition %s: %w", partitionNameOf(d), err)
		}
		dropped++
	}
	return dropped, nil
}

// partitionNameOf names the partition of day d.
func partitionNameOf(d time.Time) string {
	return fmt.Sprintf("events_y%04dm%02dd%02d", d.Year(), d.Month(), d.Day())
}
