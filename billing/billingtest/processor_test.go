package billingtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/billingtest"
	"github.com/adshare/adshare/billing/stripe"
)

var t0 = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

type testBundle struct {
	p   *billingtest.Processor
	now *time.Time
}

func setup(t *testing.T) testBundle {
	t.Helper()
	now := t0
	return testBundle{p: billingtest.NewProcessor(billingtest.ProcessorConfig{Now: func() time.Time { return now }}), now: &now}
}

// processorErr asserts err is a *billing.ProcessorError and returns it.
func processorErr(t *testing.T, err error) *billing.ProcessorError {
	t.Helper()
	pe, ok := errors.AsType[*billing.ProcessorError](err)
	require.True(t, ok, "%v", err)
	return pe
}

func types(d billingtest.Delivery) []billing.EventType {
	var out []billing.EventType
	for _, e := range d {
		out = append(out, e.Type)
	}
	return out
}

// enabledAccount makes a connected account that can receive transfers.
func enabledAccount(t *testing.T, p *billingtest.Processor) string {
	t.Helper()
	a, err := p.CreateAccount(context.Background(), billing.AccountRequest{Key: "acct-" + uuid.NewString(), Owner: uuid.New()})
	require.NoError(t, err)
	require.NoError(t, p.EnableAccount(a.ID))
	return a.ID
}

func transferTo(dest string, key string, amount int64) billing.TransferRequest {
	return billing.TransferRequest{Key: key, Destination: dest, Amount: amount, Currency: "usd", Group: key, Payout: uuid.New()}
}

func TestPayments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	adv := uuid.New()
	req := billing.PaymentRequest{Key: "topup-1", Advertiser: adv, Amount: 10_000, Currency: "usd", Group: "adv:topup:1"}

	pay, err := b.p.CreatePayment(ctx, req)
	require.NoError(t, err)
	require.Equal(t, billing.PaymentPending, pay.Status)
	require.NotEmpty(t, pay.ClientSecret)
	require.Equal(t, t0, pay.Created)

	again, err := b.p.CreatePayment(ctx, req)
	require.NoError(t, err)
	require.Equal(t, pay, again, "the same key replays the first result")
	changed := req
	changed.Amount = 20_000
	_, err = b.p.CreatePayment(ctx, changed)
	pe := processorErr(t, err)
	require.True(t, pe.Definite)
	require.Equal(t, stripe.CodeIdempotencyKeyReused, pe.Code)
	_, err = b.p.CreateAccount(ctx, billing.AccountRequest{Key: "topup-1", Owner: uuid.New()})
	require.Equal(t, stripe.CodeIdempotencyKeyReused, processorErr(t, err).Code, "a key is for one request, whatever the method")

	_, err = b.p.CreatePayment(ctx, billing.PaymentRequest{Advertiser: adv, Amount: 1, Currency: "usd"})
	require.Equal(t, billing.CodeInvalidRequest, processorErr(t, err).Code, "the same rules as billing/stripe")

	require.NoError(t, b.p.DeclinePayment(pay.ID))
	got, err := b.p.Payment(ctx, pay.ID)
	require.NoError(t, err)
	require.Equal(t, billing.PaymentFailed, got.Status)
	require.Empty(t, got.ClientSecret, "only CreatePayment returns it")

	require.NoError(t, b.p.SucceedPayment(pay.ID))
	fee := billingtest.DefaultFee(10_000, "usd")
	require.Equal(t, int64(320), fee)
	require.Equal(t, 10_000-fee, b.p.Balance("usd"))
	got, err = b.p.Payment(ctx, pay.ID)
	require.NoError(t, err)
	require.Equal(t, billing.PaymentSucceeded, got.Status)
	require.Equal(t, fee, got.Fee, "reading again gives the fee")
	require.Error(t, b.p.SucceedPayment(pay.ID), "once")
	require.Error(t, b.p.CancelPayment(pay.ID))

	require.NoError(t, b.p.RefundPayment(pay.ID, 3_000))
	require.Error(t, b.p.RefundPayment(pay.ID, 7_001), "no more than what is left")
	_, err = b.p.DisputePayment(pay.ID, 7_001)
	require.Error(t, err, "no more than what was not refunded")
	du, err := b.p.DisputePayment(pay.ID, 7_000)
	require.NoError(t, err)
	_, err = b.p.DisputePayment(pay.ID, 1)
	require.Error(t, err, "one dispute per charge")
	require.Error(t, b.p.RefundPayment(pay.ID, 1), "a disputed charge is not refunded")
	require.Equal(t, 10_000-fee-3_000-7_000-billingtest.DefaultDisputeFee, b.p.Balance("usd"))
	require.NoError(t, b.p.CloseDispute(du, true))
	require.Error(t, b.p.CloseDispute(du, false), "closed once")
	require.Equal(t, 10_000-fee-3_000-billingtest.DefaultDisputeFee, b.p.Balance("usd"), "a won dispute gives the amount back, not the fee")
	got, err = b.p.Payment(ctx, pay.ID)
	require.NoError(t, err)
	require.Equal(t, int64(3_000), got.Refunded)
	require.Equal(t, int64(10_000), got.Disputed)

	bts, err := b.p.BalanceTransactions(ctx, t0)
	require.NoError(t, err)
	var sum int64
	var kinds []string
	for _, bt := range bts {
		sum += bt.Net
		kinds = append(kinds, bt.Type)
		require.Equal(t, bt.Amount-bt.Fee, bt.Net)
	}
	require.Equal(t, b.p.Balance("usd"), sum, "the balance is the sum of its transactions")
	require.Equal(t, []string{"adjustment", "adjustment", "refund", "charge"}, kinds, "newest first")
	require.Equal(t, fee, bts[3].Fee)

	events := b.p.TakeEvents()
	require.Equal(t, []billing.EventType{
		"payment_intent.created", billing.EventPaymentFailed, billing.EventPaymentSucceeded, billing.EventChargeRefunded,
		billing.EventDisputeCreated, billing.EventDisputeClosed,
	}, types(events))
	succeeded := events[2].Payment
	require.Equal(t, billing.Payment{ID: pay.ID, Advertiser: adv, Amount: 10_000, Currency: "usd", Status: billing.PaymentSucceeded, Created: t0}, *succeeded,
		"as a webhook carries it: no fee yet, no client secret")
	require.Equal(t, int64(3_000), events[3].Refund.Amount)
	require.Empty(t, events[3].Refund.ID, "2023-10-16 events carry no refund id")
	require.Empty(t, b.p.TakeEvents(), "taken")
	require.Len(t, b.p.Events(), 6, "Events keeps everything")

	_, err = b.p.Payment(ctx, "pi_nope")
	require.Equal(t, billingtest.CodeResourceMissing, processorErr(t, err).Code)
}

