package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/privacy"
)

var _ privacy.Store = (*DB)(nil)

// purposeExportBundle seals export bundles (row id: the export's id).
const purposeExportBundle = "privacy.export_bundle"

const exportColumns = `id, user_id, requested_by, status, created_at, ready_at, expires_at, downloaded_at, size`

func scanExport(row pgx.Row) (privacy.Export, error) {
	var e privacy.Export
	var status string
	var ready, expires, downloaded *time.Time
	if err := row.Scan(&e.ID, &e.User, &e.RequestedBy, &status, &e.CreatedAt, &ready, &expires, &downloaded, &e.Size); err != nil {
		return privacy.Export{}, translate(err, privacy.ErrExportNotFound)
	}
	e.Status = privacy.ExportStatus(status)
	e.CreatedAt = e.CreatedAt.UTC()
	if ready != nil {
		e.ReadyAt = ready.UTC()
	}
	if expires != nil {
		e.ExpiresAt = expires.UTC()
	}
	if downloaded != nil {
		e.DownloadedAt = downloaded.UTC()
	}
	return e, nil
}

// CreateExport implements privacy.Store: the unique index on pending
// exports makes a second request at once get the first.
func (db *DB) CreateExport(ctx context.Context, e privacy.Export) (privacy.Export, bool, error) {
	tag, err := db.pool.Exec(ctx, `INSERT INTO privacy_exports (id, user_id, requested_by, status, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) WHERE status = 'pending' DO NOTHING`,
		e.ID, e.User, e.RequestedBy, string(e.Status), e.CreatedAt)
	if err != nil {
		return privacy.Export{}, false, fmt.Errorf("postgres: create export: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return e, true, nil
	}
	got, err := scanExport(db.pool.QueryRow(ctx, `SELECT `+exportColumns+` FROM privacy_exports WHERE user_id = $1 AND status = 'pending'`, e.User))
	if errors.Is(err, privacy.ErrExportNotFound) { // finished in between: try once more
		return db.CreateExport(ctx, e)
	}
	return got, false, err
}

// Export implements privacy.Store.
func (db *DB) Export(ctx context.Context, id uuid.UUID) (privacy.Export, error) {
	return scanExport(db.pool.QueryRow(ctx, `SELECT `+exportColumns+` FROM privacy_exports WHERE id = $1`, id))
}

// LatestExport implements privacy.Store.
func (db *DB) LatestExport(ctx context.Context, user uuid.UUID) (privacy.Export, error) {
	return scanExport(db.pool.QueryRow(ctx, `SELECT `+exportColumns+` FROM privacy_exports WHERE user_id = $1 ORDER BY id DESC LIMIT 1`, user))
}

// CompleteExport implements privacy.Store; the bundle is sealed when the
// DB has a keyring.
func (db *DB) CompleteExport(ctx context.Context, id uuid.UUID, bundle []byte, now, expires time.Time) error {
	stored, sealed := bundle, false
	if r := db.cfg.Keyring; r != nil {
		var err error
		if stored, err = r.SealString(purposeExportBundle, id.String(), string(bundle)); err != nil {
			return err
		}
		sealed = true
	}
	tag, err := db.pool.Exec(ctx, `UPDATE privacy_exports SET status = 'ready', ready_at = $2, expires_at = $3, size = $4, bundle = $5, sealed = $6
		WHERE id = $1 AND status = 'pending'`, id, now, expires, int64(len(bundle)), stored, sealed)
	if err != nil {
		return fmt.Errorf("postgres: complete export: %w", err)
	}
	if tag.RowsAffected() == 0 {
		_, err := db.Export(ctx, id)
		return err // nil: not pending any more (a second run)
	}
	return nil
}

// FailExport implements privacy.Store.
func (db *DB) FailExport(ctx context.Context, id uuid.UUID, now time.Time) error {
	_, err := db.pool.Exec(ctx, `UPDATE privacy_exports SET status = 'failed' WHERE id = $1 AND status = 'pending'`, id)
	return err
}

// TakeExportBundle implements privacy.Store: one UPDATE takes the bundle
// and clears it, so that two downloads at once cannot both get it.
func (db *DB) TakeExportBundle(ctx context.Context, id uuid.UUID, now time.Time) (privacy.Export, []byte, error) {
	var stored []byte
	var sealed bool
	var e privacy.Export
	expired := false
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		e, err = scanExport(tx.QueryRow(ctx, `SELECT `+exportColumns+` FROM privacy_exports WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		switch {
		case e.Status == privacy.ExportDownloaded:
			return privacy.ErrExportGone
		case e.Status != privacy.ExportReady:
			return privacy.ErrExportNotReady
		case !now.Before(e.ExpiresAt):
			expired = true // committed: the expired bundle goes
			_, err := tx.Exec(ctx, `UPDATE privacy_exports SET bundle = NULL WHERE id = $1`, id)
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT bundle, sealed FROM privacy_exports WHERE id = $1`, id).Scan(&stored, &sealed); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE privacy_exports SET status = 'downloaded', downloaded_at = $2, bundle = NULL WHERE id = $1`, id, now)
		return err
	})
	if err != nil {
		return privacy.Export{}, nil, err
	}
	if expired {
		return privacy.Export{}, nil, privacy.ErrExportGone
	}
	e.Status, e.DownloadedAt = privacy.ExportDownloaded, now.UTC()
	if !sealed {
		return e, stored, nil
	}
	plain, err := db.openOptional(purposeExportBundle, id.String(), stored)
	return e, []byte(plain), err
}

const erasureColumns = `id, user_id, pseudonym, by_admin, status, steps, created_at, finished_at`

func scanErasure(row pgx.Row) (privacy.Erasure, error) {
	var e privacy.Erasure
	var user *uuid.UUID
	var status string
	var finished *time.Time
	if err := row.Scan(&e.ID, &user, &e.Pseudonym, &e.ByAdmin, &status, &e.Steps, &e.CreatedAt, &finished); err != nil {
		return privacy.Erasure{}, translate(err, privacy.ErrErasureNotFound)
	}
	if user != nil {
		e.User = *user
	}
	e.Status = privacy.ErasureStatus(status)
	e.CreatedAt = e.CreatedAt.UTC()
	if finished != nil {
		e.FinishedAt = finished.UTC()
	}
	return e, nil
}

// CreateErasure implements privacy.Store.
func (db *DB) CreateErasure(ctx context.Context, e privacy.Erasure) (privacy.Erasure, bool, error) {
	tag, err := db.pool.Exec(ctx, `INSERT INTO privacy_erasures (id, user_id, pseudonym, by_admin, status, created_at)
		VALUES ($1, $2, $3, $4, 'pending', $5) ON CONFLICT (user_id) WHERE status = 'pending' DO NOTHING`,
		e.ID, e.User, e.Pseudonym, e.ByAdmin, e.CreatedAt)
	if err != nil {
		return privacy.Erasure{}, false, fmt.Errorf("postgres: create erasure: %w", err)
	}
	if tag.RowsAffected() == 1 {
		e.Status = privacy.ErasurePending
		return e, true, nil
	}
	got, err := scanErasure(db.pool.QueryRow(ctx, `SELECT `+erasureColumns+` FROM privacy_erasures WHERE user_id = $1 AND status = 'pending'`, e.User))
	return got, false, err
}

// Erasure implements privacy.Store.
func (db *DB) Erasure(ctx context.Context, id uuid.UUID) (privacy.Erasure, error) {
	return scanErasure(db.pool.QueryRow(ctx, `SELECT `+erasureColumns+` FROM privacy_erasures WHERE id = $1`, id))
}

// ErasureStepDone implements privacy.Store.
func (db *DB) ErasureStepDone(ctx context.Context, id uuid.UUID, step string) error {
	tag, err := db.pool.Exec(ctx, `UPDATE privacy_erasures SET steps = steps || $2::text
		WHERE id = $1 AND NOT ($2 = ANY (steps))`, id, step)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		_, err := db.Erasure(ctx, id)
		return err
	}
	return nil
}

// FinishErasure implements privacy.Store.
func (db *DB) FinishErasure(ctx context.Context, id uuid.UUID, now time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE privacy_erasures SET status = 'done', user_id = NULL, finished_at = $2 WHERE id = $1`, id, now)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return privacy.ErrErasureNotFound
	}
	return nil
}

