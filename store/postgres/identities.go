package postgres

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/auth"
)

const identityColumns = `issuer, subject, user_id, provider, email, created_at`

// IdentityBySubject implements auth.IdentityStore.
func (db *DB) IdentityBySubject(ctx context.Context, issuer, subject string) (auth.Identity, error) {
	var id auth.Identity
	err := db.pool.QueryRow(ctx, `SELECT `+identityColumns+` FROM identities WHERE issuer = $1 AND subject = $2`,
		issuer, subject).Scan(&id.Issuer, &id.Subject, &id.UserID, &id.Provider, &id.Email, &id.CreatedAt)
	if err != nil {
		return auth.Identity{}, translate(err, auth.ErrIdentityNotFound)
	}
	id.CreatedAt = id.CreatedAt.UTC()
	return id, nil
}

// LinkIdentity implements auth.IdentityStore.
func (db *DB) LinkIdentity(ctx context.Context, id auth.Identity) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO identities (`+identityColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		id.Issuer, id.Subject, id.UserID, id.Provider, id.Email, utc(id.CreatedAt))
	return translate(err, nil)
}

// UserIdentities implements auth.IdentityStore.
func (db *DB) UserIdentities(ctx context.Context, user uuid.UUID) ([]auth.Identity, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+identityColumns+` FROM identities WHERE user_id = $1
		ORDER BY created_at, issuer COLLATE "C", subject COLLATE "C"`, user)
	if err != nil {
		return nil, translate(err, nil)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (auth.Identity, error) {
		var id auth.Identity
		err := r.Scan(&id.Issuer, &id.Subject, &id.UserID, &id.Provider, &id.Email, &id.CreatedAt)
		id.CreatedAt = id.CreatedAt.UTC()
		return id, err
	})
	if out == nil {
		out = []auth.Identity{}
	}
	return out, translate(err, nil)
}
