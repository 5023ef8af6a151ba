package billingtest

import (
	"errors"
	"math/rand/v2"
	"slices"

	"github.com/adshare/adshare/billing"
)

// What Stripe does on its own, driven by the test. Each emits the event
// Stripe would send, with the object as the event would carry it (see
// billing/stripe's package doc: a payment_intent event has no fee, a
// charge.refunded no refund id); reading the object again (Payment,
// Account) gives the rest.

// SucceedPayment makes a pending (or declined) payment succeed: the
// amount less the fee joins the available balance at once (a charge
// balance transaction), and payment_intent.succeeded is emitted.
func (p *Processor) SucceedPayment(id string) error {
	return p.changePayment(id, open, "only a pending or declined payment can succeed", func(pay *payment) {
		pay.Status = billing.PaymentSucceeded
		pay.charge = p.id("ch")
		pay.Fee = p.cfg.Fee(pay.Amount, pay.Currency)
		p.moveFor(pay.Currency, pay.Amount, pay.Fee, "charge", pay.charge, pay.ID)
		p.emitPayment(billing.EventPaymentSucceeded, pay)
	})
}

// DeclinePayment fails a pending payment's attempt (the payer may try
// again: SucceedPayment still works) and emits
// payment_intent.payment_failed.
func (p *Processor) DeclinePayment(id string) error {
	return p.changePayment(id, open, "only a pending payment can be declined", func(pay *payment) {
		pay.Status = billing.PaymentFailed
		p.emitPayment(billing.EventPaymentFailed, pay)
	})
}

// CancelPayment cancels a payment that has not succeeded and emits
// payment_intent.canceled (a type adshare does not act on: its Event has
// only the envelope).
func (p *Processor) CancelPayment(id string) error {
	return p.changePayment(id, open, "only a pending or declined payment can be canceled", func(pay *payment) {
		pay.Status = billing.PaymentCanceled
		p.emit("payment_intent.canceled", "", nil)
	})
}

// RefundPayment refunds amount of a succeeded payment (up to what is not
// refunded yet; never a disputed one, as Stripe refuses with
// charge_disputed), from the balance (which may go below zero), and emits
// charge.refunded with the total refunded.
func (p *Processor) RefundPayment(id string, amount int64) error {
	refundable := func(pay *payment) bool {
		return pay.Status == billing.PaymentSucceeded && pay.Disputed == 0 && amount > 0 && amount <= pay.Amount-pay.Refunded
	}
	return p.changePayment(id, refundable, "a refund needs a succeeded payment not disputed (Stripe's charge_disputed) and an amount up to what is not refunded yet", func(pay *payment) {
		pay.Refunded += amount
		p.move(pay.Currency, -amount, 0, "refund", p.id("re"))
		p.emit(billing.EventChargeRefunded, "", func(e *billing.Event) {
			e.Refund = &billing.Refund{Payment: pay.ID, Charge: pay.charge, Amount: pay.Refunded, Currency: pay.Currency}
		})
	})
}

// DisputePayment opens a dispute of amount (up to what is not refunded)
// on a succeeded payment: the
// amount and ProcessorConfig.DisputeFee leave the balance, the payment's
// Disputed becomes its whole amount from then on (what billing/stripe can
// read: the charge's disputed flag), and charge.dispute.created is
// emitted. It returns the dispute's id.
func (p *Processor) DisputePayment(id string, amount int64) (string, error) {
	disputable := func(pay *payment) bool {
		return pay.Status == billing.PaymentSucceeded && pay.Disputed == 0 && amount > 0 && amount <= pay.Amount-pay.Refunded
	}
	var d *billing.Dispute
	err := p.changePayment(id, disputable, "a dispute needs a succeeded payment not disputed before (a charge has one dispute at most) and an amount up to what is not refunded", func(pay *payment) {
		d = &billing.Dispute{
			ID: p.id("du"), Payment: pay.ID, Charge: pay.charge, Amount: amount, Currency: pay.Currency,
			Status: "needs_response", Fee: p.cfg.DisputeFee,
		}
		p.disputes[d.ID] = d
		pay.Disputed = pay.Amount // as billing/stripe reads it: the charge's disputed flag, which stays
		p.move(pay.Currency, -amount, d.Fee, "adjustment", d.ID)
		p.emitDispute(billing.EventDisputeCreated, d)
	})
	if err != nil {
		return "", err
	}
	return d.ID, nil
}

// open says whether a payment can still succeed, fail or be canceled.
func open(pay *payment) bool {
	return pay.Status == billing.PaymentPending || pay.Status == billing.PaymentFailed
}

// changePayment runs change on payment id under the lock, when allowed
// says the payment is in a state for it; else the error says why not.
func (p *Processor) changePayment(id string, allowed func(*payment) bool, why string, change func(*payment)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pay, err := p.payment(id)
	if err != nil {
		return err
	}
	if !allowed(pay) {
		return errors.New("billingtest: " + why + " (the payment is " + string(pay.Status) + ")")
	}
	change(pay)
	return nil
}

