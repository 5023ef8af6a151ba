package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/billingtest"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// The loop's numbers: a $150 top-up; moneyN impressions of a $100 CPM ad
// (the largest bid: $0.10 each, $100 in all) in the owner's space; the
// owner's share at the free tier's 50% is $50, the free tier's minimum
// payout, so the defaults' tiers pay it out.
const (
	moneyTopUp      = 15_000 // cents
	moneyCPM        = 100_000_000
	moneyN          = 1_000
	moneySpend      = moneyN * moneyCPM / 1000    // micros
	moneyEarnings   = moneySpend * 5_000 / 10_000 // micros, the free tier's share
	moneyPayout     = moneyEarnings / 10_000      // cents
	moneyHoldWindow = 3 * 24 * time.Hour          // -billing-hold-window of the manual run
	moneyBudget     = int64(moneyTopUp) * 10_000  // micros
	moneyAdBudget   = 1_000_000_000               // the ad's own total budget, above the spend
	moneyWaitForAd  = 20 * time.Second            // the local engine refreshes every 5s
	moneyWaitForJob = 20 * time.Second            // River polls for jobs
	moneyStripeHold = billing.DefaultHoldWindow   // the Stripe runs keep the default
	moneyPayeeWait  = billing.DefaultNewPayeeHold // a new payee's first payout waits this long
	moneySettleJump = 24*time.Hour + billing.DefaultSettleLag
)

// TestMoneyLoopOnEmbeddedDefaults runs the money over the example
// server's HTTP API on the embedded defaults (memory store, no Stripe
// key): an admin confirms a manual top-up, the funded ad fills the
// owner's space, its impressions are settled at the owner's share after
// the day ends, released after -billing-hold-window, paid out on the
// owner's request and recorded paid by an admin.
func TestMoneyLoopOnEmbeddedDefaults(t *testing.T) {
	t.Parallel()
	ms := startMoneyServer(t, nil, false, "-billing-hold-window", moneyHoldWindow.String())
	runMoneyLoop(t, ms, moneyHoldWindow)
}

// TestMoneyLoopWithStripe runs the money with a Stripe key configured:
// the processor is billingtest's fake, the webhooks are verified by the
// server's billing/stripe Webhooks with its signing secret, and the
// fake's events are signed and delivered to POST /webhooks/stripe. A top-up
// is credited by its verified webhook only, the owner onboards (the
// account.updated webhook enables the payee), and the payout is one
// transfer at the processor, made by the server's own job.
func TestMoneyLoopWithStripe(t *testing.T) {
	t.Parallel()
	ms := startMoneyServer(t, nil, true)
	runMoneyLoop(t, ms, moneyStripeHold)
}

// TestMoneyLoopOnPostgresAndRedis runs both loops on PostgreSQL (a fresh
// schema, migrated on start; River runs the jobs) and Redis, Stripe's with
// -data-keys and -data-index-key.
func TestMoneyLoopOnPostgresAndRedis(t *testing.T) {
	t.Parallel()
	for _, withStripe := range []bool{false, true} {
		name := "manual"
		if withStripe {
			name = "stripe"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			redisURL, prefix := testenv.Redis(t)
			env := map[string]string{"DATABASE_URL": postgrestest.URL(t), "REDIS_URL": redisURL, "ADSHARE_REDIS_PREFIX": prefix}
			args := []string{"-migrate-on-start"}
			hold := moneyStripeHold
			if withStripe {
				args = append(args, dataKeyFlags()...)
			} else {
				hold = moneyHoldWindow
				args = append(args, "-billing-hold-window", hold.String())
			}
			ms := startMoneyServer(t, env, withStripe, args...)
			status, body := get(t, ms.base+"/readyz")
			require.Equal(t, http.StatusOK, status)
			require.JSONEq(t, `{"status":"ok","checks":{"postgres":"ok","redis":"ok"}}`, body)
			runMoneyLoop(t, ms, hold)
		})
	}
}

