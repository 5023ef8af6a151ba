package billing

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

// AccountCloser is a Processor that can close a connected account, for
// the erasure of its owner. It is optional (found by type assertion):
// without it, or without a processor, the account is only detached (the
// payee record deleted with the user). CloseAccount of an account the
// processor no longer has returns nil.
type AccountCloser interface {
	CloseAccount(ctx context.Context, accountID string) error
}

// AuditPayeeClosed records a connected account closed for an erasure.
const AuditPayeeClosed = "billing.payee_closed"

// PayoutPending reports whether owner has a payout on its way (pending):
// erasure refuses, or waits, while one is, so that the money and its
// record are not lost.
func (s *Service) PayoutPending(ctx context.Context, owner uuid.UUID) (bool, error) {
	ps, err := s.store.Payouts(ctx, PayoutFilter{Owner: owner, Status: PayoutPending, Limit: 1})
	if err != nil {
		return false, err
	}
	return len(ps) > 0, nil
}

// ClosePayee closes owner's connected account at the processor when it
// can (AccountCloser; Stripe deletes an account it may, and rejects the
// rest), for the owner's erasure. The ledger keeps the owner's entries
// (under a pseudonym, by the store's erasure); the processor keeps what
// the law makes it keep. No payee: nothing to do. It is idempotent.
func (s *Service) ClosePayee(ctx context.Context, owner uuid.UUID) error {
	payee, err := s.store.Payee(ctx, owner)
	if errors.Is(err, ErrPayeeNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	closer, ok := s.cfg.Processor.(AccountCloser)
	if !ok || s.cfg.Processor == nil {
		return nil
	}
	if err := closer.CloseAccount(ctx, payee.ID); err != nil {
		return fmt.Errorf("billing: close connected account: %w", err)
	}
	// Names no account and no person: the owner's id is pseudonymised
	// with the rest of the audit log.
	s.record(ctx, auth.AuditEvent{Action: AuditPayeeClosed, TargetType: "user", TargetID: owner.String()})
	return nil
}
