// Package billingtest helps test code that moves money through a
// billing.Processor and reads the processor's webhooks: [Processor], a
// stateful in-memory fake that behaves like Stripe Connect where adshare
// depends on it (balances, idempotent replay, refusals, failures injected
// before or after the work), the events it emits as billing.Event values
// ([Delivery] duplicates and reorders them), and [Signer], which turns an
// event into the signed Stripe webhook a billing/stripe.Webhooks reads.
//
// stripe-mock checks the shape of billing/stripe's requests but keeps no
// state; this fake is where behaviour is tested, by adshare and by hosts.
package billingtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/stripe"
)

// Defaults of ProcessorConfig.
const (
	// DefaultDisputeFee is what a dispute costs the platform (Stripe's US
	// fee, in cents).
	DefaultDisputeFee = 1500
)

// DefaultFee is Stripe's US card fee: 2.9% (rounded down) plus 30 minor
// units.
func DefaultFee(amount int64, _ billing.Currency) int64 { return amount*29/1000 + 30 }

// Stripe's codes the fake answers with.
const (
	// CodeBalanceInsufficient: a transfer larger than the platform's
	// available balance (definite).
	CodeBalanceInsufficient = "balance_insufficient"
	// CodeResourceMissing: no object has the id (definite).
	CodeResourceMissing = "resource_missing"
	// CodeNoTransfers: the destination's transfers capability is not
	// active (definite).
	CodeNoTransfers = "insufficient_capabilities_for_transfer"
	// CodeRateLimit: an injected 429 (ambiguous).
	CodeRateLimit = "rate_limit"
)

// Method names a Processor method, for FailNext.
type Method string

// The Processor's methods.
const (
	MethodCreatePayment       Method = "CreatePayment"
	MethodPayment             Method = "Payment"
	MethodCreateAccount       Method = "CreateAccount"
	MethodAccount             Method = "Account"
	MethodOnboardingLink      Method = "OnboardingLink"
	MethodTransfer            Method = "Transfer"
	MethodTransfersInGroup    Method = "TransfersInGroup"
	MethodBalanceTransactions Method = "BalanceTransactions"
	MethodTransfers           Method = "Transfers"
	MethodCloseAccount        Method = "CloseAccount"
)

// Failure is a failure FailNext injects.
type Failure int

// The failures.
const (
	// FailTimeout: the call does its work (and a creating call's result is
	// stored under its key), then fails as a timed-out call does:
	// ambiguous, code stripe.CodeTimeout. A retry with the same key gets
	// the stored result; nothing happens twice.
	FailTimeout Failure = iota + 1
	// FailServerError: a 500 before any work; ambiguous, code
	// stripe.CodeServerError. Like Stripe, a creating call stores the 500
	// under its key and replays it to every retry with that key: the
	// caller must look the result up (TransfersInGroup) instead.
	FailServerError
	// FailRateLimit: a 429 before any work; ambiguous, code
	// CodeRateLimit. Nothing is stored: a retry with the same key runs.
	FailRateLimit
)

// ProcessorConfig configures NewProcessor; every field has a default.
type ProcessorConfig struct {
	// Now stamps objects and events (to the second, in UTC, as Stripe
	// does). Defaults to time.Now.
	Now func() time.Time
	// Fee is the processor's fee on a successful payment. Defaults to
	// DefaultFee.
	Fee func(amount int64, c billing.Currency) int64
	// DisputeFee is taken from the balance with each dispute. Defaults to
	// DefaultDisputeFee; negative means none.
	DisputeFee int64
}

// Processor is a billing.Processor in memory that keeps Stripe's books: a
// platform balance per currency, payments with statuses, connected
// accounts with flags the test sets, transfers and their groups, balance
// transactions, and idempotency keys (a key replays its first result; the
// same key with other parameters, or for another method, is a definite
// error, code stripe.CodeIdempotencyKeyReused). Refusals (invalid
// requests, insufficient balance, unknown objects) are definite and not
// stored under the key (Stripe stores only requests that began executing),
// so a retry with the same key after topping up the balance goes through.
//
// The test drives what Stripe would do on its own: SucceedPayment,
// DeclinePayment, RefundPayment, DisputePayment, UpdateAccount,
// ReverseTransfer, FailPayout... Each change emits the event Stripe would
// send (Events, TakeEvents), as billing/stripe.Webhooks would read it.
// Safe for concurrent use.
type Processor struct {
	cfg ProcessorConfig

	mu        sync.Mutex
	seq       int
	balance   map[billing.Currency]int64
	payments  map[string]*payment
	accounts  map[string]*billing.ConnectedAccount
	transfers []*billing.Transfer // in creation order
	disputes  map[string]*billing.Dispute
	txns      []billing.BalanceTransaction // in creation order
	keys      map[string]stored
	failures  map[Method][]Failure
	events    []billing.Event
	taken     int      // events[:taken] were returned by TakeEvents
	closed    []string // accounts closed, in order
}

