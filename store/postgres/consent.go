package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/auth"
)

var _ auth.ConsentStore = (*DB)(nil)

const consentColumns = `id, user_id, policy_version, purposes, do_not_sell, gpc, source, recorded_at`

// AppendConsent implements auth.ConsentStore. The table refuses updates
// (a trigger), so a history is append-only even for code with SQL access.
// It returns auth.ErrUserNotFound for an unknown user.
func (db *DB) AppendConsent(ctx context.Context, r auth.ConsentRecord) (auth.ConsentRecord, error) {
	purposes, err := json.Marshal(orEmpty(r.Purposes))
	if err != nil {
		return auth.ConsentRecord{}, err
	}
	row := db.pool.QueryRow(ctx, `
		INSERT INTO consent_records (user_id, policy_version, purposes, do_not_sell, gpc, source, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+consentColumns,
		r.UserID, r.PolicyVersion, purposes, r.DoNotSell, r.GPC, r.Source, utc(r.RecordedAt))
	out, err := scanConsent(row)
	if err != nil {
		return auth.ConsentRecord{}, fmt.Errorf("postgres: append consent: %w", translate(err, nil))
	}
	return out, nil
}

// CurrentConsent implements auth.ConsentStore.
func (db *DB) CurrentConsent(ctx context.Context, user uuid.UUID) (auth.ConsentRecord, error) {
	row := db.pool.QueryRow(ctx, `SELECT `+consentColumns+` FROM consent_records WHERE user_id = $1 ORDER BY id DESC LIMIT 1`, user)
	r, err := scanConsent(row)
	if err != nil {
		return auth.ConsentRecord{}, translate(err, auth.ErrConsentNotFound)
	}
	return r, nil
}

// ConsentHistory implements auth.ConsentStore.
func (db *DB) ConsentHistory(ctx context.Context, user uuid.UUID) ([]auth.ConsentRecord, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+consentColumns+` FROM consent_records WHERE user_id = $1 ORDER BY id`, user)
	if err != nil {
		return nil, fmt.Errorf("postgres: consent history: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (auth.ConsentRecord, error) { return scanConsent(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: consent history: %w", err)
	}
	return out, nil
}

func scanConsent(row pgx.Row) (auth.ConsentRecord, error) {
	var r auth.ConsentRecord
	var purposes []byte
	if err := row.Scan(&r.ID, &r.UserID, &r.PolicyVersion, &purposes, &r.DoNotSell, &r.GPC, &r.Source, &r.RecordedAt); err != nil {
		return r, err
	}
	r.RecordedAt = r.RecordedAt.UTC()
	if err := json.Unmarshal(purposes, &r.Purposes); err != nil {
		return r, fmt.Errorf("postgres: consent purposes: %w", err)
	}
	return r, nil
}

func orEmpty[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}
