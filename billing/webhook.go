package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/internal/jobs"
)

// errParentPending parks an event about a payment whose own success has
// not been applied yet (events come in any order): the job tries again a
// little later without spending an attempt.
var errParentPending = jobs.Snooze(30 * time.Second)

// ErrWebhooksOff: no EventVerifier is configured.
var ErrWebhooksOff = errs.New(errs.NotFound, "webhooks_not_configured", "webhooks are not configured")

// ReceiveEvent takes a webhook: it verifies the signature over the raw
// payload (errors of EventVerifier.VerifyEvent: the processor gets a 400),
// stores the event by id (a duplicate changes nothing), and has it applied
// in the background, so that the processor gets its answer at once. A
// store failure is returned (the processor then retries: a 500).
func (s *Service) ReceiveEvent(ctx context.Context, payload []byte, signature string) (Event, error) {
	if s.cfg.Events == nil {
		return Event{}, ErrWebhooksOff
	}
	e, err := s.cfg.Events.VerifyEvent(payload, signature, s.now())
	if err != nil {
		s.metrics.events.WithLabelValues(eventResult(false, err)).Inc()
		return Event{}, err
	}
	isNew, err := s.store.SaveEvent(ctx, StoredEvent{ID: e.ID, Type: e.Type, Account: e.Account, Created: e.Created,
		Payload: payload, Event: e, ReceivedAt: s.now().UTC()})
	s.metrics.events.WithLabelValues(eventResult(isNew, err)).Inc()
	if err != nil {
		return Event{}, fmt.Errorf("billing: store event %s: %w", e.ID, err)
	}
	if isNew {
		s.enqueue(ctx, jobEvent, eventArgs{Event: e.ID}, "event:"+e.ID)
	}
	return e, nil
}

// applyEvent applies a stored event once: the job of an event. Every
// effect and the mark that the event was applied are one Write, so a crash
// or a second delivery cannot apply it twice. Events may come in any
// order: payments and accounts are read again from the processor where
// their state matters, and postings are keyed by what they record (a
// refund by the charge's refunded total so far), not by the event.
func (s *Service) applyEvent(ctx context.Context, id string) error {
	stored, err := s.store.Event(ctx, id)
	if err != nil {
		return err
	}
	if !stored.ProcessedAt.IsZero() {
		return nil
	}
	e := stored.Event
	if e.Livemode != s.cfg.LiveMode {
		// A live endpoint also receives connected accounts' test events
		// (and a test one must never act on live money).
		return s.markApplied(ctx, id)
	}
	w, err := s.effects(ctx, e)
	if err == nil {
		w.Processed = id
		err = s.store.Apply(ctx, w)
	}
	switch _, parked := jobs.SnoozedFor(err); {
	case err == nil:
		s.metrics.events.WithLabelValues("applied").Inc()
		if w.TopUp != nil && (e.Type == EventPaymentSucceeded || e.Type == EventPaymentFailed) {
			s.metrics.topUps.WithLabelValues(string(w.TopUp.Status)).Inc()
		}
	case errors.Is(err, ErrAlreadyApplied):
		return nil
	case parked:
		s.metrics.events.WithLabelValues("parked").Inc()
	default:
		s.metrics.events.WithLabelValues("failed").Inc()
	}
	return err
}

func (s *Service) markApplied(ctx context.Context, id string) error {
	err := s.store.Apply(ctx, Write{Processed: id})
	if errors.Is(err, ErrAlreadyApplied) {
		return nil
	}
	return err
}

// effects is what an event changes.
func (s *Service) effects(ctx context.Context, e Event) (Write, error) {
	switch e.Type {
	case EventPaymentSucceeded, EventPaymentFailed:
		if e.Payment == nil {
			return Write{}, nil
		}
		return s.paymentEffects(ctx, e.Payment.ID)
	case EventChargeRefunded:
		if e.Refund == nil {
			return Write{}, nil
		}
		return s.refundEffects(ctx, *e.Refund)
	case EventDisputeCreated, EventDisputeClosed:
		if e.Dispute == nil {
			return Write{}, nil
		}
		return s.disputeEffects(ctx, e.Type, *e.Dispute)
	case EventAccountUpdated:
		if e.Connect == nil {
			return Write{}, nil
		}
		return s.accountEffects(ctx, e)
	case EventTransferReversed:
		if e.Transfer == nil {
			return Write{}, nil
		}
		return s.reversalEffects(ctx, *e.Transfer)
	case EventPayoutFailed:
		s.payoutFailed(ctx, e)
	}
	return Write{}, nil
}