var (
	_ billing.Processor     = (*Processor)(nil)
	_ billing.AccountCloser = (*Processor)(nil)
)

type payment struct {
	billing.Payment
	charge string
}

// stored is what an idempotency key remembers.
type stored struct {
	method  Method
	request any // the request, compared with ==
	result  any
	err     error
}

// NewProcessor returns an empty Processor: no balance, no objects.
func NewProcessor(cfg ProcessorConfig) *Processor {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Fee == nil {
		cfg.Fee = DefaultFee
	}
	if cfg.DisputeFee == 0 {
		cfg.DisputeFee = DefaultDisputeFee
	}
	cfg.DisputeFee = max(cfg.DisputeFee, 0)
	return &Processor{
		cfg:      cfg,
		balance:  map[billing.Currency]int64{},
		payments: map[string]*payment{},
		accounts: map[string]*billing.ConnectedAccount{},
		disputes: map[string]*billing.Dispute{},
		keys:     map[string]stored{},
		failures: map[Method][]Failure{},
	}
}

// FailNext makes the next call of m fail with f (calls queue up: FailNext
// twice fails the next two).
func (p *Processor) FailNext(m Method, f Failure) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures[m] = append(p.failures[m], f)
}

// SetBalance sets the platform's available balance in c (minor units).
func (p *Processor) SetBalance(c billing.Currency, amount int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.balance[c] = amount
}

// Balance is the platform's available balance in c (minor units).
func (p *Processor) Balance(c billing.Currency) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.balance[c]
}

// CreatePayment implements billing.Processor: a pending payment, with a
// client secret.
func (p *Processor) CreatePayment(ctx context.Context, r billing.PaymentRequest) (billing.Payment, error) {
	return keyed(p, ctx, MethodCreatePayment, r.Key, r, r.Validate, func() (billing.Payment, error) {
		id := p.id("pi")
		pay := &payment{Payment: billing.Payment{
			ID: id, Advertiser: r.Advertiser, Amount: r.Amount, Currency: r.Currency,
			Status: billing.PaymentPending, ClientSecret: id + "_secret_fake", Created: p.now(),
		}}
		p.payments[id] = pay
		p.emit("payment_intent.created", "", nil)
		return pay.Payment, nil
	})
}

// Payment implements billing.Processor: the payment with its fee, refunds
// and disputes, never its client secret.
func (p *Processor) Payment(ctx context.Context, id string) (billing.Payment, error) {
	return read(p, ctx, MethodPayment, func() (billing.Payment, error) {
		pay, err := p.payment(id)
		if err != nil {
			return billing.Payment{}, err
		}
		out := pay.Payment
		out.ClientSecret = ""
		return out, nil
	})
}

// CreateAccount implements billing.Processor: an account that can do
// nothing yet, with the requirements of a new Express account due.
func (p *Processor) CreateAccount(ctx context.Context, r billing.AccountRequest) (billing.ConnectedAccount, error) {
	return keyed(p, ctx, MethodCreateAccount, r.Key, r, r.Validate, func() (billing.ConnectedAccount, error) {
		a := &billing.ConnectedAccount{
			ID: p.id("acct"), Owner: r.Owner,
			RequirementsDue: []string{"business_profile.url", "external_account", "individual.verification.document", "tos_acceptance.date"},
		}
		p.accounts[a.ID] = a
		return cloneAccount(*a), nil
	})
}

// Account implements billing.Processor.
func (p *Processor) Account(ctx context.Context, id string) (billing.ConnectedAccount, error) {
	return read(p, ctx, MethodAccount, func() (billing.ConnectedAccount, error) {
		a, err := p.account(id)
		if err != nil {
			return billing.ConnectedAccount{}, err
		}
		return cloneAccount(*a), nil
	})
}

// OnboardingLink implements billing.Processor: a fresh URL each time.
func (p *Processor) OnboardingLink(ctx context.Context, accountID, refreshURL, returnURL string) (string, error) {
	if err := billing.ValidateOnboardingLink(accountID, refreshURL, returnURL); err != nil {
		return "", err
	}
	return read(p, ctx, MethodOnboardingLink, func() (string, error) {
		if _, err := p.account(accountID); err != nil {
			return "", err
		}
		return "https://connect.stripe.com/setup/e/" + accountID + "/" + p.id("link"), nil
	})
}