// CloseDispute closes a dispute, won (the amount comes back to the
// balance; the fee does not) or lost, and emits charge.dispute.closed.
func (p *Processor) CloseDispute(id string, won bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.disputes[id]
	if !ok {
		return p.refusal(CodeResourceMissing, "no such dispute: '"+id+"'")
	}
	if d.Status == "won" || d.Status == "lost" {
		return errors.New("billingtest: the dispute is already closed")
	}
	d.Status = "lost"
	if won {
		d.Status = "won"
		p.move(d.Currency, d.Amount, 0, "adjustment", d.ID)
	}
	p.emitDispute(billing.EventDisputeClosed, d)
	return nil
}

// UpdateAccount changes a connected account's flags and requirements
// (its ID and Owner stay) and emits account.updated, from the account.
func (p *Processor) UpdateAccount(id string, change func(*billing.ConnectedAccount)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, err := p.account(id)
	if err != nil {
		return err
	}
	keep, owner := a.ID, a.Owner
	change(a)
	a.ID, a.Owner = keep, owner
	p.emit(billing.EventAccountUpdated, a.ID, func(e *billing.Event) {
		c := cloneAccount(*a)
		e.Connect = &c
	})
	return nil
}

// EnableAccount is UpdateAccount to a fully onboarded account: details
// submitted, transfers and payouts enabled, nothing due.
func (p *Processor) EnableAccount(id string) error {
	return p.UpdateAccount(id, func(a *billing.ConnectedAccount) {
		a.DetailsSubmitted, a.TransfersEnabled, a.PayoutsEnabled = true, true, true
		a.RequirementsDue, a.DisabledReason = nil, ""
	})
}

// ReverseTransfer reverses amount of a transfer (up to what is not
// reversed yet) back into the balance and emits transfer.reversed with the
// total reversed.
func (p *Processor) ReverseTransfer(id string, amount int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, err := p.transfer(id)
	if err != nil {
		return err
	}
	if amount <= 0 || amount > t.Amount-t.Reversed {
		return errors.New("billingtest: a reversal needs an amount up to what is not reversed yet")
	}
	t.Reversed += amount
	p.move(t.Currency, amount, 0, "transfer_refund", p.id("trr"))
	p.emit(billing.EventTransferReversed, "", func(e *billing.Event) {
		c := *t
		e.Transfer = &c
	})
	return nil
}

// FailPayout has a connected account's payout to its bank fail with
// failureCode ("account_closed", "no_account"...) and emits payout.failed
// on that account. The platform's balance is not touched: the money stays
// in the owner's Stripe balance. It returns the payout's id.
func (p *Processor) FailPayout(accountID string, amount int64, c billing.Currency, failureCode string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.account(accountID); err != nil {
		return "", err
	}
	po := billing.ConnectedPayout{ID: p.id("po"), Amount: amount, Currency: c, Status: "failed", FailureCode: failureCode}
	p.emit(billing.EventPayoutFailed, accountID, func(e *billing.Event) { e.Payout = &po })
	return po.ID, nil
}

// Events returns every event emitted so far, in order.
func (p *Processor) Events() Delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// TakeEvents returns the events emitted since the last TakeEvents, in
// order (Events still has them).
func (p *Processor) TakeEvents() Delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.events[p.taken:])
	p.taken = len(p.events)
	return out
}

// emitPayment emits a payment_intent event with the payment as the event
// shows it: no fee, refunds or disputes (the latest charge is not
// expanded), no client secret.
func (p *Processor) emitPayment(typ billing.EventType, pay *payment) {
	p.emit(typ, "", func(e *billing.Event) {
		v := billing.Payment{
			ID: pay.ID, Advertiser: pay.Advertiser, Amount: pay.Amount, Currency: pay.Currency,
			Status: pay.Status, Created: pay.Created,
		}
		e.Payment = &v
	})
}

func (p *Processor) emitDispute(typ billing.EventType, d *billing.Dispute) {
	p.emit(typ, "", func(e *billing.Event) {
		c := *d
		e.Dispute = &c
	})
}

// emit records an event; object sets its object (nil for the types
// adshare does not act on, whose Event is only the envelope).
func (p *Processor) emit(typ billing.EventType, account string, object func(*billing.Event)) {
	e := billing.Event{ID: p.id("evt"), Type: typ, Account: account, Created: p.now()}
	if object != nil {
		object(&e)
	}
	p.events = append(p.events, e)
}

// Delivery is events as an endpoint receives them. Stripe delivers at
// least once and in no particular order; these methods make a delivery
// that does the same. Each returns a new Delivery.
type Delivery []billing.Event

// Duplicate delivers the i-th event again, at the end.
func (d Delivery) Duplicate(i int) Delivery {
	return append(slices.Clone(d), d[i])
}

// Reverse delivers the events last first.
func (d Delivery) Reverse() Delivery {
	out := slices.Clone(d)
	slices.Reverse(out)
	return out
}

// Shuffle delivers the events in an order drawn from seed (the same seed,
// the same order).
func (d Delivery) Shuffle(seed uint64) Delivery {
	out := slices.Clone(d)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
