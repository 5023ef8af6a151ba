package memory

import (
	"context"
	"sync"

	"github.com/google/uuid"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
)

// Store implements every adshare store interface in memory. The zero value
// is not usable; call New. It is safe for concurrent use: one lock guards
// everything, which keeps multi-record writes atomic as in PostgreSQL,
// except the analytics events and rollups, and the ledger, which have locks
// of their own (no write spans the events and the rest; one that spans the
// ledger and the rest takes the store's lock first, then the ledger's).
type Store struct {
	mu sync.RWMutex

	users     map[uuid.UUID]auth.User
	byEmail   map[string]uuid.UUID
	passwords map[uuid.UUID]string
	tiers     map[uuid.UUID][]auth.TierChange // oldest first

	spaces   map[uuid.UUID]adspace.Space
	contents map[uuid.UUID]adspace.Content

	sessions   map[uuid.UUID]auth.Session
	refresh    map[string]*refreshRow       // by token hash
	generation map[sessionGeneration]string // (session, generation) → token hash

	identities map[identityKey]auth.Identity

	audit     []auth.AuditEvent
	nextAudit int64

	consents    map[uuid.UUID][]auth.ConsentRecord // oldest first
	nextConsent int64

	// events holds analytics events and rollups, under a lock of its own:
	// no write spans them and the auth data.
	events eventState

	// ledger holds the ledger, under a lock of its own (see ledgerState).
	ledger ledgerState
	// billing holds billing's records, under mu.
	billing billingState
	// privacy holds exports and erasures, under mu. EraseUser's rename
	// skips it: an erasure names its user until it is done.
	privacy privacyState
}

var (
	_ auth.UserStore       = (*Store)(nil)
	_ auth.SessionStore    = (*Store)(nil)
	_ auth.IdentityStore   = (*Store)(nil)
	_ auth.AuditLog        = (*Store)(nil)
	_ adspace.Store        = (*Store)(nil)
	_ adspace.ContentStore = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		users:      make(map[uuid.UUID]auth.User),
		byEmail:    make(map[string]uuid.UUID),
		passwords:  make(map[uuid.UUID]string),
		tiers:      make(map[uuid.UUID][]auth.TierChange),
		spaces:     make(map[uuid.UUID]adspace.Space),
		contents:   make(map[uuid.UUID]adspace.Content),
		sessions:   make(map[uuid.UUID]auth.Session),
		refresh:    make(map[string]*refreshRow),
		generation: make(map[sessionGeneration]string),
		identities: make(map[identityKey]auth.Identity),
		events:     newEventState(),
		ledger:     newLedgerState(),
		billing:    newBillingState(),
		privacy:    newPrivacyState(),
	}
}

// Ping reports that the store is ready; memory always is, unless ctx is done.
func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }
