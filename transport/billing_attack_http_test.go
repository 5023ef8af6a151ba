package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/billingtest"
)

func TestWebhooksAreVerifiedDedupedAndOrderFree(t *testing.T) {
	t.Parallel()
	forEachBillingBackend(t, billingOpts{}, func(t *testing.T, b *billingBundle) {
		c := b.cast(t)
		tu := b.topUp(t, c.advertiser.AccessToken, 10_000)
		require.NoError(t, b.proc.DeclinePayment(tu.PaymentID))
		require.NoError(t, b.proc.SucceedPayment(tu.PaymentID))
		events := b.proc.TakeEvents()
		var succeeded billing.Event
		for _, e := range events {
			if e.Type == billing.EventPaymentSucceeded {
				succeeded = e
			}
		}
		require.NotEmpty(t, succeeded.ID)
		payload, sig, err := b.signer.Sign(succeeded)
		require.NoError(t, err)

		// Refused, and nothing stored: the same event, properly signed,
		// is still new afterwards.
		b.webhook(t, payload, "").problem(t, http.StatusBadRequest, "invalid_webhook_signature")
		tampered := []byte(strings.Replace(string(payload), `"amount":10000`, `"amount":99999`, 1))
		require.NotEqual(t, payload, tampered)
		b.webhook(t, tampered, sig).problem(t, http.StatusBadRequest, "invalid_webhook_signature")
		b.webhook(t, payload, billingtest.SignPayload(payload, b.bclock.Now(), "whsec_someone_else")).
			problem(t, http.StatusBadRequest, "invalid_webhook_signature")
		b.webhook(t, payload, billingtest.SignPayload(payload, b.bclock.Now().Add(-10*time.Minute), testWebhookSecret)).
			problem(t, http.StatusBadRequest, "invalid_webhook_signature") // a replay of an old delivery
		b.webhook(t, payload, billingtest.SignPayload(payload, b.bclock.Now().Add(10*time.Minute), testWebhookSecret)).
			problem(t, http.StatusBadRequest, "invalid_webhook_signature") // signed ahead of time
		b.webhook(t, payload, "t=garbage,v1=zz").problem(t, http.StatusBadRequest, "invalid_webhook_signature")
		old := billingtest.Signer{Secrets: b.signer.Secrets, APIVersion: "2020-08-27", Now: b.bclock.Now}
		oldPayload, oldSig, err := old.Sign(succeeded)
		require.NoError(t, err)
		b.webhook(t, oldPayload, oldSig).problem(t, http.StatusBadRequest, "webhook_api_version")
		notJSON := []byte("this is not an event")
		b.webhook(t, notJSON, billingtest.SignPayload(notJSON, b.bclock.Now(), testWebhookSecret)).
			problem(t, http.StatusBadRequest, "invalid_webhook_event")
		_, err = b.store.Event(t.Context(), succeeded.ID)
		require.ErrorIs(t, err, billing.ErrEventNotFound, "nothing refused was stored")
		require.Equal(t, "pending", b.getTopUp(t, c.advertiser.AccessToken, tu.ID).Status)

		// The success first, then the older failure, each twice: credited
		// once, and the late failure moves nothing back.
		var ack struct {
			Received bool   `json:"received"`
			ID       string `json:"id"`
		}
		b.webhook(t, payload, sig).requireStatus(t, http.StatusOK).decode(t, &ack)
		require.Equal(t, succeeded.ID, ack.ID)
		b.deliver(t, events.Reverse().Duplicate(0).Duplicate(1))
		eventually(t, "applied", func() bool { return b.getTopUp(t, c.advertiser.AccessToken, tu.ID).Status == "succeeded" })
		// A replay of a verified delivery within the tolerance is the same
		// event: stored once, applied once.
		b.webhook(t, payload, sig).requireStatus(t, http.StatusOK)
		eventually(t, "every event applied", func() bool {
			pending, err := b.store.UnprocessedEvents(t.Context(), 10)
			return err == nil && len(pending) == 0
		})
		require.Equal(t, int64(10_000*10_000), b.balance(t, c.advertiser.AccessToken, "").BudgetMicros, "credited once")
		txs, _ := b.transactions(t, c.advertiser.AccessToken, "")
		require.Len(t, txs, 1, "one top-up posting")

		// A type adshare does not act on is acknowledged and changes nothing.
		unknown := billing.Event{ID: "evt_unknown_1", Type: "customer.created", Created: b.bclock.Now()}
		b.deliver(t, billingtest.Delivery{unknown})
		stored, err := b.store.Event(t.Context(), unknown.ID)
		require.NoError(t, err, "stored, for the record")
		require.Equal(t, billing.EventType("customer.created"), stored.Type)
		require.Equal(t, int64(10_000*10_000), b.balance(t, c.advertiser.AccessToken, "").BudgetMicros)

		// A refund, delivered twice, takes its amount back from the budget once.
		require.NoError(t, b.proc.RefundPayment(tu.PaymentID, 2_500))
		b.deliver(t, b.proc.TakeEvents().Duplicate(0))
		eventually(t, "the refund is applied", func() bool {
			return b.balance(t, c.advertiser.AccessToken, "").BudgetMicros == 7_500*10_000
		})
		eventually(t, "every event applied", func() bool {
			pending, err := b.store.UnprocessedEvents(t.Context(), 10)
			return err == nil && len(pending) == 0
		})
		require.Equal(t, int64(7_500*10_000), b.balance(t, c.advertiser.AccessToken, "").BudgetMicros, "taken back once")
		require.Equal(t, int64(2_500), b.getTopUp(t, c.advertiser.AccessToken, tu.ID).Refunded)
		b.requireBalanced(t)

		// Over the cap: 413, whether the length is declared or not.
		big := strings.Repeat("x", int(DefaultWebhookMaxBodyBytes)+1)
		b.webhook(t, []byte(big), "t=1,v1=00").problem(t, http.StatusRequestEntityTooLarge, "body_too_large")
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.srv.URL+stripeWebhookPath, io.MultiReader(strings.NewReader(big)))
		require.NoError(t, err)
		req.Header.Set("Stripe-Signature", "t=1,v1=00")
		resp, err := b.client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "a chunked body is cut at the cap")
	})
}

