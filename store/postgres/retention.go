package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/retention"
)

var _ retention.Purger = (*DB)(nil)

// purgeBatch bounds the rows one retention statement touches, so that no
// purge holds long locks or writes a huge transaction.
const purgeBatch = 5000

// Purge implements retention.Purger:
//
//   - raw events: the daily partitions that end at or before the cutoff
//     are dropped whole (DropEventPartitionsBefore); older rows in the
//     default partition are deleted. Rollups stay.
//   - audit: events older than the cutoff are deleted, in a transaction
//     that sets adshare.retention (the only way past the append-only
//     trigger; migration 11).
//   - sessions: sessions that ended (revoked, or past either expiry)
//     before the cutoff go, with their refresh tokens.
//   - IP addresses: sessions created and audit events recorded before the
//     cutoff lose their address (clear and sealed), events received
//     before it their client network.
//   - webhook payloads: processor events processed before the cutoff.
//   - exports: not kept by this store.
func (db *DB) Purge(ctx context.Context, cutoffs retention.Cutoffs) (retention.Result, error) {
	res := retention.Result{Purged: map[retention.Class]int64{}}
	if t, ok := cutoffs[retention.RawEvents]; ok && !t.IsZero() {
		n, err := db.DropEventPartitionsBefore(ctx, t)
		res.Partitions = n
		if err != nil {
			return res, err
		}
		if res.Purged[retention.RawEvents], err = db.purgeLoop(ctx, `
			DELETE FROM events_default WHERE ctid IN (SELECT ctid FROM events_default WHERE issued_at < $1 LIMIT $2)`, t); err != nil {
			return res, err
		}
	}
	if t, ok := cutoffs[retention.Audit]; ok && !t.IsZero() {
		var total int64
		for {
			var n int64
			err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SET LOCAL adshare.retention = 'on'`); err != nil {
					return err
				}
				tag, err := tx.Exec(ctx, `DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < $1 ORDER BY id LIMIT $2)`, t, purgeBatch)
				n = tag.RowsAffected()
				return err
			})
			if err != nil {
				return res, fmt.Errorf("postgres: purge audit: %w", err)
			}
			if total += n; n < purgeBatch {
				break
			}
		}
		res.Purged[retention.Audit] = total
	}
	type step struct {
		class retention.Class
		sql   string
	}
	steps := []step{
		{retention.Sessions, `
			DELETE FROM sessions WHERE id IN (SELECT id FROM sessions
			WHERE coalesce(revoked_at, least(idle_expires_at, absolute_expires_at)) < $1 LIMIT $2)`},
		{retention.IPAddresses, `
			UPDATE sessions SET ip = '', ip_sealed = NULL WHERE id IN (SELECT id FROM sessions
			WHERE created_at < $1 AND (ip <> '' OR ip_sealed IS NOT NULL) LIMIT $2)`},
		{retention.IPAddresses, `
			UPDATE audit_events SET ip = '', ip_sealed = NULL WHERE id IN (SELECT id FROM audit_events
			WHERE at < $1 AND (ip <> '' OR ip_sealed IS NOT NULL) ORDER BY id LIMIT $2)`},
		{retention.IPAddresses, `
			UPDATE events SET client_prefix = '' WHERE (issued_at, tracking_id, type, name) IN (
			SELECT issued_at, tracking_id, type, name FROM events WHERE received_at < $1 AND client_prefix <> '' LIMIT $2)`},
		{retention.WebhookPayloads, `
			DELETE FROM billing_events WHERE id IN (SELECT id FROM billing_events WHERE processed_at < $1 LIMIT $2)`},
	}
	for _, s := range steps {
		t, ok := cutoffs[s.class]
		if !ok || t.IsZero() {
			continue
		}
		n, err := db.purgeLoop(ctx, s.sql, t)
		res.Purged[s.class] += n
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// purgeLoop runs a batched statement ($1 the cutoff, $2 the batch size)
// until it touches fewer rows than a batch, and returns the rows touched.
func (db *DB) purgeLoop(ctx context.Context, sql string, cutoff time.Time) (int64, error) {
	var total int64
	for {
		tag, err := db.pool.Exec(ctx, sql, cutoff, purgeBatch)
		if err != nil {
			return total, fmt.Errorf("postgres: purge: %w", translate(err, nil))
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < purgeBatch {
			return total, nil
		}
	}
}