// runMoneyLoop is the loop over HTTP, manual or through the fake
// processor as ms was started, with the hold window ms was configured
// with.
func runMoneyLoop(t *testing.T, ms *moneyServer, hold time.Duration) {
	ctx := context.Background()
	stripe := ms.proc != nil
	owner := ms.register(t, "owner@example.com")
	advertiser := ms.register(t, "advertiser@example.com")
	admin := ms.register(t, "admin@example.com")
	ms.makeAdmin(t, admin)
	ms.call(t, http.MethodPost, "/users/me/advertiser", advertiser.Access, map[string]string{"terms_version": auth.DefaultAdvertiserTerms}, http.StatusOK, nil)
	ms.login(t, advertiser) // the token in hand carries the old role

	// Stripe: the owner onboards first (a new payee's first payout waits
	// a week); the payee is enabled by the verified account.updated only.
	var account string
	if stripe {
		var ob struct {
			Payee struct {
				PayoutsEnabled bool `json:"payouts_enabled"`
			} `json:"payee"`
			OnboardingURL string `json:"onboarding_url"`
		}
		ms.call(t, http.MethodPost, "/billing/payee", owner.Access, map[string]string{"country": "US"}, http.StatusOK, &ob)
		require.NotEmpty(t, ob.OnboardingURL)
		require.False(t, ob.Payee.PayoutsEnabled)
		payee, err := ms.store.(billing.Store).Payee(ctx, owner.ID)
		require.NoError(t, err)
		account = payee.ID
		require.NotEmpty(t, account)
		require.NotContains(t, string(ms.call(t, http.MethodGet, "/billing/balance", owner.Access, nil, http.StatusOK, nil)), account,
			"the connected account's id is never shown")
		require.NoError(t, ms.proc.EnableAccount(account))
		enabled := ms.proc.TakeEvents()
		ms.forge(t, enabled)
		time.Sleep(100 * time.Millisecond) // anything accepted would be applied by now
		require.False(t, ms.balance(t, owner).Payee.PayoutsEnabled, "a forged account.updated enables nothing")
		ms.deliver(t, enabled)
		require.Eventually(t, func() bool { return ms.balance(t, owner).Payee.PayoutsEnabled }, moneyWaitForJob, 20*time.Millisecond,
			"the verified account.updated enables the payee")
	} else {
		require.Equal(t, "manual_payouts", ms.problemCode(t, http.MethodPost, "/billing/payee", owner.Access, map[string]string{"country": "US"}, http.StatusConflict))
		require.Equal(t, "webhooks_not_configured", ms.problemCode(t, http.MethodPost, "/webhooks/stripe", "", []byte(`{"id":"evt_1"}`), http.StatusNotFound,
			"Stripe-Signature", "t=1,v1=00"))
	}

	// The top-up: credited by an admin's confirmation, or by the verified
	// webhook of the payment's success; nothing on the app's word.
	key := uuid.NewString()
	tu := ms.startTopUp(t, advertiser, key, moneyTopUp)
	require.Equal(t, int64(moneyTopUp), tu.Amount)
	again := ms.startTopUp(t, advertiser, key, moneyTopUp)
	require.Equal(t, tu.ID, again.ID, "the same Idempotency-Key answers the same top-up")
	require.Equal(t, "idempotency_key_required", ms.problemCode(t, http.MethodPost, "/billing/topups", advertiser.Access,
		map[string]any{"amount": moneyTopUp, "currency": "usd"}, http.StatusBadRequest))
	require.Zero(t, ms.balance(t, advertiser).BudgetMicros, "nothing is credited when a top-up starts")
	if stripe {
		require.NotEmpty(t, tu.ClientSecret)
		require.NotEmpty(t, tu.PaymentID)
		require.NotEqual(t, "succeeded", tu.Status)
		require.Equal(t, "topup_not_awaiting_confirmation", ms.problemCode(t, http.MethodPost, "/billing/topups/"+tu.ID.String()+"/confirm",
			admin.Access, nil, http.StatusConflict), "an admin cannot confirm what the processor is paid")
		require.NoError(t, ms.proc.SucceedPayment(tu.PaymentID))
		paid := ms.proc.TakeEvents()
		ms.forge(t, paid)
		time.Sleep(100 * time.Millisecond)
		require.Zero(t, ms.balance(t, advertiser).BudgetMicros, "a forged webhook credits nothing")
		require.NotEqual(t, "succeeded", ms.topUp(t, advertiser, tu.ID).Status)
		ms.deliver(t, paid)
		require.Eventually(t, func() bool { return ms.topUp(t, advertiser, tu.ID).Status == "succeeded" }, moneyWaitForJob, 20*time.Millisecond)
		ms.deliver(t, paid) // Stripe delivers at least once
		time.Sleep(100 * time.Millisecond)
	} else {
		require.Equal(t, "awaiting_confirmation", tu.Status)
		require.Empty(t, tu.ClientSecret, "no processor: no client secret")
		require.Equal(t, "forbidden", ms.problemCode(t, http.MethodPost, "/billing/topups/"+tu.ID.String()+"/confirm", advertiser.Access, nil, http.StatusForbidden))
		require.Zero(t, ms.balance(t, advertiser).BudgetMicros)
		var confirmed topUpJSON
		ms.call(t, http.MethodPost, "/billing/topups/"+tu.ID.String()+"/confirm", admin.Access, nil, http.StatusOK, &confirmed)
		require.Equal(t, "succeeded", confirmed.Status)
		ms.call(t, http.MethodPost, "/billing/topups/"+tu.ID.String()+"/confirm", admin.Access, nil, http.StatusOK, nil) // idempotent
	}
	require.Equal(t, moneyBudget, ms.balance(t, advertiser).BudgetMicros, "credited once")

	// The ad: created and submitted by the advertiser, approved by the
	// admin, then served in the owner's space by the local engine.
	var content struct {
		ID     uuid.UUID `json:"id"`
		Status string    `json:"status"`
	}
	ms.call(t, http.MethodPost, "/ad-space/content", advertiser.Access, map[string]any{
		"format": "banner", "title": "Ride further", "click_url": "https://bikes.example.com/",
		"image_url": "https://cdn.example.com/bike.png",
		"image":     map[string]any{"mime_type": "image/png", "width": 320, "height": 50, "bytes": 20_000},
		"bid":       map[string]any{"model": "cpm", "micros": moneyCPM}, "total_budget_micros": moneyAdBudget, "submit": true,
	}, http.StatusCreated, &content)
	require.Equal(t, "pending_review", content.Status)
	require.Equal(t, "", ms.fill(t, owner.ID), "nothing is served before approval")
	ms.call(t, http.MethodPost, "/moderation/content/"+content.ID.String()+"/approve", admin.Access, nil, http.StatusOK, &content)
	require.Equal(t, "approved", content.Status)

	tokens := make([]string, 0, moneyN)
	require.Eventually(t, func() bool {
		tok := ms.fill(t, owner.ID)
		if tok != "" {
			tokens = append(tokens, tok)
		}
		return tok != ""
	}, moneyWaitForAd, 50*time.Millisecond, "the approved, funded ad fills the space once the engine has refreshed")
	for len(tokens) < moneyN {
		tok := ms.fill(t, owner.ID)
		require.NotEmpty(t, tok, "fill %d serves the funded ad", len(tokens))
		tokens = append(tokens, tok)
	}
	time.Sleep(1100 * time.Millisecond) // viewable: a second on screen
	day := ms.impressions(t, tokens).Truncate(24 * time.Hour)

	adv := ms.balance(t, advertiser)
	require.Equal(t, moneyBudget, adv.BudgetMicros, "the budget pays at settlement")
	require.Equal(t, int64(moneySpend), adv.UnsettledSpendMicros, "the day's spend is spoken for")
	own := ms.balance(t, owner)
	require.Zero(t, own.HeldMicros+own.AvailableMicros, "nothing is earned before settlement")
	rev := ms.revenue(t, owner, day, day.Add(24*time.Hour), "")
	require.Equal(t, int64(moneyEarnings), rev.Estimated.OwnerMicros, "the estimate")
	require.True(t, rev.Final == nil || rev.Final.OwnerMicros == 0, "no final figure before settlement: %+v", rev.Final)

	// Settlement: not before the day is final; then the budget pays and
	// the owner's share is held.
	require.NoError(t, ms.app.Billing().SettleAndRelease(ctx))
	require.Equal(t, int64(moneySpend), ms.balance(t, advertiser).UnsettledSpendMicros, "today is not final yet")
	require.Zero(t, ms.balance(t, owner).HeldMicros, "today is not final yet")
	ms.clock.Add(moneySettleJump)
	for _, u := range []*moneyUser{owner, advertiser, admin} {
		ms.login(t, u) // the access tokens died on the way
	}
	require.NoError(t, ms.app.Billing().SettleAndRelease(ctx))
	adv = ms.balance(t, advertiser)
	require.Equal(t, moneyBudget-moneySpend, adv.BudgetMicros, "the budget paid for the impressions")
	require.Zero(t, adv.UnsettledSpendMicros)
	own = ms.balance(t, owner)
	require.Equal(t, int64(moneyEarnings), own.HeldMicros, "settled at the free tier's share, held")
	require.Zero(t, own.AvailableMicros)
	if stripe {
		require.Equal(t, "payout_held", ms.problemCode(t, http.MethodPost, "/billing/payouts", owner.Access, map[string]any{}, http.StatusConflict),
			"a new payee's first payout waits a week")
	} else {
		require.Equal(t, "payout_below_minimum", ms.problemCode(t, http.MethodPost, "/billing/payouts", owner.Access, map[string]any{}, http.StatusUnprocessableEntity),
			"held earnings cannot be paid out")
	}
	require.NoError(t, ms.app.Billing().SettleAndRelease(ctx))
	require.Equal(t, int64(moneyEarnings), ms.balance(t, owner).HeldMicros, "settling again changes nothing")

	// Release after the hold window (not before).
	ms.clock.Add(hold / 2)
	require.NoError(t, ms.app.Billing().SettleAndRelease(ctx))
	ms.login(t, owner)
	require.Equal(t, int64(moneyEarnings), ms.balance(t, owner).HeldMicros, "still held within the window")
	ms.clock.Add(hold - hold/2)
	if stripe && hold < moneyPayeeWait {
		ms.clock.Add(moneyPayeeWait - hold)
	}
	require.NoError(t, ms.app.Billing().SettleAndRelease(ctx))
	for _, u := range []*moneyUser{owner, advertiser, admin} {
		ms.login(t, u)
	}
	own = ms.balance(t, owner)
	require.Zero(t, own.HeldMicros)
	require.Equal(t, int64(moneyEarnings), own.AvailableMicros, "released after the hold window")

	// The payout.
	require.Equal(t, "payout_below_minimum", ms.problemCode(t, http.MethodPost, "/billing/payouts", owner.Access, map[string]any{"amount": moneyPayout - 1},
		http.StatusUnprocessableEntity), "the free tier pays out from $50")
	var po payoutJSON
	ms.call(t, http.MethodPost, "/billing/payouts", owner.Access, map[string]any{}, http.StatusCreated, &po)
	require.Equal(t, int64(moneyPayout), po.Amount, "everything available, in whole cents")
	require.Equal(t, !stripe, po.Manual)
	if stripe {
		require.Eventually(t, func() bool { return ms.payout(t, owner, po.ID).Status == "paid" }, moneyWaitForJob, 20*time.Millisecond,
			"the server's job makes the transfer")
		transfers, err := ms.proc.Transfers(ctx, time.Time{})
		require.NoError(t, err)
		require.Len(t, transfers, 1, "exactly one transfer")
		require.Equal(t, account, transfers[0].Destination)
		require.Equal(t, int64(moneyPayout), transfers[0].Amount)
		require.Equal(t, billing.USD, transfers[0].Currency)
		require.Equal(t, po.ID, transfers[0].Payout)
		require.Equal(t, int64(moneyTopUp-billingtest.DefaultFee(moneyTopUp, billing.USD)-moneyPayout), ms.proc.Balance(billing.USD),
			"the processor's books: the payment less its fee, less the transfer")

		// The reconciliation job's work, run now: the ledger and the
		// processor's books agree, as an admin reads over the API.
		rec, err := ms.app.Billing().Reconcile(ctx, day.Add(-24*time.Hour))
		require.NoError(t, err)
		require.Empty(t, rec.Differences)
		require.Equal(t, 3, rec.Checked, "the transfer, the paid payout and the payment")
		var report struct {
			Manual bool `json:"manual"`
			Last   *struct {
				Checked     int   `json:"checked"`
				Differences []any `json:"differences"`
			} `json:"last"`
		}
		ms.call(t, http.MethodGet, "/admin/billing/reconciliation", admin.Access, nil, http.StatusOK, &report)
		require.False(t, report.Manual)
		require.NotNil(t, report.Last)
		require.Equal(t, rec.Checked, report.Last.Checked)
		require.Empty(t, report.Last.Differences)
		require.Equal(t, "payout_not_pending", ms.problemCode(t, http.MethodPost, "/billing/payouts/"+po.ID.String()+"/record", admin.Access,
			map[string]any{"paid": true}, http.StatusConflict), "an admin records manual payouts only")
	} else {
		require.Equal(t, "pending", po.Status)
		own = ms.balance(t, owner)
		require.Zero(t, own.AvailableMicros)
		require.Equal(t, int64(moneyEarnings), own.InTransitMicros, "reserved with the request")
		require.Equal(t, "payout_in_progress", ms.problemCode(t, http.MethodPost, "/billing/payouts", owner.Access, map[string]any{}, http.StatusConflict))
		record := map[string]any{"paid": true, "note": "bank transfer 4711"}
		require.Equal(t, "forbidden", ms.problemCode(t, http.MethodPost, "/billing/payouts/"+po.ID.String()+"/record", owner.Access, record, http.StatusForbidden))
		var paid payoutJSON
		ms.call(t, http.MethodPost, "/billing/payouts/"+po.ID.String()+"/record", admin.Access, record, http.StatusOK, &paid)
		require.Equal(t, "paid", paid.Status)
		require.Equal(t, "payout_not_pending", ms.problemCode(t, http.MethodPost, "/billing/payouts/"+po.ID.String()+"/record", admin.Access, record, http.StatusConflict))
		require.Equal(t, "paid", ms.payout(t, owner, po.ID).Status)
	}
	own = ms.balance(t, owner)
	require.Zero(t, own.AvailableMicros+own.HeldMicros+own.InTransitMicros, "everything was paid out")

	// The statements, the revenue report and the ledger agree.
	require.Equal(t, []string{"payout_paid", "payout", "release", "settlement"}, ms.transactionKinds(t, owner))
	require.Equal(t, []string{"settlement", "topup"}, ms.transactionKinds(t, advertiser))
	to := ms.clock.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	rev = ms.revenue(t, owner, day, to, "")
	require.NotNil(t, rev.Final)
	require.Equal(t, int64(moneyEarnings), rev.Final.OwnerMicros, "the final figure is the ledger's")
	require.Equal(t, int64(moneyEarnings), rev.Final.PaidOutMicros, "paid out, from the ledger")
	all := ms.revenue(t, admin, day, to, "&scope=all")
	require.NotNil(t, all.Final)
	require.Equal(t, int64(moneySpend-moneyEarnings), all.Final.PlatformMicros, "the platform kept the rest")
	ms.requireBalanced(t)

	// What the operators' dashboards see.
	require.Equal(t, 1, ms.metric(t, "adshare_billing_topups_total", "state", "succeeded"))
	require.Equal(t, 1, ms.metric(t, "adshare_billing_payouts_total", "state", "requested"))
	require.Equal(t, 1, ms.metric(t, "adshare_billing_payouts_total", "state", "paid"))
	require.Equal(t, ms.forged, ms.metric(t, "adshare_billing_webhook_events_total", "result", "refused"), "every forged delivery is counted")
	if stripe {
		events := len(ms.eventIDs)
		require.Equal(t, events, ms.metric(t, "adshare_billing_webhook_events_total", "result", "stored"))
		require.Equal(t, ms.delivered-events, ms.metric(t, "adshare_billing_webhook_events_total", "result", "duplicate"))
		require.Positive(t, ms.delivered-events, "a redelivery was made")
		require.Equal(t, events, ms.metric(t, "adshare_billing_webhook_events_total", "result", "applied"), "each event applied once")
	}
}
