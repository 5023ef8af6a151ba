package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

// Errors of payouts.
var (
	// ErrBelowMinimum: the amount is below the owner's tier's minimum
	// payout (or there is less than that available).
	ErrBelowMinimum = errs.New(errs.Invalid, "payout_below_minimum", "the payout is below the minimum")
	// ErrPayoutHeld: payouts are held (see the holds); nothing was done.
	ErrPayoutHeld = errs.New(errs.Conflict, "payout_held", "payouts are on hold")
	// ErrNoPayee: the owner has no connected account that can receive
	// transfers yet (onboarding first).
	ErrNoPayee = errs.New(errs.Conflict, "payee_not_ready", "finish setting up payouts first")
	// ErrPayoutInProgress: another payout of the owner is pending.
	ErrPayoutInProgress = errs.New(errs.Conflict, "payout_in_progress", "a payout is already on its way")
	// ErrTooManyPayouts: the owner's payouts this week reached the limit.
	ErrTooManyPayouts = errs.New(errs.RateLimited, "too_many_payouts", "too many payouts this week")
	// ErrPayoutNotPending: the payout is paid or voided already.
	ErrPayoutNotPending = errs.New(errs.Conflict, "payout_not_pending", "the payout is not pending")
)

// PayoutRequest asks for a payout.
type PayoutRequest struct {
	// Amount in minor units; 0 pays out everything available (in whole
	// minor units: what is below one stays available).
	Amount int64
}

// RequestPayout pays the caller's available earnings out: it checks the
// tier's minimum, the holds and the velocity limit, reserves the amount in
// the ledger together with the payout's record (before the processor is
// called), and then has the transfer made in the background (or, in manual
// mode, waits for an admin to record it). Two requests at once for the
// whole balance: one wins, the other fails with ErrInsufficientFunds.
func (s *Service) RequestPayout(ctx context.Context, p auth.Principal, r PayoutRequest) (Payout, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermAdSpace); err != nil {
		return Payout{}, err
	}
	if r.Amount < 0 {
		return Payout{}, ErrBelowMinimum.WithFields(map[string]string{"amount": "must not be negative"})
	}
	po, err := s.createPayout(ctx, p.UserID, r.Amount, false)
	if err != nil {
		s.record(ctx, auth.AuditEvent{ActorID: p.UserID, Action: AuditPayoutRefused, TargetType: "user", TargetID: p.UserID.String(),
			Outcome: auth.OutcomeDenied, Reason: codeOf(err)})
		return Payout{}, err
	}
	s.record(ctx, auth.AuditEvent{ActorID: p.UserID, Action: AuditPayoutRequested, TargetType: "payout", TargetID: po.ID.String(),
		Details: map[string]string{"amount": strconv.FormatInt(po.Amount, 10), "currency": string(po.Currency)}})
	return po, nil
}

// createPayout checks and reserves a payout of amount minor units (0: all)
// for owner.
func (s *Service) createPayout(ctx context.Context, owner uuid.UUID, amount int64, scheduled bool) (Payout, error) {
	now := s.now().UTC()
	destination, err := s.payable(ctx, owner, now)
	if err != nil {
		return Payout{}, err
	}
	availID := s.account(Available, owner)
	bal, err := s.store.Balances(ctx, []AccountID{availID})
	if err != nil {
		return Payout{}, err
	}
	whole, _ := s.cfg.Currency.ToMinor(bal[availID].Micros)
	if amount == 0 {
		amount = whole
	}
	tier, err := s.cfg.Tiers.TierAt(ctx, owner, now)
	if err != nil {
		return Payout{}, err
	}
	micros, ok := s.cfg.Currency.FromMinor(amount)
	switch {
	case !ok || amount > whole:
		return Payout{}, ErrInsufficientFunds.WithMessage("there is not that much available to pay out")
	case micros < max(tier.MinPayoutMicros, 1):
		return Payout{}, ErrBelowMinimum.WithMessage(fmt.Sprintf("the %s tier pays out from %s", tier.Name, s.formatMicros(tier.MinPayoutMicros)))
	}
	po := Payout{
		ID: uuid.Must(uuid.NewV7()), Owner: owner, Amount: amount, Currency: s.cfg.Currency, Status: PayoutPending,
		Manual: s.Manual(), Scheduled: scheduled, Destination: destination, CreatedAt: now, UpdatedAt: now,
	}
	reserve := Transaction{Key: "payout:" + po.ID.String() + ":reserve", Kind: TxPayout, EffectiveAt: now,
		Memo: "payout reserved", Refs: map[string]string{"payout": po.ID.String()},
		Entries: []Entry{{Account: availID, Side: Debit, Amount: micros}, {Account: s.account(InTransit, owner), Side: Credit, Amount: micros}}}
	if err := s.store.Apply(ctx, Write{Post: []Transaction{reserve}, Payout: &po}); err != nil {
		return Payout{}, err
	}
	po.Version = 1
	s.metrics.payouts.WithLabelValues("requested").Inc()
	if !po.Manual {
		s.enqueue(ctx, jobPayout, payoutArgs{Payout: po.ID}, "payout:"+po.ID.String())
	}
	return po, nil
}