// failingEvents is a billing store whose SaveEvent fails while fail is set.
type failingEvents struct {
	billing.Store
	fail *atomic.Bool
}

func (f failingEvents) SaveEvent(ctx context.Context, e billing.StoredEvent) (bool, error) {
	if f.fail.Load() {
		return false, errors.New("the disk is on fire")
	}
	return f.Store.SaveEvent(ctx, e)
}

func TestAWebhookThatCannotBeStoredIs500SoStripeRetries(t *testing.T) {
	t.Parallel()
	fail := &atomic.Bool{}
	opts := billingOpts{billing: func(cfg *billing.Config) { cfg.Store = failingEvents{Store: cfg.Store, fail: fail} }}
	forEachBillingBackend(t, opts, func(t *testing.T, b *billingBundle) {
		c := b.cast(t)
		tu := b.topUp(t, c.advertiser.AccessToken, 10_000)
		require.NoError(t, b.proc.SucceedPayment(tu.PaymentID))
		events := b.proc.TakeEvents()
		fail.Store(true)
		payload, sig, err := b.signer.Sign(events[len(events)-1])
		require.NoError(t, err)
		p := b.webhook(t, payload, sig).problem(t, http.StatusInternalServerError, "internal")
		require.NotContains(t, p.Detail, "fire", "the cause is logged, not shown")
		fail.Store(false)
		b.deliver(t, events) // Stripe's retry
		eventually(t, "credited on the retry", func() bool { return b.getTopUp(t, c.advertiser.AccessToken, tu.ID).Status == "succeeded" })
	})
}

