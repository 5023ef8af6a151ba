package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/billing"
)

var _ billing.Store = (*DB)(nil)

// sealedWrite is what a Write stores sealed, sealed before its database
// transaction begins (so that a missing keyring fails before anything is
// written).
type sealedWrite struct {
	destination  []byte // the payout's
	account      []byte // the payee's connected account
	accountIndex []byte
}

// seal seals w's sensitive values.
func (db *DB) seal(w billing.Write) (sealedWrite, error) {
	var s sealedWrite
	var err error
	if p := w.Payout; p != nil {
		if s.destination, err = db.sealOptional(purposePayoutDestination, p.ID.String(), p.Destination); err != nil {
			return s, err
		}
	}
	if p := w.Payee; p != nil {
		r, err := db.ring()
		if err != nil {
			return s, err
		}
		if s.account, err = r.SealString(purposeConnectedAccount, p.Owner.String(), p.ID); err != nil {
			return s, err
		}
		s.accountIndex = r.IndexString(purposeConnectedAccount, p.ID)
	}
	return s, nil
}

// Apply implements billing.Store in one database transaction: the event
// is checked (and locked), the records written while their versions
// match, the transactions posted, and the event and the done keys marked;
// any error rolls all of it back.
func (db *DB) Apply(ctx context.Context, w billing.Write) error {
	sealed, err := db.seal(w)
	if err != nil {
		return err
	}
	now := db.Now().UTC()
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if w.Processed != "" {
			var processed bool
			err := tx.QueryRow(ctx, `SELECT processed_at IS NOT NULL FROM billing_events WHERE id = $1 FOR UPDATE`, w.Processed).Scan(&processed)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				return billing.ErrEventNotFound
			case err != nil:
				return fmt.Errorf("postgres: apply: %w", err)
			case processed:
				return billing.ErrAlreadyApplied
			}
		}
		if err := writeRecords(ctx, tx, w, sealed); err != nil {
			return err
		}
		for _, t := range w.Post {
			if _, _, err := post(ctx, tx, t); err != nil {
				return err
			}
		}
		if w.Processed != "" {
			if _, err := tx.Exec(ctx, `UPDATE billing_events SET processed_at = $2 WHERE id = $1`, w.Processed, now); err != nil {
				return fmt.Errorf("postgres: apply: %w", err)
			}
		}
		if len(w.Done) > 0 {
			_, err := tx.Exec(ctx, `INSERT INTO billing_done (key, done_at) SELECT k, $2 FROM unnest($1::text[]) AS k
				ON CONFLICT DO NOTHING`, w.Done, now)
			if err != nil {
				return fmt.Errorf("postgres: apply: %w", err)
			}
		}
		return nil
	})
}

// The statements of writeRecords. Each creates its record when the
// version given is 0 ($v; ON CONFLICT DO NOTHING: a record that exists is
// a conflict) and otherwise replaces it while the stored version is $v;
// the stored version is then $v + 1. They affect one row, or none on a
// version conflict.
const (
	upsertTopUpSQL = `
	WITH ins AS (
		INSERT INTO billing_topups (id, advertiser_id, client_key, amount, currency, status, payment_id, refunded,
			disputed, created_at, updated_at, version)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1 WHERE $12::bigint = 0
		ON CONFLICT DO NOTHING RETURNING 1
	), upd AS (
		UPDATE billing_topups SET advertiser_id = $2, client_key = $3, amount = $4, currency = $5, status = $6,
			payment_id = $7, refunded = $8, disputed = $9, created_at = $10, updated_at = $11, version = $12 + 1
		WHERE id = $1 AND version = $12 AND $12::bigint <> 0 RETURNING 1
	) SELECT count(*) FROM (SELECT * FROM ins UNION ALL SELECT * FROM upd) n`
	upsertPayoutSQL = `
	WITH ins AS (
		INSERT INTO billing_payouts (id, owner_id, amount, currency, status, manual, scheduled, destination_sealed,
			transfer_id, attempts, last_error, created_at, updated_at, version)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1 WHERE $14::bigint = 0
		ON CONFLICT (id) DO NOTHING RETURNING 1
	), upd AS (
		UPDATE billing_payouts SET owner_id = $2, amount = $3, currency = $4, status = $5, manual = $6, scheduled = $7,
			destination_sealed = $8, transfer_id = $9, attempts = $10, last_error = $11, created_at = $12,
			updated_at = $13, version = $14 + 1
		WHERE id = $1 AND version = $14 AND $14::bigint <> 0 RETURNING 1
	) SELECT count(*) FROM (SELECT * FROM ins UNION ALL SELECT * FROM upd) n`
	upsertPayeeSQL = `
	WITH ins AS (
		INSERT INTO billing_payees (owner_id, account_sealed, account_index, account_owner, payouts_enabled,
			transfers_enabled, details_submitted, requirements_due, disabled_reason, created_at, updated_at, event_at, version)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1 WHERE $13::bigint = 0
		ON CONFLICT DO NOTHING RETURNING 1
	), upd AS (
		UPDATE billing_payees SET account_sealed = $2, account_index = $3, account_owner = $4, payouts_enabled = $5,
			transfers_enabled = $6, details_submitted = $7, requirements_due = $8, disabled_reason = $9,
			created_at = $10, updated_at = $11, event_at = $12, version = $13 + 1
		WHERE owner_id = $1 AND version = $13 AND $13::bigint <> 0 RETURNING 1
	) SELECT count(*) FROM (SELECT * FROM ins UNION ALL SELECT * FROM upd) n`
	upsertHoldSQL = `
	WITH ins AS (
		INSERT INTO billing_holds (id, owner_id, reason, note, until, created_at, released_at, released_by, version)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, 1 WHERE $9::bigint = 0
		ON CONFLICT DO NOTHING RETURNING 1
	), upd AS (
		UPDATE billing_holds SET owner_id = $2, reason = $3, note = $4, until = $5, created_at = $6,
			released_at = $7, released_by = $8, version = $9 + 1
		WHERE id = $1 AND version = $9 AND $9::bigint <> 0 RETURNING 1
	) SELECT count(*) FROM (SELECT * FROM ins UNION ALL SELECT * FROM upd) n`
)

