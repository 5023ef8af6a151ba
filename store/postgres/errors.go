package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/errs"
)

// PostgreSQL error codes this package translates.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeCheckViolation      = "23514"
	codeNotNullViolation    = "23502"
	codeNumericOutOfRange   = "22003"
)

// constraintErrors maps a named constraint to the domain error its
// violation means. Every constraint a caller can trip is listed here.
var constraintErrors = map[string]error{
	"users_pkey":            auth.ErrUserExists,
	"users_email_key":       auth.ErrEmailTaken,
	"users_email_index_key": auth.ErrEmailTaken,
	"ad_spaces_pkey":        adspace.ErrSpaceExists,
	"ad_spaces_owner_fkey":  adspace.ErrOwnerNotFound,

	"ad_contents_advertiser_fkey":      adspace.ErrOwnerNotFound,
	"ad_contents_live_fingerprint_key": adspace.ErrDuplicateContent,

	"identities_pkey":               auth.ErrIdentityLinked,
	"identities_user_fkey":          auth.ErrUserNotFound,
	"sessions_pkey":                 auth.ErrSessionExists,
	"sessions_user_fkey":            auth.ErrUserNotFound,
	"refresh_tokens_pkey":           auth.ErrSessionExists,
	"refresh_tokens_generation_key": auth.ErrSessionExists,
	"user_tier_changes_user_fkey":   auth.ErrUserNotFound,
	"consent_records_user_fkey":     auth.ErrUserNotFound,

	"ledger_accounts_balance_check":    billing.ErrInsufficientFunds,
	"ledger_transactions_reverses_key": billing.ErrAlreadyReversed,
	"billing_topups_client_key_key":    billing.ErrVersionConflict,
	"billing_topups_payment_key":       billing.ErrVersionConflict,
	"billing_payees_account_index_key": errPayeeAccountTaken,
	"billing_payouts_one_pending_key":  billing.ErrPayoutInProgress,
}

// errInvalidRow is returned when a check constraint rejects a row: the
// domain validates first, so reaching it means a caller skipped validation.
var errInvalidRow = errs.New(errs.Invalid, "invalid_row", "the record breaks a storage rule")

// errPayeeAccountTaken is returned when a payee is saved with a connected
// account that another owner's payee has.
var errPayeeAccountTaken = billing.ErrVersionConflict.WithMessage("another owner's payee has this connected account")

// translate turns a driver error into a domain error: pgx.ErrNoRows becomes
// notFound, a known constraint violation its domain error, and a check
// violation errInvalidRow. The driver error stays wrapped as the cause so
// that logs keep the detail. Anything else is returned unchanged.
func translate(err error, notFound error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) && notFound != nil {
		return notFound
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	if domainErr, ok := constraintErrors[pgErr.ConstraintName]; ok {
		if e := errs.As(domainErr); e != nil {
			return e.WithCause(err)
		}
		return domainErr
	}
	switch pgErr.Code {
	case codeCheckViolation, codeNotNullViolation:
		return errInvalidRow.WithCause(err)
	}
	return err
}