// paymentEffects follows a payment to its current state (read again: the
// succeeded and failed events may arrive in either order).
func (s *Service) paymentEffects(ctx context.Context, paymentID string) (Write, error) {
	pay, err := s.cfg.Processor.Payment(ctx, paymentID)
	if err != nil {
		return Write{}, err
	}
	t, err := s.store.TopUpByPayment(ctx, paymentID)
	if errors.Is(err, ErrTopUpNotFound) {
		s.logger.WarnContext(ctx, "billing: a payment of no known top-up", slog.String("payment", paymentID))
		return Write{}, nil
	}
	if err != nil {
		return Write{}, err
	}
	if t.Status != TopUpPending {
		return Write{}, nil // succeeded or failed already: a state only moves forward
	}
	switch pay.Status {
	case PaymentSucceeded:
		if pay.Amount != t.Amount || pay.Currency != t.Currency {
			return Write{}, fmt.Errorf("billing: payment %s is %d %s, its top-up %d %s", paymentID, pay.Amount, pay.Currency, t.Amount, t.Currency)
		}
		w := s.creditWrite(&t, pay.Fee)
		return w, nil
	case PaymentFailed, PaymentCanceled:
		t.Status, t.UpdatedAt = TopUpFailed, s.now().UTC()
		return Write{TopUp: &t}, nil
	}
	return Write{}, nil // still pending: a later event moves it
}

// creditWrite is creditTopUp's write, for an event's Write.
func (s *Service) creditWrite(t *TopUp, fee int64) Write {
	gross, _ := t.Currency.FromMinor(t.Amount)
	feeMicros, _ := t.Currency.FromMinor(min(max(fee, 0), t.Amount))
	tx := Transaction{Key: "topup:" + t.ID.String(), Kind: TxTopUp, EffectiveAt: s.now().UTC(), Memo: "top-up",
		Refs:    map[string]string{"topup": t.ID.String(), "advertiser": t.Advertiser.String()},
		Entries: []Entry{{Account: UserAccount(Budget, t.Advertiser, t.Currency), Side: Credit, Amount: gross}}}
	if t.PaymentID != "" {
		tx.Refs["payment"] = t.PaymentID
	}
	if net := gross - feeMicros; net > 0 {
		tx.Entries = append(tx.Entries, Entry{Account: PlatformAccount(PlatformCash, t.Currency), Side: Debit, Amount: net})
	}
	if feeMicros > 0 {
		tx.Entries = append(tx.Entries, Entry{Account: PlatformAccount(PlatformFees, t.Currency), Side: Debit, Amount: feeMicros})
	}
	t.Status, t.UpdatedAt = TopUpSucceeded, s.now().UTC()
	return Write{Post: []Transaction{tx}, TopUp: t}
}

// takeBack builds the posting that takes amount micros back from an
// advertiser for a refund or dispute: their unspent budget first, the rest
// a loss of the platform's (loss), all out of platform:cash.
func (s *Service) takeBack(ctx context.Context, key string, kind TxKind, t TopUp, amount int64, loss AccountKind, memo string) (Transaction, error) {
	budget := UserAccount(Budget, t.Advertiser, t.Currency)
	bal, err := s.store.Balances(ctx, []AccountID{budget})
	if err != nil {
		return Transaction{}, err
	}
	fromBudget := min(amount, bal[budget].Micros)
	tx := Transaction{Key: key, Kind: kind, EffectiveAt: s.now().UTC(), Memo: memo,
		Refs:    map[string]string{"topup": t.ID.String(), "payment": t.PaymentID},
		Entries: []Entry{{Account: PlatformAccount(PlatformCash, t.Currency), Side: Credit, Amount: amount}}}
	if fromBudget > 0 {
		tx.Entries = append(tx.Entries, Entry{Account: budget, Side: Debit, Amount: fromBudget})
	}
	if rest := amount - fromBudget; rest > 0 {
		tx.Entries = append(tx.Entries, Entry{Account: PlatformAccount(loss, t.Currency), Side: Debit, Amount: rest})
	}
	return tx, nil
}

// refundEffects takes a refund's new part back. r.Amount is the charge's
// refunded total so far, so an older event (a smaller total) changes
// nothing and each total posts once.
func (s *Service) refundEffects(ctx context.Context, r Refund) (Write, error) {
	t, err := s.store.TopUpByPayment(ctx, r.Payment)
	if errors.Is(err, ErrTopUpNotFound) {
		return Write{}, nil
	}
	if err != nil {
		return Write{}, err
	}
	if t.Status == TopUpPending {
		return Write{}, errParentPending // the payment's success has not been applied yet
	}
	if t.Status != TopUpSucceeded || r.Amount <= t.Refunded {
		return Write{}, nil
	}
	delta, _ := t.Currency.FromMinor(r.Amount - t.Refunded)
	tx, err := s.takeBack(ctx, "refund:"+t.PaymentID+":"+strconv.FormatInt(r.Amount, 10), TxRefund, t, delta, PlatformRefunds, "refund")
	if err != nil {
		return Write{}, err
	}
	t.Refunded, t.UpdatedAt = r.Amount, s.now().UTC()
	return Write{Post: []Transaction{tx}, TopUp: &t}, nil
}

