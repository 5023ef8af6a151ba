package billing

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/internal/errs"
)

// TopUpStatus is where a top-up is.
type TopUpStatus string

// Top-up statuses.
const (
	// TopUpPending: created at the processor, waiting for the payer.
	TopUpPending TopUpStatus = "pending"
	// TopUpAwaitingConfirmation: no processor (the embedded defaults): an
	// admin confirms that the money arrived.
	TopUpAwaitingConfirmation TopUpStatus = "awaiting_confirmation"
	// TopUpSucceeded: credited to the budget, on the processor's word (a
	// verified webhook) or an admin's, never the app's.
	TopUpSucceeded TopUpStatus = "succeeded"
	// TopUpFailed: the payment failed or was canceled; the advertiser
	// starts a new top-up.
	TopUpFailed TopUpStatus = "failed"
)

// TopUp is an advertiser's payment into their budget.
type TopUp struct {
	ID         uuid.UUID
	Advertiser uuid.UUID
	// ClientKey is the app's idempotency key: the same key with the same
	// amount and currency is the same top-up; with others, ErrKeyConflict.
	ClientKey string
	Amount    int64 // minor units
	Currency  Currency
	Status    TopUpStatus
	// PaymentID is the processor's payment ("pi_…"); empty in manual mode
	// and until the processor answered.
	PaymentID string
	// Refunded and Disputed are the minor units taken back so far.
	Refunded  int64
	Disputed  int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version grows with every change (optimistic concurrency).
	Version int64
}

// PayoutStatus is where a payout is.
type PayoutStatus string

// Payout statuses. A payout is created pending together with its ledger
// reserve, before the processor is called; it ends paid or voided.
const (
	// PayoutPending: reserved; the transfer is being made, or an admin
	// is to record a manual payment.
	PayoutPending PayoutStatus = "pending"
	// PayoutPaid: the transfer exists (or an admin recorded the payment).
	PayoutPaid PayoutStatus = "paid"
	// PayoutVoided: a definite failure; the reserve went back to available.
	PayoutVoided PayoutStatus = "voided"
)

// Payout moves an owner's available earnings to them.
type Payout struct {
	// ID is also the idempotency key and the transfer group at the
	// processor.
	ID       uuid.UUID
	Owner    uuid.UUID
	Amount   int64 // minor units
	Currency Currency
	Status   PayoutStatus
	// Manual is true when no processor pays it: an admin records it.
	Manual bool
	// Scheduled is true for a payout the schedule made, false for one the
	// owner asked for.
	Scheduled bool
	// Destination is the connected account paid (stored encrypted).
	Destination string
	// TransferID is the processor's transfer, once known.
	TransferID string
	// Attempts counts calls to the processor; LastError is the last
	// failure, safe to show the owner (never a secret).
	Attempts  int
	LastError string
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64
}

// HoldReason says why an owner's payouts are held.
type HoldReason string

// Hold reasons.
const (
	HoldNewAccount     HoldReason = "new_account"     // the first payout waits after onboarding
	HoldTierChange     HoldReason = "tier_change"     // a tier change waits out its first earnings
	HoldInvalidTraffic HoldReason = "invalid_traffic" // too much of the owner's traffic was invalid
	HoldManual         HoldReason = "manual"          // an admin's decision
)

// Hold stops an owner's payouts until it ends (Until) or is released.
type Hold struct {
	ID     uuid.UUID
	Owner  uuid.UUID
	Reason HoldReason
	// Note says more, for admins.
	Note string
	// Until, when set, ends the hold by itself.
	Until      time.Time
	CreatedAt  time.Time
	ReleasedAt time.Time
	ReleasedBy uuid.UUID
	Version    int64
}

// Active reports whether the hold stops payouts at now.
func (h Hold) Active(now time.Time) bool {
	return h.ReleasedAt.IsZero() && (h.Until.IsZero() || now.Before(h.Until))
}

// Payee is an owner as the processor pays them: their connected account,
// as adshare keeps it (ID is stored encrypted, found by a blind index).
type Payee struct {
	Owner uuid.UUID
	ConnectedAccount
	CreatedAt time.Time
	UpdatedAt time.Time
	// EventAt is the time of the newest processor event applied to it, so
	// that an older event arriving late changes nothing.
	EventAt time.Time
	Version int64
}

// StoredEvent is a processor event as received: stored by its id before
// it is acknowledged, and applied once.
type StoredEvent struct {
	ID      string
	Type    EventType
	Account string
	Created time.Time
	// Payload is the raw, verified body; Event what the verifier read of
	// it (the signature cannot be checked again later: its time passes).
	Payload     []byte
	Event       Event
	ReceivedAt  time.Time
	ProcessedAt time.Time // zero until applied
}

// OwnerSpend is what an owner's space earned in a day, by advertiser and
// source, from the analytics rollups: valid billable events only.
type OwnerSpend struct {
	Owner uuid.UUID
	Lines []SpendLine
	// Events and InvalidEvents count the day's impressions and clicks in
	// the owner's space, all and those flagged as invalid traffic.
	Events, InvalidEvents int64
}

// SpendLine is one advertiser's spend in one owner's space.
type SpendLine struct {
	// Source is the engine that served the ads: "local" (user-created ads,
	// Advertiser is the advertiser's user id) or "kevel".
	Source     string
	Advertiser string
	// SpendMicros is what the advertiser pays; OwnerMicros the owner's
	// share of it, as analytics computed it per event at the tier then in
	// force.
	SpendMicros int64
	OwnerMicros int64
}

