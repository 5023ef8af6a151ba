package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/auth"
)

const identityColumns = `issuer, subject, user_id, provider, email, email_sealed, created_at`

// identityRowID is the row id an identity's sealed email is bound to.
func identityRowID(issuer, subject string) string { return issuer + "\n" + subject }

// scanIdentity reads one row of identityColumns and opens its email.
func (db *DB) scanIdentity(row pgx.Row) (auth.Identity, error) {
	var (
		id     auth.Identity
		sealed []byte
	)
	if err := row.Scan(&id.Issuer, &id.Subject, &id.UserID, &id.Provider, &id.Email, &sealed, &id.CreatedAt); err != nil {
		return auth.Identity{}, err
	}
	var err error
	if id.Email, err = db.openPersonal(purposeIdentityEmail, identityRowID(id.Issuer, id.Subject), sealed, id.Email); err != nil {
		return auth.Identity{}, fmt.Errorf("postgres: identity of user %s: email: %w", id.UserID, err)
	}
	id.CreatedAt = id.CreatedAt.UTC()
	return id, nil
}

// IdentityBySubject implements auth.IdentityStore.
func (db *DB) IdentityBySubject(ctx context.Context, issuer, subject string) (auth.Identity, error) {
	id, err := db.scanIdentity(db.pool.QueryRow(ctx, `SELECT `+identityColumns+` FROM identities WHERE issuer = $1 AND subject = $2`,
		issuer, subject))
	return id, translate(err, auth.ErrIdentityNotFound)
}

// LinkIdentity implements auth.IdentityStore; with Config.Keyring the
// provider's email is sealed.
func (db *DB) LinkIdentity(ctx context.Context, id auth.Identity) error {
	sealed, email, err := db.sealPersonal(purposeIdentityEmail, identityRowID(id.Issuer, id.Subject), id.Email)
	if err != nil {
		return err
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO identities (`+identityColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id.Issuer, id.Subject, id.UserID, id.Provider, email, sealed, utc(id.CreatedAt))
	return translate(err, nil)
}

// UserIdentities implements auth.IdentityStore.
func (db *DB) UserIdentities(ctx context.Context, user uuid.UUID) ([]auth.Identity, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+identityColumns+` FROM identities WHERE user_id = $1
		ORDER BY created_at, issuer COLLATE "C", subject COLLATE "C"`, user)
	if err != nil {
		return nil, translate(err, nil)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (auth.Identity, error) { return db.scanIdentity(r) })
	if out == nil {
		out = []auth.Identity{}
	}
	return out, translate(err, nil)
}
