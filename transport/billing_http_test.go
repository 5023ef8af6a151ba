package transport

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/stripe"
	"github.com/adshare/adshare/internal/testenv"
)

// The numbers of the loops: a $150 top-up; 5,000 impressions at a $20 CPM
// ($100 spend) in the owner's space, the owner's share at the free tier's
// 50%: $50, the free tier's minimum payout.
const (
	loopTopUp    = 15_000 // cents
	loopCPM      = 20_000_000
	loopN        = 5_000
	loopShareBP  = 5_000
	loopSpend    = loopN * loopCPM / 1000 // micros
	loopEarnings = loopSpend * loopShareBP / 10_000
)

// TestTheManualMoneyLoopOverHTTP runs the embedded defaults' money over
// the API: an admin confirms a top-up, the budget pays for the owner's
// impressions at settlement, the owner's share is released after the hold
// window, the owner asks for a payout and an admin records it paid; the
// balances, the statements and the revenue report agree at every step.
func TestTheManualMoneyLoopOverHTTP(t *testing.T) {
	t.Parallel()
	forEachBillingBackend(t, billingOpts{manual: true}, func(t *testing.T, b *billingBundle) {
		c := b.cast(t)
		tu := b.topUp(t, c.advertiser.AccessToken, loopTopUp)
		require.Equal(t, "awaiting_confirmation", tu.Status)
		require.Empty(t, tu.ClientSecret, "no processor: no client secret")
		require.Zero(t, b.balance(t, c.advertiser.AccessToken, "").BudgetMicros, "nothing is credited on the app's word")

		b.do(t, http.MethodPost, "/billing/topups/"+tu.ID.String()+"/confirm", c.advertiser.AccessToken, nil).
			problem(t, http.StatusForbidden, "forbidden")
		var confirmed topUpJSON
		b.do(t, http.MethodPost, "/billing/topups/"+tu.ID.String()+"/confirm", c.admin.AccessToken, nil).
			requireStatus(t, http.StatusOK).decode(t, &confirmed)
		require.Equal(t, "succeeded", confirmed.Status)
		b.do(t, http.MethodPost, "/billing/topups/"+tu.ID.String()+"/confirm", c.admin.AccessToken, nil).
			requireStatus(t, http.StatusOK) // idempotent
		require.Equal(t, int64(loopTopUp*10_000), b.balance(t, c.advertiser.AccessToken, "").BudgetMicros, "credited once")

		b.serve(t, c.owner.User.ID, c.advertiser.User.ID, loopN, loopCPM, loopShareBP)
		adv := b.balance(t, c.advertiser.AccessToken, "")
		require.Equal(t, int64(loopSpend), adv.UnsettledSpendMicros, "spoken for before settlement")
		b.settleAndRelease(t)

		adv = b.balance(t, c.advertiser.AccessToken, "")
		require.Equal(t, int64(loopTopUp*10_000-loopSpend), adv.BudgetMicros, "the budget paid for the impressions")
		require.Zero(t, adv.UnsettledSpendMicros)
		owner := b.balance(t, c.owner.AccessToken, "")
		require.Zero(t, owner.HeldMicros)
		require.Equal(t, int64(loopEarnings), owner.AvailableMicros, "the owner's share, released")
		require.Nil(t, owner.Payee)

		// Below the minimum, then everything.
		b.do(t, http.MethodPost, "/billing/payouts", c.owner.AccessToken, map[string]any{"amount": 4_000}).
			problem(t, http.StatusUnprocessableEntity, "payout_below_minimum")
		po := b.requestPayout(t, c.owner.AccessToken, map[string]any{})
		require.Equal(t, "pending", po.Status)
		require.True(t, po.Manual)
		require.Equal(t, int64(loopEarnings/10_000), po.Amount, "whole cents")
		owner = b.balance(t, c.owner.AccessToken, "")
		require.Zero(t, owner.AvailableMicros)
		require.Equal(t, int64(loopEarnings), owner.InTransitMicros, "reserved with the request")
		b.do(t, http.MethodPost, "/billing/payouts", c.owner.AccessToken, map[string]any{}).
			problem(t, http.StatusConflict, "payout_in_progress")

		record := map[string]any{"paid": true, "note": "bank transfer 4711"}
		b.do(t, http.MethodPost, "/billing/payouts/"+po.ID.String()+"/record", c.owner.AccessToken, record).
			problem(t, http.StatusForbidden, "forbidden")
		var paid payoutJSON
		b.do(t, http.MethodPost, "/billing/payouts/"+po.ID.String()+"/record", c.admin.AccessToken, record).
			requireStatus(t, http.StatusOK).decode(t, &paid)
		require.Equal(t, "paid", paid.Status)
		b.do(t, http.MethodPost, "/billing/payouts/"+po.ID.String()+"/record", c.admin.AccessToken, record).
			problem(t, http.StatusConflict, "payout_not_pending")
		require.Equal(t, "paid", b.getPayout(t, c.owner.AccessToken, po.ID).Status)
		recorded := b.lastEvent(t, billing.AuditPayoutRecorded)
		require.Equal(t, "bank transfer 4711", recorded.Reason, "audited with the admin's note")
		require.Equal(t, c.admin.User.ID, recorded.ActorID)

		owner = b.balance(t, c.owner.AccessToken, "")
		require.Zero(t, owner.AvailableMicros)
		require.Zero(t, owner.InTransitMicros)

		// The owner's statement: settlement, release, reserve, paid.
		txs, _ := b.transactions(t, c.owner.AccessToken, "")
		kinds := make([]string, 0, len(txs))
		for _, tx := range txs {
			kinds = append(kinds, tx.Kind)
			for _, e := range tx.Entries {
				require.Contains(t, e.Account, c.owner.User.ID.String(), "only the owner's own accounts")
			}
		}
		require.Equal(t, []string{"payout_paid", "payout", "release", "settlement"}, kinds)
		require.Equal(t, map[string]string{"payout": po.ID.String()}, txs[0].Refs)
		advTxs, _ := b.transactions(t, c.advertiser.AccessToken, "")
		require.Equal(t, []string{"settlement", "topup"}, []string{advTxs[0].Kind, advTxs[1].Kind})
		require.Len(t, advTxs[0].Entries, 1, "the advertiser's debit only: not the owner's share, not the platform's")

		// The revenue report's final and paid-out figures are the ledger's.
		rev := b.revenueOf(t, c.owner.AccessToken)
		require.NotNil(t, rev.Final)
		require.Equal(t, int64(loopEarnings), (*rev.Final)["owner_micros"])
		require.Equal(t, po.Amount*10_000, (*rev.Final)["paid_out_micros"])
		all := b.revenueOf(t, c.admin.AccessToken, "scope=all")
		require.Equal(t, int64(loopSpend-loopEarnings), (*all.Final)["platform_micros"], "the platform kept the rest")
		b.requireBalanced(t)
	})
}