func TestWebhookDeliveriesAreBoundedAndExemptFromCORSAndRateLimits(t *testing.T) {
	t.Parallel()
	const origin = "https://dashboard.adshare.test"
	opts := billingOpts{
		apiLimits: true, clientLimit: auth.Limit{Rate: 1, Period: time.Hour, Burst: 3},
		api: func(cfg *Config) { cfg.WebhookConcurrency, cfg.AllowedOrigins = 1, []string{origin} },
	}
	forEachBillingBackend(t, opts, func(t *testing.T, b *billingBundle) {
		// Far more deliveries than the client limit allows requests: none
		// is rate limited, and none needs an access token.
		event := billing.Event{ID: "evt_ping", Type: "customer.created", Created: b.bclock.Now()}
		for range 6 {
			b.deliver(t, billingtest.Delivery{event})
		}
		limited := false
		for range 6 {
			if b.do(t, http.MethodGet, "/healthz", "", nil).status == http.StatusTooManyRequests {
				limited = true
			}
		}
		require.True(t, limited, "the API's limit is on for the rest")

		// A browser may not call it: no CORS answer, not even for an
		// allowed origin.
		pre, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, b.srv.URL+stripeWebhookPath, nil)
		require.NoError(t, err)
		pre.Header.Set("Origin", origin)
		pre.Header.Set("Access-Control-Request-Method", http.MethodPost)
		resp, err := b.client.Do(pre)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

		// One delivery at a time: a second while one is still sending its
		// body is a 503 with Retry-After.
		pr, pw := io.Pipe()
		slow, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.srv.URL+stripeWebhookPath, pr)
		require.NoError(t, err)
		slow.Header.Set("Stripe-Signature", "t=1,v1=00")
		done := make(chan int, 1)
		go func() {
			resp, err := b.client.Do(slow)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		_, err = pw.Write([]byte(`{"id":`))
		require.NoError(t, err)
		var busy reply
		eventually(t, "the second delivery is turned away", func() bool {
			payload, sig, err := b.signer.Sign(event)
			require.NoError(t, err)
			busy = b.webhook(t, payload, sig)
			return busy.status == http.StatusServiceUnavailable
		})
		busy.problem(t, http.StatusServiceUnavailable, "webhook_busy")
		require.Equal(t, "1", busy.header.Get("Retry-After"))
		require.NoError(t, pw.Close())
		require.Equal(t, http.StatusBadRequest, <-done, "the slow one, finished, is judged on its signature")
		b.deliver(t, billingtest.Delivery{event}) // the slot is free again
	})
}

