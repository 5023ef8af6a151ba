package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

const userColumns = `id, email, role, tier, created_at`

// CreateUser implements auth.UserStore.
func (db *DB) CreateUser(ctx context.Context, u auth.User) error {
	_, err := db.pool.Exec(ctx,
		`INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		u.ID, u.Email, string(u.Role), u.Tier, u.CreatedAt)
	return translate(err, nil)
}

// UserByID implements auth.UserStore.
func (db *DB) UserByID(ctx context.Context, id uuid.UUID) (auth.User, error) {
	return db.queryUser(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
}

// UserByEmail implements auth.UserStore.
func (db *DB) UserByEmail(ctx context.Context, email string) (auth.User, error) {
	return db.queryUser(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email)
}

func (db *DB) queryUser(ctx context.Context, sql string, args ...any) (auth.User, error) {
	var u auth.User
	err := db.pool.QueryRow(ctx, sql, args...).Scan(&u.ID, &u.Email, &u.Role, &u.Tier, &u.CreatedAt)
	if err != nil {
		return auth.User{}, translate(err, auth.ErrUserNotFound)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}