// Transfer implements billing.Processor: it takes r.Amount from the
// available balance, refusing (definite) an unknown destination
// (CodeResourceMissing), one whose transfers are not enabled
// (CodeNoTransfers), and a balance too low (CodeBalanceInsufficient).
func (p *Processor) Transfer(ctx context.Context, r billing.TransferRequest) (billing.Transfer, error) {
	return keyed(p, ctx, MethodTransfer, r.Key, r, r.Validate, func() (billing.Transfer, error) {
		a, err := p.account(r.Destination)
		if err != nil {
			return billing.Transfer{}, err
		}
		if !a.TransfersEnabled {
			return billing.Transfer{}, p.refusal(CodeNoTransfers, "the destination account's transfers capability is not active")
		}
		if p.balance[r.Currency] < r.Amount {
			return billing.Transfer{}, p.refusal(CodeBalanceInsufficient,
				fmt.Sprintf("the platform's available %s balance (%d) is lower than the transfer (%d)", r.Currency, p.balance[r.Currency], r.Amount))
		}
		t := &billing.Transfer{
			ID: p.id("tr"), Destination: r.Destination, Amount: r.Amount, Currency: r.Currency,
			Group: r.Group, Payout: r.Payout, Created: p.now(),
		}
		p.transfers = append(p.transfers, t)
		p.move(r.Currency, -r.Amount, 0, "transfer", t.ID)
		p.emit("transfer.created", "", nil)
		return *t, nil
	})
}

// TransfersInGroup implements billing.Processor, newest first.
func (p *Processor) TransfersInGroup(ctx context.Context, group string) ([]billing.Transfer, error) {
	if group == "" {
		return nil, billing.NewProcessorError(true, billing.CodeInvalidRequest, "the transfer group is required", "", nil)
	}
	return read(p, ctx, MethodTransfersInGroup, func() ([]billing.Transfer, error) {
		return p.listTransfers(func(t *billing.Transfer) bool { return t.Group == group }), nil
	})
}

// Transfers implements billing.Processor, newest first.
func (p *Processor) Transfers(ctx context.Context, since time.Time) ([]billing.Transfer, error) {
	return read(p, ctx, MethodTransfers, func() ([]billing.Transfer, error) {
		return p.listTransfers(func(t *billing.Transfer) bool { return !t.Created.Before(since) }), nil
	})
}

// BalanceTransactions implements billing.Processor, newest first: a
// payment's charge (with its fee), transfers, their reversals
// (transfer_refund), refunds, disputes and their reversal (adjustment).
func (p *Processor) BalanceTransactions(ctx context.Context, since time.Time) ([]billing.BalanceTransaction, error) {
	return read(p, ctx, MethodBalanceTransactions, func() ([]billing.BalanceTransaction, error) {
		var out []billing.BalanceTransaction
		for _, bt := range slices.Backward(p.txns) {
			if !bt.Created.Before(since) {
				out = append(out, bt)
			}
		}
		return out, nil
	})
}

func (p *Processor) listTransfers(keep func(*billing.Transfer) bool) []billing.Transfer {
	var out []billing.Transfer
	for _, t := range slices.Backward(p.transfers) {
		if keep(t) {
			out = append(out, *t)
		}
	}
	return out
}