func TestBillingRecordsAreTheirOwnersAndAdminsOnly(t *testing.T) {
	t.Parallel()
	forEachBillingBackend(t, billingOpts{manual: true}, func(t *testing.T, b *billingBundle) {
		c := b.cast(t)
		tu := b.topUp(t, c.advertiser.AccessToken, 10_000)
		b.do(t, http.MethodPost, "/billing/topups/"+tu.ID.String()+"/confirm", c.admin.AccessToken, nil).requireStatus(t, http.StatusOK)
		b.serve(t, c.owner.User.ID, c.advertiser.User.ID, loopN, loopCPM, loopShareBP)
		b.settleAndRelease(t)
		po := b.requestPayout(t, c.owner.AccessToken, map[string]any{})

		// Someone else's record is not found, exactly as a record that
		// does not exist: no id can be probed.
		for _, path := range []string{"/billing/topups/" + tu.ID.String(), "/billing/topups/" + uuid.NewString(), "/billing/topups/not-a-uuid"} {
			b.do(t, http.MethodGet, path, c.otherAdvertiser.AccessToken, nil).problem(t, http.StatusNotFound, "topup_not_found")
		}
		b.do(t, http.MethodGet, "/billing/topups/"+tu.ID.String(), c.owner.AccessToken, nil).problem(t, http.StatusNotFound, "topup_not_found")
		for _, path := range []string{"/billing/payouts/" + po.ID.String(), "/billing/payouts/" + uuid.NewString()} {
			b.do(t, http.MethodGet, path, c.otherOwner.AccessToken, nil).problem(t, http.StatusNotFound, "payout_not_found")
		}
		for _, path := range []string{"/billing/balance?user=", "/billing/transactions?user=", "/billing/payouts?user=", "/billing/holds?user="} {
			b.do(t, http.MethodGet, path+c.owner.User.ID.String(), c.otherOwner.AccessToken, nil).problem(t, http.StatusNotFound, "user_not_found")
		}
		require.Empty(t, b.payouts(t, c.otherOwner.AccessToken, ""), "one's own list has no one else's")
		require.Len(t, b.payouts(t, c.owner.AccessToken, ""), 1)

		// Everyone's, and the admin actions, are for admins: 403.
		for _, r := range []request{
			{method: http.MethodGet, path: "/billing/transactions?all=true"},
			{method: http.MethodGet, path: "/billing/payouts?all=true"},
			{method: http.MethodGet, path: "/admin/billing/reconciliation"},
			{method: http.MethodPost, path: "/billing/holds", body: map[string]any{"owner_id": c.owner.User.ID}},
			{method: http.MethodPost, path: "/billing/holds/" + uuid.NewString() + "/release", body: map[string]any{"owner_id": c.owner.User.ID}},
			{method: http.MethodPost, path: "/billing/payouts/" + po.ID.String() + "/record", body: map[string]any{"paid": true}},
			{method: http.MethodPost, path: "/billing/topups/" + tu.ID.String() + "/confirm"},
		} {
			r.token = c.owner.AccessToken
			b.send(t, r).problem(t, http.StatusForbidden, "forbidden")
		}
		// Unauthenticated: 401; a plain user cannot fund ads.
		b.do(t, http.MethodGet, "/billing/balance", "", nil).problem(t, http.StatusUnauthorized, "invalid_token")
		b.startTopUp(t, c.owner.AccessToken, "k1", map[string]any{"amount": 1_000, "currency": "usd"}).problem(t, http.StatusForbidden, "forbidden")

		// An admin sees and acts on anyone's.
		require.Equal(t, int64(loopEarnings), b.balance(t, c.admin.AccessToken, "?user="+c.owner.User.ID.String()).InTransitMicros)
		all, _ := b.transactions(t, c.admin.AccessToken, "?all=true")
		require.NotEmpty(t, all)
		var settlement transactionJSON
		for _, tx := range all {
			if tx.Kind == "settlement" {
				settlement = tx
			}
		}
		require.Len(t, settlement.Entries, 3, "an admin sees the settlement whole")
		require.Len(t, b.payouts(t, c.admin.AccessToken, "?all=true&status=pending"), 1)
		require.Empty(t, b.payouts(t, c.admin.AccessToken, "?all=true&status=paid"))
		b.do(t, http.MethodGet, "/billing/payouts?all=true&user="+c.owner.User.ID.String(), c.admin.AccessToken, nil).
			problem(t, http.StatusUnprocessableEntity, "invalid_query")
		b.do(t, http.MethodGet, "/billing/payouts?status=lost", c.owner.AccessToken, nil).problem(t, http.StatusUnprocessableEntity, "invalid_query")

		// Holds: placed and released by an admin, audited; the owner sees
		// them without the admins' note, and cannot be paid meanwhile.
		_, err := b.billing.RecordPayout(t.Context(), auth.Principal{UserID: c.admin.User.ID, Role: auth.RoleAdmin}, po.ID, false, "bounced")
		require.NoError(t, err)
		var h holdJSON
		b.do(t, http.MethodPost, "/billing/holds", c.admin.AccessToken, map[string]any{"owner_id": c.owner.User.ID, "note": "fraud review 12"}).
			requireStatus(t, http.StatusCreated).decode(t, &h)
		require.Equal(t, "manual", h.Reason)
		b.do(t, http.MethodPost, "/billing/payouts", c.owner.AccessToken, map[string]any{}).problem(t, http.StatusConflict, "payout_held")
		bal := b.balance(t, c.owner.AccessToken, "")
		require.Len(t, bal.Holds, 1)
		require.Empty(t, bal.Holds[0].Note, "the owner does not read the admins' note")
		require.NotContains(t, string(b.do(t, http.MethodGet, "/billing/holds", c.owner.AccessToken, nil).body), "fraud review")
		var listed struct {
			Holds []holdJSON `json:"holds"`
		}
		b.do(t, http.MethodGet, "/billing/holds?user="+c.owner.User.ID.String(), c.admin.AccessToken, nil).requireStatus(t, http.StatusOK).decode(t, &listed)
		require.Equal(t, "fraud review 12", listed.Holds[0].Note)
		b.do(t, http.MethodPost, "/billing/holds/"+h.ID.String()+"/release", c.admin.AccessToken, map[string]any{"owner_id": c.otherOwner.User.ID}).
			problem(t, http.StatusNotFound, "hold_not_found") // another owner's hold id
		var released holdJSON
		b.do(t, http.MethodPost, "/billing/holds/"+h.ID.String()+"/release", c.admin.AccessToken, map[string]any{"owner_id": c.owner.User.ID}).
			requireStatus(t, http.StatusOK).decode(t, &released)
		require.NotNil(t, released.ReleasedAt)
		require.Equal(t, c.admin.User.ID, b.lastEvent(t, billing.AuditHoldPlaced).ActorID)
		require.Equal(t, h.ID.String(), b.lastEvent(t, billing.AuditHoldReleased).Details["hold"])
		b.requestPayout(t, c.owner.AccessToken, map[string]any{})
		b.do(t, http.MethodPost, "/billing/holds", c.admin.AccessToken, map[string]any{"owner_id": c.owner.User.ID, "until": "2001-01-01T00:00:00Z"}).
			problem(t, http.StatusUnprocessableEntity, "invalid_body")
	})
}