func TestTransfers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	a, err := b.p.CreateAccount(ctx, billing.AccountRequest{Key: "acct-1", Owner: uuid.New(), Country: "US"})
	require.NoError(t, err)
	require.False(t, a.TransfersEnabled)
	require.NotEmpty(t, a.RequirementsDue)
	link, err := b.p.OnboardingLink(ctx, a.ID, "https://app.example/r", "https://app.example/d")
	require.NoError(t, err)
	link2, err := b.p.OnboardingLink(ctx, a.ID, "https://app.example/r", "https://app.example/d")
	require.NoError(t, err)
	require.NotEqual(t, link, link2, "links are single use: a new one each time")

	req := transferTo(a.ID, "payout-1", 5_000)
	_, err = b.p.Transfer(ctx, req)
	pe := processorErr(t, err)
	require.True(t, pe.Definite)
	require.Equal(t, billingtest.CodeNoTransfers, pe.Code)

	require.NoError(t, b.p.EnableAccount(a.ID))
	got, err := b.p.Account(ctx, a.ID)
	require.NoError(t, err)
	require.True(t, got.TransfersEnabled && got.PayoutsEnabled && got.DetailsSubmitted)
	require.Empty(t, got.RequirementsDue)

	b.p.SetBalance("usd", 4_999)
	_, err = b.p.Transfer(ctx, req)
	pe = processorErr(t, err)
	require.True(t, pe.Definite)
	require.Equal(t, billingtest.CodeBalanceInsufficient, pe.Code)
	require.Equal(t, int64(4_999), b.p.Balance("usd"), "a refusal changes nothing")

	b.p.SetBalance("usd", 8_000)
	tr, err := b.p.Transfer(ctx, req)
	require.NoError(t, err, "a refusal is not stored under the key: the same key goes through once funded")
	require.Equal(t, int64(3_000), b.p.Balance("usd"))
	replay, err := b.p.Transfer(ctx, req)
	require.NoError(t, err)
	require.Equal(t, tr, replay)
	require.Equal(t, int64(3_000), b.p.Balance("usd"), "a replay moves nothing")

	*b.now = t0.Add(time.Hour)
	other, err := b.p.Transfer(ctx, transferTo(a.ID, "payout-2", 1_000))
	require.NoError(t, err)
	inGroup, err := b.p.TransfersInGroup(ctx, "payout-1")
	require.NoError(t, err)
	require.Equal(t, []billing.Transfer{tr}, inGroup)
	all, err := b.p.Transfers(ctx, t0)
	require.NoError(t, err)
	require.Equal(t, []billing.Transfer{other, tr}, all, "newest first")
	recent, err := b.p.Transfers(ctx, t0.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, []billing.Transfer{other}, recent)

	require.NoError(t, b.p.ReverseTransfer(tr.ID, 2_000))
	require.Error(t, b.p.ReverseTransfer(tr.ID, 3_001))
	require.Equal(t, int64(4_000), b.p.Balance("usd"))
	_, err = b.p.FailPayout(a.ID, 1_000, "usd", "account_closed")
	require.NoError(t, err)
	require.Equal(t, int64(4_000), b.p.Balance("usd"), "a failed bank payout is the owner's balance, not the platform's")

	_, err = b.p.Transfer(ctx, transferTo("acct_nope", "payout-3", 1))
	require.Equal(t, billingtest.CodeResourceMissing, processorErr(t, err).Code)

	events := b.p.Events()
	last := events[len(events)-2:]
	require.Equal(t, []billing.EventType{billing.EventTransferReversed, billing.EventPayoutFailed}, types(last))
	require.Equal(t, int64(2_000), last[0].Transfer.Reversed)
	require.Empty(t, last[0].Account, "a transfer is the platform's")
	require.Equal(t, a.ID, last[1].Account, "a payout is the connected account's")
}

