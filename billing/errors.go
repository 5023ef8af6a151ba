package billing

import "github.com/adshare/adshare/internal/errs"

// Errors of the ledger.
var (
	// ErrInvalidTransaction: a transaction breaks a rule (unbalanced, no
	// key, a bad account...); the error carries fields.
	ErrInvalidTransaction = errs.New(errs.Invalid, "invalid_transaction", "the ledger transaction is not valid")
	// ErrInvalidAccount: an account id that names no account.
	ErrInvalidAccount = errs.New(errs.Invalid, "invalid_account", "the ledger account is not valid")
	// ErrKeyConflict: the idempotency key was posted with other content.
	ErrKeyConflict = errs.New(errs.Conflict, "idempotency_key_conflict", "this idempotency key was used for something else")
	// ErrInsufficientFunds: a posting would take an account that may not
	// go negative below zero; nothing was posted.
	ErrInsufficientFunds = errs.New(errs.Conflict, "insufficient_funds", "the balance is too low")
	// ErrTransactionNotFound: no transaction has the key (or, for a
	// reversal, the id it reverses).
	ErrTransactionNotFound = errs.New(errs.NotFound, "transaction_not_found", "no such ledger transaction")
	// ErrAlreadyReversed: the transaction a reversal names was reversed
	// by another; a transaction is reversed at most once.
	ErrAlreadyReversed = errs.New(errs.Conflict, "transaction_already_reversed", "the ledger transaction is already reversed")
)

// Errors of the processor's webhooks.
var (
	// ErrWebhookSignature: the payload is unsigned, badly signed, or
	// signed too long ago or too far ahead.
	ErrWebhookSignature = errs.New(errs.Invalid, "invalid_webhook_signature", "the webhook signature is not valid")
	// ErrWebhookVersion: the event was made for another API version.
	ErrWebhookVersion = errs.New(errs.Invalid, "webhook_api_version", "the webhook's API version is not the one this build reads")
	// ErrInvalidEvent: a signed event that cannot be read.
	ErrInvalidEvent = errs.New(errs.Invalid, "invalid_webhook_event", "the webhook event cannot be read")
)