func TestTopUpInputIsCheckedAndIdempotent(t *testing.T) {
	t.Parallel()
	forEachBillingBackend(t, billingOpts{}, func(t *testing.T, b *billingBundle) {
		c := b.cast(t)
		tok := c.advertiser.AccessToken
		for _, tt := range []struct {
			description string
			key         string
			body        any
			header      http.Header
			status      int
			code        string
			pointer     string
		}{
			{"no key", "", map[string]any{"amount": 1_000, "currency": "usd"}, nil, 400, "idempotency_key_required", ""},
			{"a key too long", strings.Repeat("k", 101), map[string]any{"amount": 1_000, "currency": "usd"}, nil, 422, "invalid_topup", "#/header/Idempotency-Key"},
			{"a key not ASCII", "ключ", map[string]any{"amount": 1_000, "currency": "usd"}, nil, 422, "invalid_topup", "#/header/Idempotency-Key"},
			{"below the floor", "k", map[string]any{"amount": 499, "currency": "usd"}, nil, 422, "invalid_topup", "#/amount"},
			{"zero", "k", map[string]any{"amount": 0, "currency": "usd"}, nil, 422, "invalid_topup", "#/amount"},
			{"negative", "k", map[string]any{"amount": -5_000, "currency": "usd"}, nil, 422, "invalid_topup", "#/amount"},
			{"above the cap", "k", map[string]any{"amount": 1_000_001, "currency": "usd"}, nil, 422, "invalid_topup", "#/amount"},
			{"the largest int64", "k", `{"amount": 9223372036854775807, "currency": "usd"}`, nil, 422, "invalid_topup", "#/amount"},
			{"beyond int64", "k", `{"amount": 92233720368547758070, "currency": "usd"}`, nil, 422, "invalid_body", "#/amount"},
			{"a float", "k", `{"amount": 10.5, "currency": "usd"}`, nil, 422, "invalid_body", "#/amount"},
			{"an exponent", "k", `{"amount": 1e3, "currency": "usd"}`, nil, 422, "invalid_body", "#/amount"},
			{"a string amount", "k", `{"amount": "1000", "currency": "usd"}`, nil, 422, "invalid_body", "#/amount"},
			{"a null amount", "k", `{"amount": null, "currency": "usd"}`, nil, 422, "invalid_body", "#/amount"},
			{"no currency", "k", map[string]any{"amount": 1_000}, nil, 422, "invalid_body", "#/currency"},
			{"an unknown currency", "k", map[string]any{"amount": 1_000, "currency": "xxx"}, nil, 422, "invalid_topup", "#/currency"},
			{"another currency", "k", map[string]any{"amount": 1_000, "currency": "eur"}, nil, 422, "invalid_topup", "#/currency"},
			{"a number currency", "k", `{"amount": 1000, "currency": 840}`, nil, 422, "invalid_body", "#/currency"},
			{"an unknown field", "k", map[string]any{"amount": 1_000, "currency": "usd", "fee": 0}, nil, 422, "invalid_body", "#/fee"},
			{"bad JSON", "k", `{"amount": 1000,`, nil, 400, "malformed_json", ""},
			{"a duplicate key", "k", `{"amount": 1000, "amount": 500000, "currency": "usd"}`, nil, 400, "malformed_json", ""},
			{"not an object", "k", `[1000, "usd"]`, nil, 400, "malformed_json", ""},
			{"not JSON", "k", "amount=1000&currency=usd", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, 415, "unsupported_media_type", ""},
		} {
			h := http.Header{}
			for k, v := range tt.header {
				h[k] = v
			}
			if tt.key != "" {
				h.Set("Idempotency-Key", tt.key)
			}
			r := b.send(t, request{method: http.MethodPost, path: "/billing/topups", token: tok, body: tt.body, header: h})
			p := r.problem(t, tt.status, tt.code)
			if tt.pointer != "" {
				require.Contains(t, pointers(p), tt.pointer, tt.description)
			}
		}
		got, err := b.store.TopUpsSince(t.Context(), c.advertiser.User.ID, time.Time{})
		require.NoError(t, err)
		require.Empty(t, got, "nothing bad was recorded")

		body := map[string]any{"amount": 1_000, "currency": "USD"}
		var first, again topUpJSON
		b.startTopUp(t, tok, "same", body).requireStatus(t, http.StatusCreated).decode(t, &first)
		b.startTopUp(t, tok, "same", body).requireStatus(t, http.StatusCreated).decode(t, &again)
		require.Equal(t, first.ID, again.ID, "a retry is the same top-up")
		require.Equal(t, first.ClientSecret, again.ClientSecret)
		b.startTopUp(t, tok, "same", map[string]any{"amount": 2_000, "currency": "usd"}).problem(t, http.StatusConflict, "idempotency_key_conflict")
		var theirs topUpJSON
		b.startTopUp(t, c.otherAdvertiser.AccessToken, "same", body).requireStatus(t, http.StatusCreated).decode(t, &theirs)
		require.NotEqual(t, first.ID, theirs.ID, "keys are per advertiser")

		// Twenty retries at once of one key: one top-up.
		var wg sync.WaitGroup
		ids := make([]uuid.UUID, 20)
		for i := range ids {
			wg.Go(func() {
				var tu topUpJSON
				r := b.startTopUp(t, tok, "burst", body)
				if r.status == http.StatusCreated && json.Unmarshal(r.body, &tu) == nil {
					ids[i] = tu.ID
				}
			})
		}
		wg.Wait()
		for _, id := range ids {
			require.Equal(t, ids[0], id, "every retry answered the same top-up")
		}
		require.Zero(t, b.balance(t, tok, "").BudgetMicros, "nothing is credited before the processor says so")
	})
}