// keyed runs a creating call: validation, the context, the key's replay,
// injected failures, then work, all under the lock.
func keyed[T any](p *Processor, ctx context.Context, m Method, key string, req any, validate func() error, work func() (T, error)) (T, error) {
	var zero T
	if err := validate(); err != nil {
		return zero, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := ctxError(ctx); err != nil {
		return zero, err
	}
	if s, ok := p.keys[key]; ok {
		if s.method != m || s.request != req {
			return zero, billing.NewProcessorError(true, stripe.CodeIdempotencyKeyReused,
				"keys for idempotent requests can only be used with the same parameters they were first used with", p.requestID(), nil)
		}
		if s.err != nil {
			return zero, s.err
		}
		return s.result.(T), nil
	}
	f := p.takeFailure(m)
	switch f {
	case FailServerError:
		err := p.serverError()
		p.keys[key] = stored{method: m, request: req, err: err}
		return zero, err
	case FailRateLimit:
		return zero, p.rateLimited()
	}
	res, err := work()
	if err != nil {
		return zero, err
	}
	p.keys[key] = stored{method: m, request: req, result: res}
	if f == FailTimeout {
		return zero, p.timedOut()
	}
	return res, nil
}

// read runs a call that changes nothing: the context, injected failures,
// then work, under the lock.
func read[T any](p *Processor, ctx context.Context, m Method, work func() (T, error)) (T, error) {
	var zero T
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := ctxError(ctx); err != nil {
		return zero, err
	}
	switch p.takeFailure(m) {
	case FailServerError:
		return zero, p.serverError()
	case FailRateLimit:
		return zero, p.rateLimited()
	case FailTimeout:
		return zero, p.timedOut()
	}
	return work()
}

func (p *Processor) takeFailure(m Method) Failure {
	q := p.failures[m]
	if len(q) == 0 {
		return 0
	}
	p.failures[m] = q[1:]
	return q[0]
}

// ctxError is what a call whose context already ended gets: ambiguous, as
// billing/stripe reports it (it cannot know whether the request left).
func ctxError(ctx context.Context) error {
	switch err := ctx.Err(); {
	case errors.Is(err, context.DeadlineExceeded):
		return billing.NewProcessorError(false, stripe.CodeTimeout, "the call to Stripe timed out; it may have been carried out", "", err)
	case err != nil:
		return billing.NewProcessorError(false, stripe.CodeCanceled, "the call to Stripe was canceled; it may have been carried out", "", err)
	}
	return nil
}

func (p *Processor) timedOut() error {
	return billing.NewProcessorError(false, stripe.CodeTimeout, "the call to Stripe timed out; it may have been carried out", "", context.DeadlineExceeded)
}

func (p *Processor) serverError() error {
	return billing.NewProcessorError(false, stripe.CodeServerError, "an error occurred with our connection to Stripe (injected)", p.requestID(), nil)
}

func (p *Processor) rateLimited() error {
	return billing.NewProcessorError(false, CodeRateLimit, "too many requests hit the API too quickly (injected)", p.requestID(), nil)
}

func (p *Processor) refusal(code, msg string) error {
	return billing.NewProcessorError(true, code, msg, p.requestID(), nil)
}

func (p *Processor) payment(id string) (*payment, error) {
	pay, ok := p.payments[id]
	if !ok {
		return nil, p.refusal(CodeResourceMissing, "no such payment_intent: '"+id+"'")
	}
	return pay, nil
}

func (p *Processor) account(id string) (*billing.ConnectedAccount, error) {
	a, ok := p.accounts[id]
	if !ok {
		return nil, p.refusal(CodeResourceMissing, "no such account: '"+id+"'")
	}
	return a, nil
}

func (p *Processor) transfer(id string) (*billing.Transfer, error) {
	for _, t := range p.transfers {
		if t.ID == id {
			return t, nil
		}
	}
	return nil, p.refusal(CodeResourceMissing, "no such transfer: '"+id+"'")
}

// move changes the balance by amount less fee, recording the balance
// transaction.
func (p *Processor) move(c billing.Currency, amount, fee int64, typ, source string) {
	p.moveFor(c, amount, fee, typ, source, "")
}

// moveFor is move for a charge of payment.
func (p *Processor) moveFor(c billing.Currency, amount, fee int64, typ, source, payment string) {
	p.balance[c] += amount - fee
	p.txns = append(p.txns, billing.BalanceTransaction{
		ID: p.id("txn"), Type: typ, Amount: amount, Fee: fee, Net: amount - fee,
		Source: source, Payment: payment, Currency: c, Created: p.now(),
	})
}

// id returns a fresh Stripe-looking id with prefix.
func (p *Processor) id(prefix string) string {
	p.seq++
	return fmt.Sprintf("%s_fake%06d", prefix, p.seq)
}

func (p *Processor) requestID() string { return p.id("req") }

// now is the configured clock to the second, in UTC: what a Stripe
// timestamp can say.
func (p *Processor) now() time.Time { return time.Unix(p.cfg.Now().Unix(), 0).UTC() }

func cloneAccount(a billing.ConnectedAccount) billing.ConnectedAccount {
	a.RequirementsDue = slices.Clone(a.RequirementsDue)
	return a
}

// CloseAccount implements billing.AccountCloser: the account is gone
// (reads of it are resource_missing), and Closed lists it. Closing an
// account it does not have is not an error.
func (p *Processor) CloseAccount(ctx context.Context, id string) error {
	_, err := read(p, ctx, MethodCloseAccount, func() (struct{}, error) {
		if _, ok := p.accounts[id]; ok {
			delete(p.accounts, id)
			p.closed = append(p.closed, id)
		}
		return struct{}{}, nil
	})
	return err
}

// Closed returns the ids of the accounts CloseAccount closed, in order.
func (p *Processor) Closed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.closed...)
}
