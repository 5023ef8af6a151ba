package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Processor is the payments processor: how money enters (advertisers' top-
// ups) and leaves (transfers to owners' connected accounts). billing/stripe
// implements it on Stripe Connect (separate charges and transfers);
// billingtest has a stateful fake. Amounts are minor units of the currency
// (cents). Every call that creates something takes an idempotency key the
// caller has persisted first; a retry with the same key and parameters
// returns the first result.
//
// Errors: a *ProcessorError, whose Definite says whether the processor
// certainly did nothing (a refusal: the caller may void what it reserved)
// or may have acted (a timeout, a 5xx, a lost connection: retry with the
// same key, or look the result up).
type Processor interface {
	// CreatePayment starts a top-up: a payment the app confirms with the
	// processor's SDK using the returned ClientSecret. It moves no money
	// by itself; the processor's webhook says when it succeeded.
	CreatePayment(ctx context.Context, r PaymentRequest) (Payment, error)
	// Payment reads a payment again (webhooks may arrive out of order).
	Payment(ctx context.Context, id string) (Payment, error)

	// CreateAccount makes a connected account for an owner, to receive
	// transfers.
	CreateAccount(ctx context.Context, r AccountRequest) (ConnectedAccount, error)
	// Account reads a connected account again.
	Account(ctx context.Context, id string) (ConnectedAccount, error)
	// OnboardingLink returns a single-use URL at which the owner completes
	// the account's onboarding, coming back to returnURL (or refreshURL
	// when the link expired).
	OnboardingLink(ctx context.Context, accountID, refreshURL, returnURL string) (string, error)

	// Transfer moves r.Amount to a connected account, in transfer group
	// r.Group, idempotently under r.Key.
	Transfer(ctx context.Context, r TransferRequest) (Transfer, error)
	// TransfersInGroup lists the transfers made in a group: how a payout
	// whose key may have expired (Stripe keeps keys for 24 hours) finds
	// out whether its transfer happened before trying again.
	TransfersInGroup(ctx context.Context, group string) ([]Transfer, error)

	// Reconciliation: what the processor's own books say, since a moment.
	BalanceTransactions(ctx context.Context, since time.Time) ([]BalanceTransaction, error)
	Transfers(ctx context.Context, since time.Time) ([]Transfer, error)
}

// PaymentRequest is a top-up to create.
type PaymentRequest struct {
	// Key is the idempotency key (the top-up's id).
	Key        string
	Advertiser uuid.UUID
	// Amount in minor units of Currency.
	Amount   int64
	Currency Currency
	// Group is the transfer group recorded with the payment.
	Group string
}

// PaymentStatus is where a payment is.
type PaymentStatus string

// Payment statuses (the subset adshare acts on).
const (
	PaymentPending   PaymentStatus = "pending"   // waiting for the payer
	PaymentSucceeded PaymentStatus = "succeeded" // the money is the platform's
	PaymentFailed    PaymentStatus = "failed"    // the payer's attempt failed (they may try again)
	PaymentCanceled  PaymentStatus = "canceled"
)

// Payment is a top-up as the processor sees it.
type Payment struct {
	ID           string
	Advertiser   uuid.UUID // from the payment's metadata
	Amount       int64     // minor units
	Currency     Currency
	Status       PaymentStatus
	ClientSecret string // for the app's SDK; only from CreatePayment
	// Fee is the processor's fee once it succeeded (minor units), when known.
	Fee int64
	// Refunded and Disputed are the amounts refunded and under dispute.
	Refunded int64
	Disputed int64
	Created  time.Time
}

// AccountRequest is a connected account to create.
type AccountRequest struct {
	Key   string // idempotency key
	Owner uuid.UUID
	Email string
	// Country is the owner's ISO 3166-1 alpha-2 country ("US").
	Country string
}

// ConnectedAccount is an owner's account at the processor.
type ConnectedAccount struct {
	ID    string
	Owner uuid.UUID
	// PayoutsEnabled and TransfersEnabled say whether money can reach the
	// owner; RequirementsDue lists what the owner still has to provide.
	PayoutsEnabled   bool
	TransfersEnabled bool
	DetailsSubmitted bool
	RequirementsDue  []string
	DisabledReason   string
}

// TransferRequest is a transfer to create.
type TransferRequest struct {
	// Key is the idempotency key: the payout's id.
	Key         string
	Destination string // connected account id
	Amount      int64  // minor units
	Currency    Currency
	// Group is the transfer group: the payout's id too, so that
	// TransfersInGroup finds it.
	Group string
	// Payout links the transfer to the payout in the processor's metadata.
	Payout uuid.UUID
}

// Transfer is a transfer as the processor sees it.
type Transfer struct {
	ID          string
	Destination string
	Amount      int64 // minor units
	Currency    Currency
	Group       string
	Payout      uuid.UUID // from the transfer's metadata
	// Reversed is the amount reversed since.
	Reversed int64
	Created  time.Time
}

// BalanceTransaction is one movement of the platform's balance at the
// processor (a charge, its fee, a refund, a transfer...).
type BalanceTransaction struct {
	ID     string
	Type   string // the processor's own word: "charge", "refund", "transfer", ...
	Amount int64  // minor units, signed: negative when money left
	Fee    int64
	Net    int64
	// Source is the object that caused it (a charge, a refund, a
	// transfer id); Payment, for a charge, is its payment (PaymentIntent).
	Source   string
	Payment  string
	Currency Currency
	Created  time.Time
}

// ProcessorError is a failed call to the Processor.
type ProcessorError struct {
	// Definite is true when the processor certainly did nothing: a
	// refusal (an invalid request, a card declined, insufficient funds on
	// the platform). False when it may have acted: retry with the same key.
	Definite bool
	// Code is the processor's error code ("insufficient_funds",
	// "rate_limit", "timeout"), for logs and metrics.
	Code string
	// Message is safe to log: it never holds a key or a secret.
	Message string
	// RequestID is the processor's id of the request, for support.
	RequestID string
	cause     error
}

// Error implements error.
func (e *ProcessorError) Error() string {
	kind := "ambiguous"
	if e.Definite {
		kind = "definite"
	}
	if e.RequestID != "" {
		return fmt.Sprintf("billing: processor %s failure %s (request %s): %s", kind, e.Code, e.RequestID, e.Message)
	}
	return fmt.Sprintf("billing: processor %s failure %s: %s", kind, e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *ProcessorError) Unwrap() error { return e.cause }

// NewProcessorError returns a ProcessorError wrapping cause (which must not
// hold secrets).
func NewProcessorError(definite bool, code, message, requestID string, cause error) *ProcessorError {
	return &ProcessorError{Definite: definite, Code: code, Message: message, RequestID: requestID, cause: cause}
}

// IsDefinite reports whether err is a ProcessorError that certainly did
// nothing.
func IsDefinite(err error) bool {
	var pe *ProcessorError
	return errors.As(err, &pe) && pe.Definite
}

// Event is a verified notification from the processor (a webhook),
// reduced to what adshare acts on. Exactly one of the object fields is set,
// by Type.
type Event struct {
	// ID is the processor's event id: events are applied once by id.
	ID   string
	Type EventType
	// Account is the connected account the event is about, for events
	// from connected accounts ("" for the platform's own).
	Account  string
	Created  time.Time
	Livemode bool

	Payment  *Payment
	Refund   *Refund
	Dispute  *Dispute
	Transfer *Transfer
	Connect  *ConnectedAccount
	Payout   *ConnectedPayout
}

// EventType is an event's type, in the processor's words.
type EventType string

// The events adshare acts on; others are stored and acknowledged, and
// change nothing.
const (
	EventPaymentSucceeded EventType = "payment_intent.succeeded"
	EventPaymentFailed    EventType = "payment_intent.payment_failed"
	EventChargeRefunded   EventType = "charge.refunded"
	EventDisputeCreated   EventType = "charge.dispute.created"
	EventDisputeClosed    EventType = "charge.dispute.closed"
	EventAccountUpdated   EventType = "account.updated"
	EventTransferReversed EventType = "transfer.reversed"
	EventPayoutFailed     EventType = "payout.failed"
)

// Refund is a charge's refund, as a charge.refunded event says it.
type Refund struct {
	ID      string // the refund's id (the latest, when several)
	Payment string // the payment (PaymentIntent) refunded
	Charge  string
	// Amount is the charge's total refunded so far (minor units).
	Amount   int64
	Currency Currency
}

// Dispute is a charge's dispute.
type Dispute struct {
	ID       string
	Payment  string
	Charge   string
	Amount   int64 // minor units
	Currency Currency
	// Status is the processor's ("needs_response", "won", "lost", ...).
	Status string
	Fee    int64
}

// ConnectedPayout is a payout from a connected account to the owner's
// bank, as a payout.* event says it.
type ConnectedPayout struct {
	ID          string
	Amount      int64
	Currency    Currency
	Status      string
	FailureCode string
}

// EventVerifier checks a webhook's signature and reads its event.
// billing/stripe's Webhooks implements it.
type EventVerifier interface {
	// VerifyEvent returns the event in payload when header signs it with
	// one of the endpoint's secrets and its time is within the tolerance
	// of now, either way. Errors: ErrWebhookSignature (unsigned, badly
	// signed, too old or too far in the future: the processor gets a 400
	// and retries), ErrWebhookVersion (an event of another API version:
	// the endpoint is misconfigured; alert), ErrInvalidEvent (signed, but
	// not readable).
	VerifyEvent(payload []byte, header string, now time.Time) (Event, error)
}