// revenueOf reads the revenue report over the bundle's day and the next
// two (when the payout was made), with extra query parameters.
func (b *billingBundle) revenueOf(t *testing.T, token string, extra ...string) revenueReportJSON {
	t.Helper()
	q := "?granularity=day&from=" + b.day.Format(time.RFC3339) + "&to=" + b.day.Add(72*time.Hour).Format(time.RFC3339)
	for _, e := range extra {
		q += "&" + e
	}
	var out revenueReportJSON
	b.do(t, http.MethodGet, "/analytics/revenue"+q, token, nil).requireStatus(t, http.StatusOK).decode(t, &out)
	return out
}

// TestTheProcessorMoneyLoopOverHTTP runs the money with the fake
// processor: a top-up is credited only by its signed webhook, the owner
// onboards a payout account (its account.updated webhook enables it), and
// the payout's transfer is made in the background under the payout's id.
func TestTheProcessorMoneyLoopOverHTTP(t *testing.T) {
	t.Parallel()
	forEachBillingBackend(t, billingOpts{}, func(t *testing.T, b *billingBundle) {
		c := b.cast(t)
		tu := b.topUp(t, c.advertiser.AccessToken, loopTopUp)
		require.Equal(t, "pending", tu.Status)
		require.NotEmpty(t, tu.ClientSecret, "the app's SDK completes the payment with it")
		require.NotEmpty(t, tu.PaymentID)
		require.Empty(t, b.getTopUp(t, c.advertiser.AccessToken, tu.ID).ClientSecret, "the secret is shown once")
		b.do(t, http.MethodPost, "/billing/topups/"+tu.ID.String()+"/confirm", c.admin.AccessToken, nil).
			problem(t, http.StatusConflict, "topup_not_awaiting_confirmation")
		require.Zero(t, b.balance(t, c.advertiser.AccessToken, "").BudgetMicros, "nothing before the processor says so")

		require.NoError(t, b.proc.SucceedPayment(tu.PaymentID))
		b.deliver(t, b.proc.TakeEvents())
		eventually(t, "credited by the webhook", func() bool {
			return b.balance(t, c.advertiser.AccessToken, "").BudgetMicros == loopTopUp*10_000
		})
		require.Equal(t, "succeeded", b.getTopUp(t, c.advertiser.AccessToken, tu.ID).Status)

		b.serve(t, c.owner.User.ID, c.advertiser.User.ID, loopN, loopCPM, loopShareBP)
		b.settleAndRelease(t)
		require.Equal(t, int64(loopEarnings), b.balance(t, c.owner.AccessToken, "").AvailableMicros)

		b.do(t, http.MethodPost, "/billing/payouts", c.owner.AccessToken, map[string]any{}).
			problem(t, http.StatusConflict, "payee_not_ready")
		b.do(t, http.MethodGet, "/billing/payee", c.owner.AccessToken, nil).problem(t, http.StatusNotFound, "connected_account_not_found")
		b.do(t, http.MethodPost, "/billing/payee", c.owner.AccessToken, map[string]any{"country": "U$"}).
			problem(t, http.StatusUnprocessableEntity, "invalid_payee")
		var ob struct {
			Payee         payeeJSON `json:"payee"`
			OnboardingURL string    `json:"onboarding_url"`
		}
		b.do(t, http.MethodPost, "/billing/payee", c.owner.AccessToken, map[string]any{"country": "us"}).
			requireStatus(t, http.StatusOK).decode(t, &ob)
		require.NotEmpty(t, ob.OnboardingURL)
		require.False(t, ob.Payee.PayoutsEnabled)
		payee, err := b.store.Payee(t.Context(), c.owner.User.ID)
		require.NoError(t, err)
		require.NoError(t, b.proc.EnableAccount(payee.ID))
		b.deliver(t, b.proc.TakeEvents())
		eventually(t, "the account.updated webhook enables payouts", func() bool {
			bal := b.balance(t, c.owner.AccessToken, "")
			return bal.Payee != nil && bal.Payee.PayoutsEnabled && bal.Payee.TransfersEnabled
		})
		var refreshed payeeJSON
		b.do(t, http.MethodGet, "/billing/payee", c.owner.AccessToken, nil).requireStatus(t, http.StatusOK).decode(t, &refreshed)
		require.True(t, refreshed.PayoutsEnabled)
		require.NotContains(t, string(b.do(t, http.MethodGet, "/billing/balance", c.owner.AccessToken, nil).body), payee.ID,
			"the connected account's id is never shown")

		b.do(t, http.MethodPost, "/billing/payouts", c.owner.AccessToken, map[string]any{}).
			problem(t, http.StatusConflict, "payout_held") // a new payout account waits
		b.bclock.Advance(2 * time.Hour)
		po := b.requestPayout(t, c.owner.AccessToken, map[string]any{})
		require.False(t, po.Manual)
		eventually(t, "the transfer is made in the background", func() bool {
			return b.getPayout(t, c.owner.AccessToken, po.ID).Status == "paid"
		})
		transfers, err := b.proc.TransfersInGroup(t.Context(), po.ID.String())
		require.NoError(t, err)
		require.Len(t, transfers, 1)
		require.Equal(t, po.Amount, transfers[0].Amount)
		b.do(t, http.MethodPost, "/billing/payouts/"+po.ID.String()+"/record", c.admin.AccessToken, map[string]any{"paid": true}).
			problem(t, http.StatusConflict, "payout_not_pending")
		owner := b.balance(t, c.owner.AccessToken, "")
		require.Zero(t, owner.InTransitMicros)
		require.Zero(t, owner.AvailableMicros)

		_, err = b.billing.Reconcile(t.Context(), b.day)
		require.NoError(t, err)
		var rec struct {
			Manual bool                `json:"manual"`
			Last   *reconciliationJSON `json:"last"`
		}
		b.do(t, http.MethodGet, "/admin/billing/reconciliation", c.owner.AccessToken, nil).problem(t, http.StatusForbidden, "forbidden")
		b.do(t, http.MethodGet, "/admin/billing/reconciliation", c.admin.AccessToken, nil).requireStatus(t, http.StatusOK).decode(t, &rec)
		require.False(t, rec.Manual)
		require.NotNil(t, rec.Last)
		require.Empty(t, rec.Last.Differences, "the ledger and the processor agree")
		require.Positive(t, rec.Last.Checked)
		b.requireBalanced(t)
	})
}

