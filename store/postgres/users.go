package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/auth"
)

const userColumns = `id, email, email_sealed, role, tier, display_name, display_name_sealed, preferences, settings, created_at, updated_at`

// CreateAccount implements auth.UserStore: the user, its starting tier and
// its identity in one transaction. With Config.Keyring the email and the
// display name are sealed and the email's blind index keeps it unique
// (an email still in the clear, in a row not yet resealed, is taken too).
func (db *DB) CreateAccount(ctx context.Context, a auth.NewAccount) error {
	u := a.User
	var hash *string
	if a.PasswordHash != "" {
		hash = &a.PasswordHash
	}
	emailSealed, email, err := db.sealPersonal(purposeEmail, u.ID.String(), u.Email)
	if err != nil {
		return err
	}
	nameSealed, name, err := db.sealPersonal(purposeDisplayName, u.ID.String(), u.Profile.DisplayName)
	if err != nil {
		return err
	}
	var (
		identitySealed []byte
		identityEmail  string
	)
	if id := a.Identity; id != nil {
		if identitySealed, identityEmail, err = db.sealPersonal(purposeIdentityEmail, identityRowID(id.Issuer, id.Subject), id.Email); err != nil {
			return err
		}
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if emailSealed != nil {
			var taken bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)`, u.Email).Scan(&taken); err != nil {
				return err
			}
			if taken {
				return auth.ErrEmailTaken
			}
		}
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO users (`+userColumns+`, email_index, password_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			u.ID, nullString(email), emailSealed, string(u.Role), u.Tier, name, nameSealed, u.Profile.Preferences, u.Profile.Settings,
			u.CreatedAt, u.UpdatedAt, db.emailIndex(u.Email), hash)
		b.Queue(`INSERT INTO user_tier_changes (user_id, tier, effective_at) VALUES ($1, $2, $3)`, u.ID, u.Tier, u.CreatedAt)
		if id := a.Identity; id != nil {
			b.Queue(`INSERT INTO identities (issuer, subject, user_id, provider, email, email_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				id.Issuer, id.Subject, u.ID, id.Provider, identityEmail, identitySealed, id.CreatedAt)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	return translate(err, nil)
}

// UserByID implements auth.UserStore.
func (db *DB) UserByID(ctx context.Context, id uuid.UUID) (auth.User, error) {
	return db.scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

// UserByEmail implements auth.UserStore: one lookup in the unique index of
// the email's blind index (or of the email itself, for a row not yet
// sealed), never a scan.
func (db *DB) UserByEmail(ctx context.Context, email string) (auth.User, error) {
	return db.scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email_index = $1 OR email = $2 LIMIT 1`,
		db.emailIndex(email), email))
}

// scanUser reads one row of userColumns and opens its sealed fields.
func (db *DB) scanUser(row pgx.Row) (auth.User, error) {
	var (
		u                       auth.User
		email                   *string
		emailSealed, nameSealed []byte
		name                    string
	)
	err := row.Scan(&u.ID, &email, &emailSealed, &u.Role, &u.Tier, &name, &nameSealed, &u.Profile.Preferences,
		&u.Profile.Settings, &u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		return auth.User{}, translate(err, auth.ErrUserNotFound)
	}
	if u.Email, err = db.openPersonal(purposeEmail, u.ID.String(), emailSealed, deref(email)); err != nil {
		return auth.User{}, fmt.Errorf("postgres: user %s: email: %w", u.ID, err)
	}
	if u.Profile.DisplayName, err = db.openPersonal(purposeDisplayName, u.ID.String(), nameSealed, name); err != nil {
		return auth.User{}, fmt.Errorf("postgres: user %s: display name: %w", u.ID, err)
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, nil
}

// nullString maps "" to SQL NULL.
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// deref returns *s, or "" for nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
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
	_, err := db.scanUser(db.pool.QueryRow(ctx,
		`UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1 RETURNING `+userColumns, id, hash, utc(now)))
	return err
}

// UpdateProfile implements auth.UserStore; with Config.Keyring the display
// name is sealed.
func (db *DB) UpdateProfile(ctx context.Context, id uuid.UUID, p auth.Profile, now time.Time) (auth.User, error) {
	nameSealed, name, err := db.sealPersonal(purposeDisplayName, id.String(), p.DisplayName)
	if err != nil {
		return auth.User{}, err
	}
	return db.scanUser(db.pool.QueryRow(ctx,
		`UPDATE users SET display_name = $2, display_name_sealed = $3, preferences = $4, settings = $5, updated_at = $6
		 WHERE id = $1 RETURNING `+userColumns,
		id, name, nameSealed, p.Preferences, p.Settings, utc(now)))
}

// SetRole implements auth.UserStore.
func (db *DB) SetRole(ctx context.Context, id uuid.UUID, role auth.Role, now time.Time) (auth.User, error) {
	return db.scanUser(db.pool.QueryRow(ctx,
		`UPDATE users SET role = $2, updated_at = $3 WHERE id = $1 RETURNING `+userColumns, id, string(role), utc(now)))
}

// SetTier implements auth.UserStore: the user's tier and its history in
// one statement.
func (db *DB) SetTier(ctx context.Context, c auth.TierChange) (auth.User, error) {
	var changedBy *uuid.UUID
	if c.ChangedBy != uuid.Nil {
		changedBy = &c.ChangedBy
	}
	return db.scanUser(db.pool.QueryRow(ctx, `
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