func TestPayoutRequestsAreCheckedAndOneWinsARace(t *testing.T) {
	t.Parallel()
	forEachBillingBackend(t, billingOpts{manual: true}, func(t *testing.T, b *billingBundle) {
		c := b.cast(t)
		tu := b.topUp(t, c.advertiser.AccessToken, loopTopUp)
		b.do(t, http.MethodPost, "/billing/topups/"+tu.ID.String()+"/confirm", c.admin.AccessToken, nil).requireStatus(t, http.StatusOK)
		b.serve(t, c.owner.User.ID, c.advertiser.User.ID, 2*loopN, loopCPM, loopShareBP) // $100 earned
		b.settleAndRelease(t)

		for _, tt := range []struct {
			body   any
			status int
			code   string
		}{
			{map[string]any{"amount": -100}, 422, "payout_below_minimum"},
			{map[string]any{"amount": 4_999}, 422, "payout_below_minimum"},
			{map[string]any{"amount": 10_001}, 409, "insufficient_funds"},
			{`{"amount": 9223372036854775807}`, 409, "insufficient_funds"},
			{`{"amount": 50.5}`, 422, "invalid_body"},
			{`{"amount": "all"}`, 422, "invalid_body"},
			{`{"to": "acct_attacker"}`, 422, "invalid_body"},
			{"", 400, "malformed_json"},
		} {
			b.send(t, request{method: http.MethodPost, path: "/billing/payouts", token: c.owner.AccessToken, body: tt.body}).
				problem(t, tt.status, tt.code)
		}
		b.do(t, http.MethodPost, "/billing/payouts", c.otherOwner.AccessToken, map[string]any{}).
			problem(t, http.StatusUnprocessableEntity, "payout_below_minimum") // nothing to pay

		// Eight requests at once for everything: exactly one payout.
		var wg sync.WaitGroup
		statuses := make([]int, 8)
		for i := range statuses {
			wg.Go(func() {
				statuses[i] = b.do(t, http.MethodPost, "/billing/payouts", c.owner.AccessToken, map[string]any{}).status
			})
		}
		wg.Wait()
		created := 0
		for _, s := range statuses {
			if s == http.StatusCreated {
				created++
			} else { // a payout on its way, or nothing left to pay
				require.Contains(t, []int{http.StatusConflict, http.StatusUnprocessableEntity}, s)
			}
		}
		require.Equal(t, 1, created, "statuses %v", statuses)
		pos := b.payouts(t, c.owner.AccessToken, "")
		require.Len(t, pos, 1)
		require.Equal(t, int64(10_000), pos[0].Amount)
		bal := b.balance(t, c.owner.AccessToken, "")
		require.Zero(t, bal.AvailableMicros)
		require.Equal(t, int64(2*loopEarnings), bal.InTransitMicros, "reserved once")
		b.requireBalanced(t)
	})
}