// stripeRecorder records the requests billing/stripe sends.
type stripeRecorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	form []url.Values
}

func (r *stripeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var form url.Values
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if form, err = url.ParseQuery(string(body)); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	r.reqs, r.form = append(r.reqs, req.Clone(req.Context())), append(r.form, form)
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// TestATopUpReachesStripeMockInShape starts a top-up over the API through
// the real billing/stripe adapter against stripe-mock, which checks the
// request against Stripe's OpenAPI spec (it keeps no state: only the
// request's shape and the answer's client secret are asserted).
func TestATopUpReachesStripeMockInShape(t *testing.T) {
	t.Parallel()
	base := testenv.StripeMock(t)
	rec := &stripeRecorder{}
	const key stripe.Secret = "sk_test_51Transport0123456789abcdef"
	opts := billingOpts{billing: func(cfg *billing.Config) {
		client, err := stripe.New(stripe.Config{SecretKey: key, BaseURL: base, HTTPClient: &http.Client{Transport: rec}, MaxNetworkRetries: -1})
		require.NoError(t, err)
		t.Cleanup(func() { _ = client.Stop(context.Background()) })
		cfg.Processor = client
	}}
	forEachBillingBackend(t, opts, func(t *testing.T, b *billingBundle) {
		c := b.cast(t)
		tu := b.topUp(t, c.advertiser.AccessToken, 5_000)
		require.Equal(t, "pending", tu.Status)
		require.NotEmpty(t, tu.ClientSecret, "stripe-mock's PaymentIntent carries a client secret")
		require.True(t, strings.HasPrefix(tu.PaymentID, "pi_"), tu.PaymentID)

		rec.mu.Lock()
		defer rec.mu.Unlock()
		var sent []int // this backend's: the recorder serves both
		for i, r := range rec.reqs {
			if r.Header.Get("Idempotency-Key") == "topup:"+tu.ID.String() {
				sent = append(sent, i)
			}
		}
		require.Len(t, sent, 1, "one call")
		req, form := rec.reqs[sent[0]], rec.form[sent[0]]
		require.Equal(t, http.MethodPost, req.Method)
		require.Equal(t, "/v1/payment_intents", req.URL.Path)
		require.Equal(t, "Bearer "+string(key), req.Header.Get("Authorization"))
		require.Equal(t, "topup:"+tu.ID.String(), req.Header.Get("Idempotency-Key"), "the top-up's own id, persisted first")
		require.Equal(t, "5000", form.Get("amount"))
		require.Equal(t, "usd", form.Get("currency"))
		require.Equal(t, "topup:"+tu.ID.String(), form.Get("transfer_group"))
		require.Equal(t, c.advertiser.User.ID.String(), form.Get("metadata["+stripe.MetadataAdvertiser+"]"))
	})
}