// TestFailures: what a caller sees when a call fails, and what the
// processor did anyway.
func TestFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// failedTransfer sends a transfer of 4 000 out of a balance of 10 000
	// that fails with f.
	failedTransfer := func(t *testing.T, f billingtest.Failure) (testBundle, billing.TransferRequest, *billing.ProcessorError) {
		t.Helper()
		b := setup(t)
		req := transferTo(enabledAccount(t, b.p), "payout-1", 4_000)
		b.p.SetBalance("usd", 10_000)
		b.p.FailNext(billingtest.MethodTransfer, f)
		_, err := b.p.Transfer(ctx, req)
		return b, req, processorErr(t, err)
	}

	t.Run("timeout after the work", func(t *testing.T) {
		t.Parallel()
		b, req, pe := failedTransfer(t, billingtest.FailTimeout)
		require.False(t, pe.Definite)
		require.Equal(t, stripe.CodeTimeout, pe.Code)
		require.Equal(t, int64(6_000), b.p.Balance("usd"), "the money moved")
		inGroup, err := b.p.TransfersInGroup(ctx, req.Group)
		require.NoError(t, err)
		require.Len(t, inGroup, 1, "looking it up finds it")

		tr, err := b.p.Transfer(ctx, req)
		require.NoError(t, err, "a retry with the same key gets the stored result")
		require.Equal(t, inGroup[0], tr)
		require.Equal(t, int64(6_000), b.p.Balance("usd"), "and moves nothing again")
	})

	t.Run("5xx is stored under the key", func(t *testing.T) {
		t.Parallel()
		b, req, pe := failedTransfer(t, billingtest.FailServerError)
		require.False(t, pe.Definite)
		require.Equal(t, stripe.CodeServerError, pe.Code)
		require.NotEmpty(t, pe.RequestID)
		_, err := b.p.Transfer(ctx, req)
		require.Equal(t, stripe.CodeServerError, processorErr(t, err).Code, "replayed, like Stripe")
		inGroup, err := b.p.TransfersInGroup(ctx, req.Group)
		require.NoError(t, err)
		require.Empty(t, inGroup, "nothing was done: the caller finds out by looking")
		require.Equal(t, int64(10_000), b.p.Balance("usd"))
	})

	t.Run("429 is not stored", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.p.FailNext(billingtest.MethodCreatePayment, billingtest.FailRateLimit)
		b.p.FailNext(billingtest.MethodCreatePayment, billingtest.FailRateLimit)
		req := billing.PaymentRequest{Key: "topup-1", Advertiser: uuid.New(), Amount: 100, Currency: "usd"}
		for range 2 {
			_, err := b.p.CreatePayment(ctx, req)
			pe := processorErr(t, err)
			require.False(t, pe.Definite)
			require.Equal(t, billingtest.CodeRateLimit, pe.Code)
		}
		_, err := b.p.CreatePayment(ctx, req)
		require.NoError(t, err, "failures queue up, then the same key runs")
		require.Len(t, b.p.Events(), 1, "one payment made")
	})

	t.Run("reads", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, f := range []billingtest.Failure{billingtest.FailTimeout, billingtest.FailServerError, billingtest.FailRateLimit} {
			b.p.FailNext(billingtest.MethodBalanceTransactions, f)
			_, err := b.p.BalanceTransactions(ctx, t0)
			require.False(t, billing.IsDefinite(err))
			require.Error(t, err)
		}
		_, err := b.p.BalanceTransactions(ctx, t0)
		require.NoError(t, err)
		b.p.FailNext(billingtest.MethodAccount, billingtest.FailTimeout)
		_, err = b.p.Transfers(ctx, t0)
		require.NoError(t, err, "a failure is for its method only")
	})

	t.Run("an ended context does nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := b.p.CreatePayment(cctx, billing.PaymentRequest{Key: "topup-1", Advertiser: uuid.New(), Amount: 100, Currency: "usd"})
		pe := processorErr(t, err)
		require.False(t, pe.Definite)
		require.Equal(t, stripe.CodeCanceled, pe.Code)
		dctx, cancel := context.WithDeadline(ctx, t0)
		defer cancel()
		_, err = b.p.Transfers(dctx, t0)
		require.Equal(t, stripe.CodeTimeout, processorErr(t, err).Code)
		require.Empty(t, b.p.Events())
	})
}

