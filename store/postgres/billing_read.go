package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/store/internal/posting"
)

const topUpColumns = `id, advertiser_id, client_key, amount, currency, status, payment_id, refunded, disputed,
	created_at, updated_at, version`

func scanTopUp(row pgx.Row) (billing.TopUp, error) {
	var t billing.TopUp
	err := row.Scan(&t.ID, &t.Advertiser, &t.ClientKey, &t.Amount, &t.Currency, &t.Status, &t.PaymentID,
		&t.Refunded, &t.Disputed, &t.CreatedAt, &t.UpdatedAt, &t.Version)
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return t, err
}

// topUpWhere returns the top-up where cond holds, or ErrTopUpNotFound.
func (db *DB) topUpWhere(ctx context.Context, cond string, args ...any) (billing.TopUp, error) {
	t, err := scanTopUp(db.pool.QueryRow(ctx, `SELECT `+topUpColumns+` FROM billing_topups WHERE `+cond, args...))
	if err != nil {
		return billing.TopUp{}, translate(err, billing.ErrTopUpNotFound)
	}
	return t, nil
}

// TopUp implements billing.Store.
func (db *DB) TopUp(ctx context.Context, id uuid.UUID) (billing.TopUp, error) {
	return db.topUpWhere(ctx, `id = $1`, id)
}

// TopUpByClientKey implements billing.Store.
func (db *DB) TopUpByClientKey(ctx context.Context, advertiser uuid.UUID, key string) (billing.TopUp, error) {
	return db.topUpWhere(ctx, `advertiser_id = $1 AND client_key = $2`, advertiser, key)
}

// TopUpByPayment implements billing.Store; the empty id names none.
func (db *DB) TopUpByPayment(ctx context.Context, paymentID string) (billing.TopUp, error) {
	return db.topUpWhere(ctx, `payment_id = $1 AND payment_id <> ''`, paymentID)
}

// TopUpsSince implements billing.Store: newest (by id, a UUIDv7) first.
func (db *DB) TopUpsSince(ctx context.Context, advertiser uuid.UUID, since time.Time) ([]billing.TopUp, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+topUpColumns+` FROM billing_topups
		WHERE advertiser_id = $1 AND created_at >= $2 ORDER BY id DESC`, advertiser, since.UTC())
	if err != nil {
		return nil, fmt.Errorf("postgres: top-ups: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (billing.TopUp, error) { return scanTopUp(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: top-ups: %w", err)
	}
	return out, nil
}

const payoutColumns = `id, owner_id, amount, currency, status, manual, scheduled, destination_sealed, transfer_id,
	attempts, last_error, created_at, updated_at, version`