// payable checks that owner may be paid now and returns where to.
func (s *Service) payable(ctx context.Context, owner uuid.UUID, now time.Time) (destination string, err error) {
	holds, err := s.store.Holds(ctx, owner)
	if err != nil {
		return "", err
	}
	for _, h := range holds {
		if h.Active(now) {
			return "", ErrPayoutHeld.WithMessage("payouts are on hold: " + string(h.Reason))
		}
	}
	then, err := s.cfg.Tiers.TierAt(ctx, owner, now.Add(-s.cfg.TierChangeHold))
	if err != nil && !errors.Is(err, auth.ErrUserNotFound) {
		return "", err
	}
	if err == nil {
		cur, err := s.cfg.Tiers.TierAt(ctx, owner, now)
		if err != nil {
			return "", err
		}
		if cur.Name != then.Name {
			return "", ErrPayoutHeld.WithMessage("payouts resume a week after a tier change")
		}
	}
	recent, err := s.store.Payouts(ctx, PayoutFilter{Owner: owner, Limit: s.cfg.MaxPayoutsPerWeek + 1})
	if err != nil {
		return "", err
	}
	n := 0
	for _, p := range recent {
		if p.Status == PayoutPending {
			return "", ErrPayoutInProgress
		}
		if p.Status == PayoutPaid && now.Sub(p.CreatedAt) < 7*24*time.Hour {
			n++
		}
	}
	if n >= s.cfg.MaxPayoutsPerWeek {
		return "", ErrTooManyPayouts
	}
	if s.Manual() {
		return "", nil
	}
	payee, err := s.store.Payee(ctx, owner)
	if errors.Is(err, ErrPayeeNotFound) {
		return "", ErrNoPayee
	}
	if err != nil {
		return "", err
	}
	switch {
	case !payee.TransfersEnabled || !payee.PayoutsEnabled:
		return "", ErrNoPayee.WithMessage("the payout account cannot receive money yet: finish its onboarding")
	case now.Sub(payee.CreatedAt) < s.cfg.NewPayeeHold:
		return "", ErrPayoutHeld.WithMessage("a new payout account's first payout waits a week")
	}
	return payee.ID, nil
}

// runPayout makes a pending payout's transfer: the job of a payout. It is
// safe to run any number of times: the transfer's idempotency key and group
// are the payout's id; a success posts, a definite failure voids, an
// ambiguous one is retried (by the job) with the same key; past the
// processor's key window (a day), the transfers of the payout's group are
// looked up before anything new is tried.
func (s *Service) runPayout(ctx context.Context, id uuid.UUID) error {
	po, err := s.store.Payout(ctx, id)
	if err != nil {
		return err
	}
	if po.Status != PayoutPending || po.Manual {
		return nil
	}
	group := po.ID.String()
	if po.Attempts > 0 && s.now().Sub(po.CreatedAt) > 23*time.Hour {
		made, err := s.cfg.Processor.TransfersInGroup(ctx, group)
		if err != nil {
			return err
		}
		for _, t := range made {
			if t.Payout == po.ID || t.Group == group {
				return s.finishPayout(ctx, po, t.ID, nil)
			}
		}
	}
	po.Attempts++
	po.UpdatedAt = s.now().UTC()
	if err := s.store.Apply(ctx, Write{Payout: &po}); err != nil {
		return err
	}
	po.Version++
	t, err := s.cfg.Processor.Transfer(ctx, TransferRequest{Key: group, Destination: po.Destination, Amount: po.Amount,
		Currency: po.Currency, Group: group, Payout: po.ID})
	switch {
	case err == nil:
		return s.finishPayout(ctx, po, t.ID, nil)
	case IsDefinite(err):
		return s.finishPayout(ctx, po, "", err)
	}
	s.logger.WarnContext(ctx, "billing: transfer outcome unknown; retrying with the same key", slog.String("payout", group), slog.Any("error", err))
	return err
}

