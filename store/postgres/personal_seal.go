package postgres

import "github.com/adshare/adshare/auth/keyring"

// Keyring returns Config.Keyring: the ring that seals what the store
// keeps sealed, nil when there is none.
func (db *DB) Keyring() *keyring.Ring { return db.cfg.Keyring }

// The purposes of the personal fields sealed at rest (see auth/keyring and
// migration 00010): one per column. The row id each is bound to is the
// user's id for a user's fields, the session's id for its address, the
// identity's issuer and subject, and an audit event's time.
const (
	purposeEmail         = "auth.email"
	purposeDisplayName   = "auth.display_name"
	purposeIdentityEmail = "auth.identity_email"
	purposeSessionIP     = "auth.session_ip"
	purposeAuditIP       = "auth.audit_ip"
)

// sealPersonal returns what to store for a personal field: with a keyring,
// the sealed value (nil for "") and "" for the clear column; without one,
// nil and the value itself, in the clear column, as before migration
// 00010 (see Config.Keyring). DB.Reseal seals such values later.
func (db *DB) sealPersonal(purpose, rowID, plain string) (sealed []byte, clear string, err error) {
	if db.cfg.Keyring == nil {
		return nil, plain, nil
	}
	sealed, err = db.sealOptional(purpose, rowID, plain)
	return sealed, "", err
}

// openPersonal returns a personal field from its two columns: the sealed
// one when it holds a value, else the clear one (a row written before
// migration 00010 or without a keyring, not yet resealed). A sealed value
// and no keyring is ErrKeyringRequired.
func (db *DB) openPersonal(purpose, rowID string, sealed []byte, clear string) (string, error) {
	if sealed == nil {
		return clear, nil
	}
	return db.openOptional(purpose, rowID, sealed)
}

// emailIndex is the blind index of an email, nil without a keyring.
func (db *DB) emailIndex(email string) []byte {
	if db.cfg.Keyring == nil {
		return nil
	}
	return db.cfg.Keyring.IndexString(purposeEmail, email)
}