// disputeEffects holds a dispute's amount when it opens, and gives it back
// when it is won.
func (s *Service) disputeEffects(ctx context.Context, typ EventType, d Dispute) (Write, error) {
	t, err := s.store.TopUpByPayment(ctx, d.Payment)
	if errors.Is(err, ErrTopUpNotFound) {
		return Write{}, nil
	}
	if err != nil {
		return Write{}, err
	}
	if t.Status == TopUpPending {
		return Write{}, errParentPending
	}
	openKey := "dispute:" + d.ID + ":opened"
	opened, err := s.store.TransactionByKey(ctx, openKey)
	if err != nil && !errors.Is(err, ErrTransactionNotFound) {
		return Write{}, err
	}
	var w Write
	if errors.Is(err, ErrTransactionNotFound) { // a closed event can come before the created one
		amount, _ := t.Currency.FromMinor(d.Amount)
		if opened, err = s.takeBack(ctx, openKey, TxDispute, t, amount, PlatformDisputes, "dispute opened"); err != nil {
			return Write{}, err
		}
		opened.ID = uuid.Must(uuid.NewV7()) // the win may reverse it in the same Write
		w.Post = append(w.Post, opened)
		t.Disputed += d.Amount
	}
	if typ == EventDisputeClosed && d.Status == "won" {
		w.Post = append(w.Post, opened.Reversal("dispute:"+d.ID+":won", s.now().UTC()))
		t.Disputed -= d.Amount
	}
	if typ == EventDisputeClosed && d.Status == "lost" && d.Fee > 0 {
		fee, _ := t.Currency.FromMinor(d.Fee)
		w.Post = append(w.Post, Transaction{Key: "dispute:" + d.ID + ":fee", Kind: TxDispute, EffectiveAt: s.now().UTC(), Memo: "dispute fee",
			Entries: []Entry{{Account: PlatformAccount(PlatformDisputes, t.Currency), Side: Debit, Amount: fee},
				{Account: PlatformAccount(PlatformCash, t.Currency), Side: Credit, Amount: fee}}})
	}
	t.UpdatedAt = s.now().UTC()
	w.TopUp = &t
	return w, nil
}

// accountEffects keeps a payee's flags, from the newest event only.
func (s *Service) accountEffects(ctx context.Context, e Event) (Write, error) {
	p, err := s.store.PayeeByAccountID(ctx, e.Connect.ID)
	if errors.Is(err, ErrPayeeNotFound) {
		return Write{}, nil
	}
	if err != nil {
		return Write{}, err
	}
	if e.Created.Before(p.EventAt) {
		return Write{}, nil
	}
	p.ConnectedAccount.PayoutsEnabled = e.Connect.PayoutsEnabled
	p.ConnectedAccount.TransfersEnabled = e.Connect.TransfersEnabled
	p.ConnectedAccount.DetailsSubmitted = e.Connect.DetailsSubmitted
	p.ConnectedAccount.RequirementsDue = e.Connect.RequirementsDue
	p.ConnectedAccount.DisabledReason = e.Connect.DisabledReason
	p.EventAt, p.UpdatedAt = e.Created, s.now().UTC()
	return Write{Payee: &p}, nil
}

// reversalEffects books a reversed transfer: the money came back from the
// owner's account to the platform's; it returns to the owner's available
// earnings (an admin decides what happens to it next).
func (s *Service) reversalEffects(ctx context.Context, tr Transfer) (Write, error) {
	if tr.Payout == uuid.Nil || tr.Reversed <= 0 {
		return Write{}, nil
	}
	po, err := s.store.Payout(ctx, tr.Payout)
	if errors.Is(err, ErrPayoutNotFound) {
		return Write{}, nil
	}
	if err != nil {
		return Write{}, err
	}
	amount, _ := po.Currency.FromMinor(min(tr.Reversed, po.Amount))
	tx := Transaction{Key: "transfer:" + tr.ID + ":reversed:" + strconv.FormatInt(tr.Reversed, 10), Kind: TxAdjustment,
		EffectiveAt: s.now().UTC(), Memo: "transfer reversed", Refs: map[string]string{"payout": po.ID.String(), "transfer": tr.ID},
		Entries: []Entry{{Account: PlatformAccount(PlatformCash, po.Currency), Side: Debit, Amount: amount},
			{Account: UserAccount(Available, po.Owner, po.Currency), Side: Credit, Amount: amount}}}
	if prev, err := s.store.TransactionByKey(ctx, tx.Key); err == nil && prev.ID != uuid.Nil {
		return Write{}, nil
	}
	return Write{Post: []Transaction{tx}}, nil
}

// payoutFailed tells the owner their bank refused a payout from their
// connected account: the money is in their processor balance, not lost.
func (s *Service) payoutFailed(ctx context.Context, e Event) {
	if s.cfg.Alerts == nil || e.Account == "" {
		return
	}
	p, err := s.store.PayeeByAccountID(ctx, e.Account)
	if err != nil {
		return
	}
	code := ""
	if e.Payout != nil {
		code = e.Payout.FailureCode
	}
	s.cfg.Alerts.Alert(ctx, p.Owner, "payout_failed", "Your bank refused a payout ("+code+"): check your payout details.")
}