// finishPayout ends a pending payout: paid with transferID, or voided by
// failure (the reserve goes back to available).
func (s *Service) finishPayout(ctx context.Context, po Payout, transferID string, failure error) error {
	micros, _ := po.Currency.FromMinor(po.Amount)
	now := s.now().UTC()
	var t Transaction
	if failure == nil {
		po.Status, po.TransferID = PayoutPaid, transferID
		t = Transaction{Key: "payout:" + po.ID.String() + ":paid", Kind: TxPayoutPaid, EffectiveAt: now, Memo: "payout paid",
			Entries: []Entry{{Account: UserAccount(InTransit, po.Owner, po.Currency), Side: Debit, Amount: micros},
				{Account: PlatformAccount(PlatformCash, po.Currency), Side: Credit, Amount: micros}}}
	} else {
		po.Status, po.LastError = PayoutVoided, safeMessage(failure)
		t = Transaction{Key: "payout:" + po.ID.String() + ":void", Kind: TxPayoutVoid, EffectiveAt: now, Memo: "payout voided",
			Entries: []Entry{{Account: UserAccount(InTransit, po.Owner, po.Currency), Side: Debit, Amount: micros},
				{Account: UserAccount(Available, po.Owner, po.Currency), Side: Credit, Amount: micros}}}
	}
	t.Refs = map[string]string{"payout": po.ID.String()}
	if transferID != "" {
		t.Refs["transfer"] = transferID
	}
	po.UpdatedAt = now
	if err := s.store.Apply(ctx, Write{Post: []Transaction{t}, Payout: &po}); err != nil {
		return err
	}
	s.metrics.payouts.WithLabelValues(string(po.Status)).Inc()
	if failure != nil && s.cfg.Alerts != nil {
		s.cfg.Alerts.Alert(ctx, po.Owner, "payout_failed", "Your payout could not be sent: "+po.LastError+". The money is back in your balance.")
	}
	return nil
}

// codeOf is err's code, "internal" for an error without one.
func codeOf(err error) string {
	if e := errs.As(err); e != nil {
		return e.Code
	}
	return "internal"
}

// safeMessage is what a failure may say to the owner.
func safeMessage(err error) string {
	var pe *ProcessorError
	if errors.As(err, &pe) {
		return pe.Code
	}
	if e := errs.As(err); e != nil {
		return e.Message
	}
	return "failed"
}

// RecordPayout records, in manual mode, that an admin paid a pending payout
// (paid true) or could not (the reserve goes back to available). Audited.
func (s *Service) RecordPayout(ctx context.Context, p auth.Principal, id uuid.UUID, paid bool, note string) (Payout, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermBillingManage); err != nil {
		return Payout{}, err
	}
	po, err := s.store.Payout(ctx, id)
	if err != nil {
		return Payout{}, err
	}
	if po.Status != PayoutPending || !po.Manual {
		return Payout{}, ErrPayoutNotPending
	}
	var failure error
	if !paid {
		failure = errs.New(errs.Conflict, "manual_payout_failed", "the payment could not be made")
	}
	if err := s.finishPayout(ctx, po, "manual:"+p.UserID.String(), failure); err != nil {
		return Payout{}, err
	}
	s.record(ctx, auth.AuditEvent{ActorID: p.UserID, Action: AuditPayoutRecorded, TargetType: "payout", TargetID: id.String(),
		Reason: note, Details: map[string]string{"paid": strconv.FormatBool(paid)}})
	return s.store.Payout(ctx, id)
}

// payoutSchedule pays out every owner whose available earnings reach
// their tier's minimum and who may be paid: the periodic job.
func (s *Service) payoutSchedule(ctx context.Context) error {
	floor := int64(1)
	var after AccountID
	for {
		page, err := s.store.AccountsAtLeast(ctx, Available, s.cfg.Currency, floor, after, settlePageSize)
		if err != nil {
			return err
		}
		for _, b := range page {
			a, err := ParseAccount(b.Account)
			if err != nil {
				continue
			}
			if _, err := s.createPayout(ctx, a.User, 0, true); err != nil {
				if e := errs.As(err); e == nil || e.Kind == errs.Internal {
					s.logger.WarnContext(ctx, "billing: scheduled payout failed", slog.String("owner", a.User.String()), slog.Any("error", err))
				}
				continue // below the minimum, held, not onboarded...: next time
			}
		}
		if len(page) < settlePageSize {
			return nil
		}
		after = page[len(page)-1].Account
	}
}

// formatMicros writes an amount in the service's currency, for messages.
func (s *Service) formatMicros(m int64) string {
	minor, _ := s.cfg.Currency.ToMinor(m)
	exp := 0
	for d := s.cfg.Currency.MicrosPerMinor(); d < MicrosPerUnit; d *= 10 {
		exp++
	}
	if exp == 0 {
		return strconv.FormatInt(minor, 10) + " " + string(s.cfg.Currency)
	}
	unit := int64(1)
	for range exp {
		unit *= 10
	}
	return fmt.Sprintf("%d.%0*d %s", minor/unit, exp, minor%unit, s.cfg.Currency)
}