// UserRecords implements privacy.Store: the events about the user's space
// or with the user as viewer, and the user's ledger entries with their
// transactions' kind, memo and time.
func (db *DB) UserRecords(ctx context.Context, user uuid.UUID, limit int) (map[string][]json.RawMessage, error) {
	out := map[string][]json.RawMessage{}
	for name, q := range map[string]string{
		"events": `SELECT to_jsonb(e) FROM events e WHERE owner_id = $1 OR viewer_id = $1 ORDER BY issued_at DESC LIMIT $2`,
		"ledger_entries": `SELECT to_jsonb(x) FROM (SELECT e.tx_id, e.seq, e.account_id, e.side, e.amount, e.posted_at,
			t.kind, t.memo, t.effective_at FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.tx_id
			WHERE e.user_id = $1 ORDER BY e.posted_at DESC, e.tx_id, e.seq LIMIT $2) x`,
	} {
		rows, err := db.pool.Query(ctx, q, user, limit)
		if err != nil {
			return nil, fmt.Errorf("postgres: user records %s: %w", name, err)
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (json.RawMessage, error) {
			var raw json.RawMessage
			err := r.Scan(&raw)
			return raw, err
		})
		if err != nil {
			return nil, fmt.Errorf("postgres: user records %s: %w", name, err)
		}
		out[name] = append([]json.RawMessage{}, list...)
	}
	return out, nil
}