func TestTheStatementPagesWithItsCursor(t *testing.T) {
	t.Parallel()
	forEachBillingBackend(t, billingOpts{manual: true}, func(t *testing.T, b *billingBundle) {
		c := b.cast(t)
		admin := auth.Principal{UserID: c.admin.User.ID, Role: auth.RoleAdmin}
		for range 5 {
			tu := b.topUp(t, c.advertiser.AccessToken, 1_000)
			_, err := b.billing.ConfirmTopUp(t.Context(), admin, tu.ID)
			require.NoError(t, err)
		}
		var seen []uuid.UUID
		cursor := ""
		for page := 0; ; page++ {
			q := "?limit=2"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			txs, next := b.transactions(t, c.advertiser.AccessToken, q)
			for _, tx := range txs {
				seen = append(seen, tx.ID)
			}
			if next == "" {
				break
			}
			require.Less(t, page, 5, "the pages end")
			cursor = next
		}
		require.Len(t, seen, 5, "every transaction once")
		for _, bad := range []string{"?cursor=!!", "?cursor=" + uuid.NewString(), "?limit=0", "?limit=501", "?limit=x", "?user=nobody"} {
			b.do(t, http.MethodGet, "/billing/transactions"+bad, c.advertiser.AccessToken, nil).problem(t, http.StatusUnprocessableEntity, "invalid_query")
		}
	})
}

func TestTopUpsAreRateLimitedAndSurviveAProcessorHiccup(t *testing.T) {
	t.Parallel()
	opts := billingOpts{billing: func(cfg *billing.Config) {
		cfg.TopUpLimitPerUser = auth.Limit{Rate: 1, Period: time.Hour, Burst: 3}
	}}
	forEachBillingBackend(t, opts, func(t *testing.T, b *billingBundle) {
		c := b.cast(t)
		body := map[string]any{"amount": 1_000, "currency": "usd"}

		// The processor does not answer: 503 to retry with the same key,
		// which then completes the same top-up.
		b.proc.FailNext(billingtest.MethodCreatePayment, billingtest.FailRateLimit)
		r := b.startTopUp(t, c.advertiser.AccessToken, "hiccup", body)
		r.problem(t, http.StatusServiceUnavailable, "processor_unavailable")
		require.Equal(t, "5", r.header.Get("Retry-After"))
		var tu topUpJSON
		b.startTopUp(t, c.advertiser.AccessToken, "hiccup", body).requireStatus(t, http.StatusCreated).decode(t, &tu)
		require.NotEmpty(t, tu.ClientSecret)
		got, err := b.store.TopUpsSince(t.Context(), c.advertiser.User.ID, time.Time{})
		require.NoError(t, err)
		require.Len(t, got, 1, "the retry resumed the top-up its key made")

		// Card testing: a burst of three per user (a retry of a key is not
		// another), then one an hour.
		b.topUp(t, c.advertiser.AccessToken, 1_000)
		b.topUp(t, c.advertiser.AccessToken, 1_000)
		limited := b.startTopUp(t, c.advertiser.AccessToken, uuid.NewString(), body)
		limited.problem(t, http.StatusTooManyRequests, "topup_limit")
		require.NotEmpty(t, limited.header.Get("Retry-After"))
		b.topUp(t, c.otherAdvertiser.AccessToken, 1_000) // the limit is the user's
	})
}