func (db *DB) scanPayout(row pgx.Row) (billing.Payout, error) {
	var p billing.Payout
	var dest []byte
	if err := row.Scan(&p.ID, &p.Owner, &p.Amount, &p.Currency, &p.Status, &p.Manual, &p.Scheduled, &dest,
		&p.TransferID, &p.Attempts, &p.LastError, &p.CreatedAt, &p.UpdatedAt, &p.Version); err != nil {
		return billing.Payout{}, err
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	var err error
	if p.Destination, err = db.openOptional(purposePayoutDestination, p.ID.String(), dest); err != nil {
		return billing.Payout{}, fmt.Errorf("postgres: payout %s: destination: %w", p.ID, err)
	}
	return p, nil
}

// Payout implements billing.Store.
func (db *DB) Payout(ctx context.Context, id uuid.UUID) (billing.Payout, error) {
	p, err := db.scanPayout(db.pool.QueryRow(ctx, `SELECT `+payoutColumns+` FROM billing_payouts WHERE id = $1`, id))
	if err != nil {
		return billing.Payout{}, translate(err, billing.ErrPayoutNotFound)
	}
	return p, nil
}

// Payouts implements billing.Store: newest (by id, a UUIDv7) first.
func (db *DB) Payouts(ctx context.Context, f billing.PayoutFilter) ([]billing.Payout, error) {
	cond, args := `true`, []any{}
	add := func(c string, v any) {
		args = append(args, v)
		cond += ` AND ` + c + strconv.Itoa(len(args))
	}
	if f.Owner != uuid.Nil {
		add(`owner_id = $`, f.Owner)
	}
	if f.Status != "" {
		add(`status = $`, string(f.Status))
	}
	if f.Before != uuid.Nil {
		add(`id < $`, f.Before)
	}
	rows, err := db.pool.Query(ctx, `SELECT `+payoutColumns+` FROM billing_payouts WHERE `+cond+
		` ORDER BY id DESC LIMIT `+strconv.Itoa(posting.PageSize(f.Limit)), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: payouts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (billing.Payout, error) { return db.scanPayout(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: payouts: %w", err)
	}
	return out, nil
}

const payeeColumns = `owner_id, account_sealed, account_owner, payouts_enabled, transfers_enabled, details_submitted,
	requirements_due, disabled_reason, created_at, updated_at, event_at, version`

// payeeWhere returns the payee where cond holds, or ErrPayeeNotFound.
func (db *DB) payeeWhere(ctx context.Context, r *keyring.Ring, cond string, args ...any) (billing.Payee, error) {
	var p billing.Payee
	var sealed []byte
	var eventAt pgtype.Timestamptz
	err := db.pool.QueryRow(ctx, `SELECT `+payeeColumns+` FROM billing_payees WHERE `+cond, args...).Scan(
		&p.Owner, &sealed, &p.ConnectedAccount.Owner, &p.PayoutsEnabled, &p.TransfersEnabled, &p.DetailsSubmitted,
		&p.RequirementsDue, &p.DisabledReason, &p.CreatedAt, &p.UpdatedAt, &eventAt, &p.Version)
	if err != nil {
		return billing.Payee{}, translate(err, billing.ErrPayeeNotFound)
	}
	if p.ID, err = r.OpenString(purposeConnectedAccount, p.Owner.String(), sealed); err != nil {
		return billing.Payee{}, fmt.Errorf("postgres: payee %s: connected account: %w", p.Owner, err)
	}
	if len(p.RequirementsDue) == 0 {
		p.RequirementsDue = nil
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	if eventAt.Valid {
		p.EventAt = eventAt.Time.UTC()
	}
	return p, nil
}

// Payee implements billing.Store; it needs Config.Keyring.
func (db *DB) Payee(ctx context.Context, owner uuid.UUID) (billing.Payee, error) {
	r, err := db.ring()
	if err != nil {
		return billing.Payee{}, err
	}
	return db.payeeWhere(ctx, r, `owner_id = $1`, owner)
}

// PayeeByAccountID implements billing.Store by the account id's blind
// index; it needs Config.Keyring.
func (db *DB) PayeeByAccountID(ctx context.Context, accountID string) (billing.Payee, error) {
	r, err := db.ring()
	if err != nil {
		return billing.Payee{}, err
	}
	return db.payeeWhere(ctx, r, `account_index = $1`, r.IndexString(purposeConnectedAccount, accountID))
}

// Holds implements billing.Store: newest (last created) first.
func (db *DB) Holds(ctx context.Context, owner uuid.UUID) ([]billing.Hold, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, owner_id, reason, note, until, created_at, released_at, released_by, version
		FROM billing_holds WHERE owner_id = $1 ORDER BY seq DESC`, owner)
	if err != nil {
		return nil, fmt.Errorf("postgres: holds: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (billing.Hold, error) {
		var h billing.Hold
		var until, released pgtype.Timestamptz
		var by pgtype.UUID
		err := r.Scan(&h.ID, &h.Owner, &h.Reason, &h.Note, &until, &h.CreatedAt, &released, &by, &h.Version)
		h.CreatedAt = h.CreatedAt.UTC()
		if until.Valid {
			h.Until = until.Time.UTC()
		}
		if released.Valid {
			h.ReleasedAt = released.Time.UTC()
		}
		if by.Valid {
			h.ReleasedBy = by.Bytes
		}
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: holds: %w", err)
	}
	return out, nil
}
