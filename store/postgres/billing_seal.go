package postgres

import (
	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/internal/errs"
)

// ErrKeyringRequired is returned by the billing methods that store or read
// a sealed value (a payee's connected account, a payout's destination, a
// processor event) when Config.Keyring is nil. Nothing is stored.
var ErrKeyringRequired = errs.New(errs.Internal, "keyring_required",
	"postgres: billing stores connected-account ids, payout destinations and processor events sealed: "+
		"set Config.Keyring (auth/keyring.New) when opening the store")

// The purposes of billing's sealed fields (see auth/keyring): one per
// column.
const (
	purposeConnectedAccount  = "billing.connected_account"
	purposePayoutDestination = "billing.payout_destination"
	purposeEventAccount      = "billing.event_account"
	purposeEventPayload      = "billing.event_payload"
	purposeEvent             = "billing.event"
)

// ring returns the configured keyring, or ErrKeyringRequired.
func (db *DB) ring() (*keyring.Ring, error) {
	if db.cfg.Keyring == nil {
		return nil, ErrKeyringRequired
	}
	return db.cfg.Keyring, nil
}

// sealOptional seals a value that may be empty: nil (SQL NULL) for "",
// which needs no keyring.
func (db *DB) sealOptional(purpose, rowID, plain string) ([]byte, error) {
	if plain == "" {
		return nil, nil
	}
	r, err := db.ring()
	if err != nil {
		return nil, err
	}
	return r.SealString(purpose, rowID, plain)
}

// openOptional opens what sealOptional sealed: "" for nil.
func (db *DB) openOptional(purpose, rowID string, sealed []byte) (string, error) {
	if sealed == nil {
		return "", nil
	}
	r, err := db.ring()
	if err != nil {
		return "", err
	}
	return r.OpenString(purpose, rowID, sealed)
}