// TestConcurrentTransfers: the balance is checked and taken atomically,
// and one key makes one transfer however many callers race with it.
func TestConcurrentTransfers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dest := enabledAccount(t, b.p)
	b.p.SetBalance("usd", 10_000)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, refused int
	ids := map[string]bool{}
	for i := range 40 {
		wg.Go(func() {
			key := fmt.Sprintf("payout-%d", i%20) // each key twice
			tr, err := b.p.Transfer(ctx, billing.TransferRequest{Key: key, Destination: dest, Amount: 1_000, Currency: "usd", Group: key})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
				ids[tr.ID] = true
			case billing.IsDefinite(err):
				refused++
			default:
				t.Errorf("unexpected %v", err)
			}
		})
	}
	wg.Wait()
	require.Len(t, ids, 10, "ten transfers fit in the balance")
	require.Zero(t, b.p.Balance("usd"))
	require.Equal(t, 40, ok+refused)
	all, err := b.p.Transfers(ctx, t0)
	require.NoError(t, err)
	require.Len(t, all, 10)
}

func TestDelivery(t *testing.T) {
	t.Parallel()
	var d billingtest.Delivery
	for i := range 6 {
		d = append(d, billing.Event{ID: fmt.Sprint("evt_", i)})
	}
	ids := func(d billingtest.Delivery) []string {
		var out []string
		for _, e := range d {
			out = append(out, e.ID)
		}
		return out
	}
	orig := ids(d)
	require.Equal(t, append(slices.Clone(orig), "evt_2"), ids(d.Duplicate(2)))
	require.Equal(t, []string{"evt_5", "evt_4", "evt_3", "evt_2", "evt_1", "evt_0"}, ids(d.Reverse()))
	s1, s2 := ids(d.Shuffle(7)), ids(d.Shuffle(7))
	require.Equal(t, s1, s2, "a seed is an order")
	require.NotEqual(t, orig, s1)
	require.ElementsMatch(t, orig, s1)
	require.Equal(t, orig, ids(d), "the original is untouched")
	require.Len(t, d.Duplicate(0).Duplicate(0).Shuffle(1), 8)
}

func TestSigner(t *testing.T) {
	t.Parallel()
	ev := billing.Event{ID: "evt_1", Type: billing.EventTransferReversed, Created: t0,
		Transfer: &billing.Transfer{ID: "tr_1", Destination: "acct_1", Amount: 500, Currency: "usd", Group: "g", Reversed: 500, Created: t0}}
	secrets := []stripe.Secret{"whsec_new0123456789abcdef", "whsec_old0123456789abcdef"}
	payload, header, err := billingtest.Signer{Secrets: secrets, Now: func() time.Time { return t0 }}.Sign(ev)
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(header, "v1="), "one signature per secret")
	require.True(t, strings.HasPrefix(header, fmt.Sprintf("t=%d,", t0.Unix())))
	for _, s := range secrets {
		e, err := webhook.ConstructEventWithOptions(payload, header, string(s), webhook.ConstructEventOptions{IgnoreTolerance: true})
		require.NoError(t, err, "stripe-go verifies it with either secret")
		require.Equal(t, stripego.APIVersion, e.APIVersion)
		require.Equal(t, "transfer", e.Data.Object["object"])
	}

	payload, err = billingtest.EventJSON(ev, "2024-04-10")
	require.NoError(t, err)
	var shape struct {
		APIVersion string `json:"api_version"`
		Object     string `json:"object"`
		Account    *string
	}
	require.NoError(t, json.Unmarshal(payload, &shape))
	require.Equal(t, "2024-04-10", shape.APIVersion)
	require.Equal(t, "event", shape.Object)
	require.Nil(t, shape.Account, "a platform event has no account")

	_, _, err = billingtest.Signer{}.Sign(ev)
	require.Error(t, err)
	_, err = billingtest.EventJSON(billing.Event{ID: "evt_2"}, "")
	require.Error(t, err, "an event needs a type")
}
