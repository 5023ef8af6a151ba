package billing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

// Difference is one way the ledger and the processor's books disagree.
type Difference struct {
	// Kind names it: "transfer_not_in_ledger" (a transfer made, no payout
	// paid for it), "payout_without_transfer" (a payout paid, no such
	// transfer), "amount_mismatch", "topup_not_credited" (a payment
	// succeeded at the processor, its top-up not credited),
	// "unknown_payment" (a charge of no top-up).
	Kind string
	// Object is the processor's object (a transfer, a payment) or the
	// payout's id.
	Object string
	Detail string
}

// Reconciliation is what one run found.
type Reconciliation struct {
	Since       time.Time
	RanAt       time.Time
	Checked     int
	Differences []Difference
}

// Reconcile holds the ledger against the processor's books since a
// moment: every transfer must be a paid payout of the same amount, every
// paid payout since then a transfer, every succeeded charge a credited
// top-up. It returns (and logs, at error level, each) the differences;
// the last report is kept for LastReconciliation. Manual mode has nothing
// to reconcile.
func (s *Service) Reconcile(ctx context.Context, since time.Time) (Reconciliation, error) {
	rep := Reconciliation{Since: since, RanAt: s.now().UTC()}
	if s.Manual() {
		return rep, nil
	}
	transfers, err := s.cfg.Processor.Transfers(ctx, since)
	if err != nil {
		return rep, fmt.Errorf("billing: reconcile: transfers: %w", err)
	}
	seen := map[uuid.UUID]bool{}
	for _, t := range transfers {
		rep.Checked++
		po, err := s.store.Payout(ctx, t.Payout)
		switch {
		case errors.Is(err, ErrPayoutNotFound) || t.Payout == uuid.Nil:
			rep.add(Difference{Kind: "transfer_not_in_ledger", Object: t.ID, Detail: fmt.Sprintf("%d %s to %s", t.Amount, t.Currency, t.Destination)})
			continue
		case err != nil:
			return rep, err
		}
		seen[po.ID] = true
		switch {
		case po.Status != PayoutPaid:
			rep.add(Difference{Kind: "transfer_not_in_ledger", Object: t.ID, Detail: "its payout " + po.ID.String() + " is " + string(po.Status)})
		case po.Amount != t.Amount || po.Currency != t.Currency:
			rep.add(Difference{Kind: "amount_mismatch", Object: t.ID,
				Detail: fmt.Sprintf("transfer %d %s, payout %d %s", t.Amount, t.Currency, po.Amount, po.Currency)})
		}
	}
	// Payouts paid since then whose transfer the processor does not have.
	var before uuid.UUID
	for {
		page, err := s.store.Payouts(ctx, PayoutFilter{Status: PayoutPaid, Before: before, Limit: 500})
		if err != nil {
			return rep, err
		}
		for _, po := range page {
			if po.CreatedAt.Before(since) {
				page = nil
				break
			}
			rep.Checked++
			if !po.Manual && !seen[po.ID] && !strings.HasPrefix(po.TransferID, "manual:") {
				rep.add(Difference{Kind: "payout_without_transfer", Object: po.ID.String(), Detail: "transfer " + po.TransferID + " is not at the processor"})
			}
		}
		if len(page) < 500 {
			break
		}
		before = page[len(page)-1].ID
	}
	bts, err := s.cfg.Processor.BalanceTransactions(ctx, since)
	if err != nil {
		return rep, fmt.Errorf("billing: reconcile: balance transactions: %w", err)
	}
	for _, bt := range bts {
		if bt.Type != "charge" && bt.Type != "payment" {
			continue
		}
		rep.Checked++
		payment := cmp.Or(bt.Payment, bt.Source)
		t, err := s.store.TopUpByPayment(ctx, payment)
		switch {
		case errors.Is(err, ErrTopUpNotFound):
			rep.add(Difference{Kind: "unknown_payment", Object: payment, Detail: fmt.Sprintf("%d %s", bt.Amount, bt.Currency)})
		case err != nil:
			return rep, err
		case t.Status != TopUpSucceeded:
			rep.add(Difference{Kind: "topup_not_credited", Object: payment, Detail: "top-up " + t.ID.String() + " is " + string(t.Status)})
		case t.Amount != bt.Amount:
			rep.add(Difference{Kind: "amount_mismatch", Object: payment, Detail: fmt.Sprintf("charge %d, top-up %d", bt.Amount, t.Amount)})
		}
	}
	slices.SortFunc(rep.Differences, func(a, b Difference) int { return strings.Compare(a.Kind+a.Object, b.Kind+b.Object) })
	for _, d := range rep.Differences {
		s.logger.ErrorContext(ctx, "billing: the ledger and the processor disagree", slog.String("kind", d.Kind),
			slog.String("object", d.Object), slog.String("detail", d.Detail))
	}
	s.recMu.Lock()
	s.lastRec = &rep
	s.recMu.Unlock()
	s.metrics.differences.Set(float64(len(rep.Differences)))
	s.metrics.reconciledAt.Set(float64(rep.RanAt.Unix()))
	return rep, nil
}

func (r *Reconciliation) add(d Difference) { r.Differences = append(r.Differences, d) }

// ReconciliationReport returns, to a caller with PermBillingManage, the
// last report of this instance, if any (false: none yet, or manual mode).
func (s *Service) ReconciliationReport(ctx context.Context, p auth.Principal) (Reconciliation, bool, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermBillingManage); err != nil {
		return Reconciliation{}, false, err
	}
	rep, ok := s.LastReconciliation()
	return rep, ok, nil
}

// LastReconciliation returns the last report of this instance, if any.
func (s *Service) LastReconciliation() (Reconciliation, bool) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	if s.lastRec == nil {
		return Reconciliation{}, false
	}
	return *s.lastRec, true
}