// PayoutFilter selects payouts, newest first.
type PayoutFilter struct {
	// Owner, when set, keeps that owner's.
	Owner uuid.UUID
	// Status, when set, keeps those in it.
	Status PayoutStatus
	// Before pages: payouts created before this one (zero: from the newest).
	Before uuid.UUID
	// Limit: 1 to 500 (0: 50).
	Limit int
}

// Write is one atomic change of billing state: all of it or none.
// Transactions post as Ledger.Post does (idempotent by key; an error fails
// the whole Write, ErrInsufficientFunds included); a record is created
// when its Version is 0 and otherwise replaced only while the stored
// Version matches (else ErrVersionConflict), its stored Version then one
// more. A Write whose Processed event was already applied changes nothing
// and returns ErrAlreadyApplied. An owner has at most one pending payout: a
// Write that would make a second one fails with ErrPayoutInProgress.
type Write struct {
	Post   []Transaction
	TopUp  *TopUp
	Payout *Payout
	Payee  *Payee
	Hold   *Hold
	// Processed marks the stored event with this id applied.
	Processed string
	// Done records that the operations named by these keys finished
	// ("settled:2026-12-01"), so that later runs skip them cheaply.
	Done []string
}

// Store is billing's storage: the ledger and the records around it.
// store/memory and store/postgres implement it; store/storetest.RunBilling
// is the contract. Errors: ErrTopUpNotFound, ErrPayoutNotFound,
// ErrPayeeNotFound, ErrEventNotFound for absent records.
type Store interface {
	Ledger

	// Apply makes w, atomically (see Write).
	Apply(ctx context.Context, w Write) error

	// Done reports whether the operation named key finished (Write.Done).
	Done(ctx context.Context, key string) (bool, error)
	// DoneKeys reports which of keys name finished operations, in one
	// read: the map holds true for each of them, and nothing for the rest.
	DoneKeys(ctx context.Context, keys []string) (map[string]bool, error)

	// TopUp returns a top-up by id; TopUpByClientKey by its advertiser's
	// key; TopUpByPayment by the processor's payment id.
	TopUp(ctx context.Context, id uuid.UUID) (TopUp, error)
	TopUpByClientKey(ctx context.Context, advertiser uuid.UUID, key string) (TopUp, error)
	TopUpByPayment(ctx context.Context, paymentID string) (TopUp, error)
	// TopUpsSince returns an advertiser's top-ups created at or after
	// since, newest first: for velocity limits.
	TopUpsSince(ctx context.Context, advertiser uuid.UUID, since time.Time) ([]TopUp, error)

	// Payout returns a payout by id; Payouts lists them by f.
	Payout(ctx context.Context, id uuid.UUID) (Payout, error)
	Payouts(ctx context.Context, f PayoutFilter) ([]Payout, error)

	// Payee returns an owner's connected account; PayeeByAccountID finds
	// it by the processor's account id (a blind index: the id is stored
	// encrypted).
	Payee(ctx context.Context, owner uuid.UUID) (Payee, error)
	PayeeByAccountID(ctx context.Context, accountID string) (Payee, error)

	// Holds returns an owner's holds, newest first, released ones
	// included.
	Holds(ctx context.Context, owner uuid.UUID) ([]Hold, error)

	// SaveEvent stores a received event unless its id is stored already;
	// isNew says which. Event returns one by id.
	SaveEvent(ctx context.Context, e StoredEvent) (isNew bool, err error)
	Event(ctx context.Context, id string) (StoredEvent, error)
	// UnprocessedEvents returns up to limit stored events not applied
	// yet, oldest received first.
	UnprocessedEvents(ctx context.Context, limit int) ([]StoredEvent, error)

	// AccountsAtLeast returns the balances of kind k in currency c that
	// are at least min, in account id order after after, at most limit
	// (below 1: 50; above 10,000: 10,000): the owners a payout schedule
	// visits.
	AccountsAtLeast(ctx context.Context, k AccountKind, c Currency, min int64, after AccountID, limit int) ([]Balance, error)

	// EntryTotals sums, per account kind, the signed amounts (on each
	// account's normal side) of the entries of transactions of the given
	// kinds effective within [from, to), on user's accounts and the
	// platform's (uuid.Nil: everyone's): what reports of final and paid-out
	// money read.
	EntryTotals(ctx context.Context, kinds []TxKind, user uuid.UUID, from, to time.Time) (map[AccountKind]int64, error)

	// DailySpend returns what each owner's space earned on the UTC day of
	// day, from the analytics rollups, owners in id order after after, at
	// most limit.
	DailySpend(ctx context.Context, day time.Time, after uuid.UUID, limit int) ([]OwnerSpend, error)

	// AdvertiserSpendSince returns what each advertiser (a user id, as
	// the rollups name local advertisers) spent from since on, from the
	// rollups: the spend settlement has not debited yet.
	AdvertiserSpendSince(ctx context.Context, advertisers []string, since time.Time) (map[string]int64, error)
}

// Errors of the store.
var (
	ErrTopUpNotFound   = errs.New(errs.NotFound, "topup_not_found", "no such top-up")
	ErrPayoutNotFound  = errs.New(errs.NotFound, "payout_not_found", "no such payout")
	ErrPayeeNotFound   = errs.New(errs.NotFound, "connected_account_not_found", "no connected account")
	ErrEventNotFound   = errs.New(errs.NotFound, "event_not_found", "no such event")
	ErrVersionConflict = errs.New(errs.Conflict, "version_conflict", "the record changed meanwhile; read it again")
	ErrAlreadyApplied  = errs.New(errs.Conflict, "event_already_applied", "the event was applied already")
)
