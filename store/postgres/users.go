package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/auth"
)

const userColumns = `id, email, role, tier, display_name, preferences, settings, created_at, updated_at`

// CreateAccount implements auth.UserStore: the user, its starting tier and
// its identity in one transaction.
func (db *DB) CreateAccount(ctx context.Context, a auth.NewAccount) error {
	u := a.User
	var hash *string
	if a.PasswordHash != "" {
		hash = &a.PasswordHash
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO users (`+userColumns+`, password_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			u.ID, u.Email, string(u.Role), u.Tier, u.Profile.DisplayName, u.Profile.Preferences, u.Profile.Settings,
			u.CreatedAt, u.UpdatedAt, hash)
		b.Queue(`INSERT INTO user_tier_changes (user_id, tier, effective_at) VALUES ($1, $2, $3)`, u.ID, u.Tier, u.CreatedAt)
		if id := a.Identity; id != nil {
			b.Queue(`INSERT INTO identities (issuer, subject, user_id, provider, email, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
				id.Issuer, id.Subject, u.ID, id.Provider, id.Email, id.CreatedAt)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	return translate(err, nil)
}

// UserByID implements auth.UserStore.
func (db *DB) UserByID(ctx context.Context, id uuid.UUID) (auth.User, error) {
	return scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

// UserByEmail implements auth.UserStore.
func (db *DB) UserByEmail(ctx context.Context, email string) (auth.User, error) {
	return scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
}

func scanUser(row pgx.Row) (auth.User, error) {
	var u auth.User
	err := row.Scan(&u.ID, &u.Email, &u.Role, &u.Tier, &u.Profile.DisplayName, &u.Profile.Preferences,
		&u.Profile.Settings, &u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		return auth.User{}, translate(err, auth.ErrUserNotFound)
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, nil
}

// PasswordHash implements auth.UserStore.
func (db *DB) PasswordHash(ctx context.Context, id uuid.UUID) (string, error) {
	var hash *string
	if err := db.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, id).Scan(&hash); err != nil {
		return "", translate(err, auth.ErrUserNotFound)
	}
	if hash == nil {
		return "", auth.ErrNoPassword
	}
	return *hash, nil
}

// SetPasswordHash implements auth.UserStore.
func (db *DB) SetPasswordHash(ctx context.Context, id uuid.UUID, hash string, now time.Time) error {
	_, err := scanUser(db.pool.QueryRow(ctx,
		`UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1 RETURNING `+userColumns, id, hash, utc(now)))
	return err
}

// UpdateProfile implements auth.UserStore.
func (db *DB) UpdateProfile(ctx context.Context, id uuid.UUID, p auth.Profile, now time.Time) (auth.User, error) {
	return scanUser(db.pool.QueryRow(ctx,
		`UPDATE users SET display_name = $2, preferences = $3, settings = $4, updated_at = $5 WHERE id = $1 RETURNING `+userColumns,
		id, p.DisplayName, p.Preferences, p.Settings, utc(now)))
}

// SetRole implements auth.UserStore.
func (db *DB) SetRole(ctx context.Context, id uuid.UUID, role auth.Role, now time.Time) (auth.User, error) {
	return scanUser(db.pool.QueryRow(ctx,
		`UPDATE users SET role = $2, updated_at = $3 WHERE id = $1 RETURNING `+userColumns, id, string(role), utc(now)))
}

// SetTier implements auth.UserStore: the user's tier and its history in
// one statement.
func (db *DB) SetTier(ctx context.Context, c auth.TierChange) (auth.User, error) {
	var changedBy *uuid.UUID
	if c.ChangedBy != uuid.Nil {
		changedBy = &c.ChangedBy
	}
	return scanUser(db.pool.QueryRow(ctx, `
		WITH u AS (
			UPDATE users SET tier = $2, updated_at = $3 WHERE id = $1 RETURNING `+userColumns+`
		), h AS (
			INSERT INTO user_tier_changes (user_id, tier, effective_at, changed_by)
			SELECT id, $2, $3, $4 FROM u
		)
		SELECT `+userColumns+` FROM u`,
		c.UserID, c.Tier, utc(c.EffectiveAt), changedBy))
}

// TierAt implements auth.UserStore.
func (db *DB) TierAt(ctx context.Context, id uuid.UUID, at time.Time) (string, error) {
	var tier *string
	err := db.pool.QueryRow(ctx, `
		SELECT COALESCE(
			(SELECT tier FROM user_tier_changes WHERE user_id = $1 AND effective_at <= $2
			 ORDER BY effective_at DESC, id DESC LIMIT 1),
			(SELECT tier FROM user_tier_changes WHERE user_id = $1 ORDER BY effective_at, id LIMIT 1))`,
		id, at).Scan(&tier)
	if err != nil {
		return "", translate(err, nil)
	}
	if tier == nil {
		return "", auth.ErrUserNotFound
	}
	return *tier, nil
}

func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

var errRotationRaced = errors.New("postgres: refresh token rotation raced; retry")