// writeRecords writes w's records in tx; ErrVersionConflict when one
// changed meanwhile (or exists, for one created).
func writeRecords(ctx context.Context, tx pgx.Tx, w billing.Write, s sealedWrite) error {
	type write struct {
		sql  string
		args []any
	}
	var writes []write
	if t := w.TopUp; t != nil {
		writes = append(writes, write{upsertTopUpSQL, []any{t.ID, t.Advertiser, t.ClientKey, t.Amount, string(t.Currency),
			string(t.Status), t.PaymentID, t.Refunded, t.Disputed, t.CreatedAt.UTC(), t.UpdatedAt.UTC(), t.Version}})
	}
	if p := w.Payout; p != nil {
		writes = append(writes, write{upsertPayoutSQL, []any{p.ID, p.Owner, p.Amount, string(p.Currency), string(p.Status),
			p.Manual, p.Scheduled, s.destination, p.TransferID, p.Attempts, p.LastError, p.CreatedAt.UTC(), p.UpdatedAt.UTC(), p.Version}})
	}
	if p := w.Payee; p != nil {
		due := p.RequirementsDue
		if due == nil {
			due = []string{}
		}
		writes = append(writes, write{upsertPayeeSQL, []any{p.Owner, s.account, s.accountIndex, p.ConnectedAccount.Owner,
			p.PayoutsEnabled, p.TransfersEnabled, p.DetailsSubmitted, due, p.DisabledReason, p.CreatedAt.UTC(),
			p.UpdatedAt.UTC(), nullTime(p.EventAt), p.Version}})
	}
	if h := w.Hold; h != nil {
		writes = append(writes, write{upsertHoldSQL, []any{h.ID, h.Owner, string(h.Reason), h.Note, nullTime(h.Until),
			h.CreatedAt.UTC(), nullTime(h.ReleasedAt), nullUUID(h.ReleasedBy), h.Version}})
	}
	for _, wr := range writes {
		var n int
		if err := tx.QueryRow(ctx, wr.sql, wr.args...).Scan(&n); err != nil {
			return translate(err, nil)
		}
		if n != 1 {
			return billing.ErrVersionConflict
		}
	}
	return nil
}

// Done implements billing.Store.
func (db *DB) Done(ctx context.Context, key string) (bool, error) {
	var done bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM billing_done WHERE key = $1)`, key).Scan(&done); err != nil {
		return false, fmt.Errorf("postgres: done: %w", err)
	}
	return done, nil
}

// DoneKeys implements billing.Store.
func (db *DB) DoneKeys(ctx context.Context, keys []string) (map[string]bool, error) {
	rows, err := db.pool.Query(ctx, `SELECT key FROM billing_done WHERE key = ANY($1::text[])`, keys)
	if err != nil {
		return nil, fmt.Errorf("postgres: done keys: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: done keys: %w", err)
	}
	out := make(map[string]bool, len(done))
	for _, k := range done {
		out[k] = true
	}
	return out, nil
}