// erasureSkipped are the tables EraseUser's rename leaves alone: the
// erasures (which name their user until done) and the migrations' log.
var erasureSkipped = map[string]bool{"privacy_erasures": true, "goose_db_version": true}

// EraseUser implements privacy.Store, in one transaction. It deletes the
// account (the foreign keys' cascades take the ad space, ad content,
// sessions and refresh tokens, identities and tier history), the payee
// record and the user's exports; clears the viewer of the events where the
// user was one, the destination of the user's payouts, the notes of the
// user's holds, and the client address, user agent and details of audit
// entries by or about the user (adshare.erasure lets the audit log's
// trigger allow it, migration 00012). Then it walks the catalog: every
// uuid, text, jsonb and text[] column of every table in the schema (but
// erasureSkipped) that still names the user gets the pseudonym instead,
// which keeps the ledger (accounts, entries, transaction keys) balanced
// under an id linked to nothing, and the rollups, payouts, top-ups, holds
// and audit entries whole. A table added later is covered without a
// change here.
func (db *DB) EraseUser(ctx context.Context, user, pseudonym uuid.UUID) error {
	id, alias := user.String(), pseudonym.String()
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		for _, q := range []string{
			`SELECT set_config('adshare.erasure', 'on', true)`,
			`UPDATE audit_events SET ip = '', ip_sealed = NULL, user_agent = '', details = '{}'
				WHERE actor_id = $1::uuid OR target_id = $1::text`,
			`UPDATE events SET viewer_id = NULL, viewer_key = '', user_agent = '', client_prefix = '' WHERE viewer_id = $1::uuid`,
			`DELETE FROM billing_payees WHERE owner_id = $1::uuid`,
			`UPDATE billing_payouts SET destination_sealed = NULL WHERE owner_id = $1::uuid`,
			`UPDATE billing_holds SET note = '' WHERE owner_id = $1::uuid`,
			`DELETE FROM privacy_exports WHERE user_id = $1::uuid OR requested_by = $1::uuid`,
			`DELETE FROM users WHERE id = $1::uuid`,
		} {
			args := []any{id}
			if q[0] == 'S' {
				args = nil
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return fmt.Errorf("postgres: erase user: %w", err)
			}
		}
		cols, err := personalColumns(ctx, tx)
		if err != nil {
			return err
		}
		for _, c := range cols {
			if erasureSkipped[c.table] {
				continue
			}
			t, col := pgx.Identifier{c.table}.Sanitize(), pgx.Identifier{c.column}.Sanitize()
			var q string
			args := []any{id, alias}
			switch c.typ {
			case "uuid":
				q = `UPDATE ` + t + ` SET ` + col + ` = $2::uuid WHERE ` + col + ` = $1::uuid`
			case "_uuid":
				q = `UPDATE ` + t + ` SET ` + col + ` = array_replace(` + col + `, $1::uuid, $2::uuid) WHERE $1::uuid = ANY (` + col + `)`
			case "text", "varchar", "bpchar":
				q = `UPDATE ` + t + ` SET ` + col + ` = replace(` + col + `, $1, $2) WHERE strpos(` + col + `, $1) > 0`
			default: // jsonb, json, text[], varchar[]: through their text form
				q = `UPDATE ` + t + ` SET ` + col + ` = replace(` + col + `::text, $1, $2)::` + c.cast + ` WHERE strpos(` + col + `::text, $1) > 0`
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return fmt.Errorf("postgres: erase user: pseudonymise %s.%s: %w", c.table, c.column, err)
			}
		}
		return nil
	})
}

// personalColumn is a column that can hold a user's id.
type personalColumn struct{ table, column, typ, cast string }

// personalColumns lists the uuid, text, json and array columns of every
// ordinary or partitioned table (not the partitions: updating the parent
// reaches them) of the current schema.
func personalColumns(ctx context.Context, tx pgx.Tx) ([]personalColumn, error) {
	rows, err := tx.Query(ctx, `SELECT c.relname, a.attname, t.typname, format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_type t ON t.oid = a.atttypid
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		  AND t.typname IN ('uuid', '_uuid', 'text', 'varchar', 'bpchar', 'json', 'jsonb', '_text', '_varchar')
		ORDER BY c.relname, a.attnum`)
	if err != nil {
		return nil, fmt.Errorf("postgres: erase user: list columns: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (personalColumn, error) {
		var c personalColumn
		err := r.Scan(&c.table, &c.column, &c.typ, &c.cast)
		return c, err
	})
}
