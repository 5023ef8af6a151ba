package stripe_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/billingtest"
	"github.com/adshare/adshare/billing/stripe"
)

const (
	whsec    stripe.Secret = "whsec_test0123456789abcdefghijklmnop"
	whsecOld stripe.Secret = "whsec_old0123456789abcdefghijklmnopq"
)

// clock is a fixed time far from the process's clock: the verifier must
// judge a signature's age by the now it is given, not by time.Now.
var clock = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

func newWebhooks(t *testing.T, cfg stripe.WebhooksConfig) *stripe.Webhooks {
	t.Helper()
	if cfg.Secrets == nil {
		cfg.Secrets = []stripe.Secret{whsec}
	}
	w, err := stripe.NewWebhooks(cfg)
	require.NoError(t, err)
	return w
}

// story runs the fake through every event adshare acts on, and a few it
// does not, and returns what it emitted.
func story(t *testing.T) billingtest.Delivery {
	t.Helper()
	ctx := context.Background()
	p := billingtest.NewProcessor(billingtest.ProcessorConfig{Now: func() time.Time { return clock }})
	pay, err := p.CreatePayment(ctx, billing.PaymentRequest{Key: "topup-1", Advertiser: uuid.New(), Amount: 10_000, Currency: "usd"})
	require.NoError(t, err)
	require.NoError(t, p.DeclinePayment(pay.ID))
	require.NoError(t, p.SucceedPayment(pay.ID))
	require.NoError(t, p.RefundPayment(pay.ID, 1_000))
	du, err := p.DisputePayment(pay.ID, 2_000)
	require.NoError(t, err)
	require.NoError(t, p.CloseDispute(du, true))
	acct, err := p.CreateAccount(ctx, billing.AccountRequest{Key: "acct-1", Owner: uuid.New(), Country: "US"})
	require.NoError(t, err)
	require.NoError(t, p.UpdateAccount(acct.ID, func(a *billing.ConnectedAccount) {
		a.DetailsSubmitted = true
		a.DisabledReason = "requirements.pending_verification"
	}))
	require.NoError(t, p.EnableAccount(acct.ID))
	tr, err := p.Transfer(ctx, billing.TransferRequest{Key: "payout-1", Destination: acct.ID, Amount: 500, Currency: "usd", Group: "payout-1", Payout: uuid.New()})
	require.NoError(t, err)
	require.NoError(t, p.ReverseTransfer(tr.ID, 200))
	_, err = p.FailPayout(acct.ID, 300, "usd", "account_closed")
	require.NoError(t, err)
	other, err := p.CreatePayment(ctx, billing.PaymentRequest{Key: "topup-2", Advertiser: uuid.New(), Amount: 700, Currency: "eur"})
	require.NoError(t, err)
	require.NoError(t, p.CancelPayment(other.ID))
	return p.Events()
}

// TestWebhooksReadTheFakesEvents signs every event the fake emits as
// Stripe would send it and reads it back: the adapter's mapping and the
// fake's events agree, type by type.
func TestWebhooksReadTheFakesEvents(t *testing.T) {
	t.Parallel()
	events := story(t)
	seen := map[billing.EventType]bool{}
	for _, e := range events {
		seen[e.Type] = true
	}
	for _, typ := range []billing.EventType{
		billing.EventPaymentSucceeded, billing.EventPaymentFailed, billing.EventChargeRefunded, billing.EventDisputeCreated,
		billing.EventDisputeClosed, billing.EventAccountUpdated, billing.EventTransferReversed, billing.EventPayoutFailed,
		"payment_intent.created", "transfer.created", "payment_intent.canceled",
	} {
		require.True(t, seen[typ], "the story emits %s", typ)
	}

	w := newWebhooks(t, stripe.WebhooksConfig{})
	signer := billingtest.Signer{Secrets: []stripe.Secret{whsec}, Now: func() time.Time { return clock }}
	for _, want := range events {
		payload, header, err := signer.Sign(want)
		require.NoError(t, err)
		got, err := w.VerifyEvent(payload, header, clock)
		require.NoError(t, err, "%s", want.Type)
		require.Equal(t, want, got, "%s: %s", want.Type, payload)
	}

	// The objects are really there, and the envelope-only ones really bare.
	byType := map[billing.EventType]billing.Event{}
	for _, e := range events {
		byType[e.Type] = e
	}
	require.Equal(t, billing.PaymentFailed, byType[billing.EventPaymentFailed].Payment.Status)
	require.Equal(t, int64(1_000), byType[billing.EventChargeRefunded].Refund.Amount)
	require.Equal(t, "won", byType[billing.EventDisputeClosed].Dispute.Status)
	require.Equal(t, int64(billingtest.DefaultDisputeFee), byType[billing.EventDisputeClosed].Dispute.Fee)
	require.True(t, byType[billing.EventAccountUpdated].Connect.TransfersEnabled)
	require.NotEmpty(t, byType[billing.EventAccountUpdated].Account, "a Connect event names its account")
	require.Equal(t, int64(200), byType[billing.EventTransferReversed].Transfer.Reversed)
	require.Equal(t, "account_closed", byType[billing.EventPayoutFailed].Payout.FailureCode)
	require.Equal(t, byType[billing.EventAccountUpdated].Account, byType[billing.EventPayoutFailed].Account)
	bare := byType["transfer.created"]
	require.Equal(t, billing.Event{ID: bare.ID, Type: "transfer.created", Created: clock}, bare)
}

func TestWebhookVerification(t *testing.T) {
	t.Parallel()
	event := billing.Event{ID: "evt_1", Type: billing.EventPayoutFailed, Account: "acct_1", Created: clock,
		Payout: &billing.ConnectedPayout{ID: "po_1", Amount: 900, Currency: "usd", Status: "failed", FailureCode: "no_account"}}
	payload, err := billingtest.EventJSON(event, "")
	require.NoError(t, err)
	sign := func(at time.Time, secrets ...stripe.Secret) string {
		if len(secrets) == 0 {
			secrets = []stripe.Secret{whsec}
		}
		return billingtest.SignPayload(payload, at, secrets...)
	}
	otherVersion, err := billingtest.EventJSON(event, "2024-04-10")
	require.NoError(t, err)
	noVersion := []byte(strings.Replace(string(otherVersion), `"api_version":"2024-04-10"`, `"api_version":""`, 1))
	wrongObject := []byte(strings.Replace(string(payload), `"object":"payout"`, `"object":"charge"`, 1))

	for _, tc := range []struct {
		description string
		cfg         stripe.WebhooksConfig
		payload     []byte
		header      string
		expectErr   error
	}{
		{description: "signed now", payload: payload, header: sign(clock)},
		{description: "signed within the tolerance", payload: payload, header: sign(clock.Add(-299 * time.Second))},
		{description: "signed too long ago", payload: payload, header: sign(clock.Add(-301 * time.Second)), expectErr: billing.ErrWebhookSignature},
		{description: "signed a little ahead", payload: payload, header: sign(clock.Add(299 * time.Second))},
		{description: "signed too far ahead (stripe-go alone accepts it)", payload: payload, header: sign(clock.Add(time.Hour)), expectErr: billing.ErrWebhookSignature},
		{description: "a tolerance of our own", cfg: stripe.WebhooksConfig{Tolerance: 10 * time.Second}, payload: payload, header: sign(clock.Add(-11 * time.Second)), expectErr: billing.ErrWebhookSignature},
		{description: "a future skew of our own", cfg: stripe.WebhooksConfig{FutureSkew: time.Second}, payload: payload, header: sign(clock.Add(2 * time.Second)), expectErr: billing.ErrWebhookSignature},
		{description: "no header", payload: payload, header: "", expectErr: billing.ErrWebhookSignature},
		{description: "a header that is not one", payload: payload, header: "garbage", expectErr: billing.ErrWebhookSignature},
		{description: "another secret", payload: payload, header: sign(clock, "whsec_someoneelse0123456789"), expectErr: billing.ErrWebhookSignature},
		{description: "tampered body", payload: []byte(strings.Replace(string(payload), "900", "90000", 1)), header: sign(clock), expectErr: billing.ErrWebhookSignature},
		{description: "a fresh time before an old signature", payload: payload,
			header: fmt.Sprintf("t=%d,", clock.Unix()) + sign(clock.Add(-time.Hour)), expectErr: billing.ErrWebhookSignature},
		{description: "rotation: the old secret still signs", cfg: stripe.WebhooksConfig{Secrets: []stripe.Secret{whsec, whsecOld}}, payload: payload, header: sign(clock, whsecOld)},
		{description: "rotation: the new secret signs", cfg: stripe.WebhooksConfig{Secrets: []stripe.Secret{whsec, whsecOld}}, payload: payload, header: sign(clock, whsec)},
		{description: "rotation: Stripe signs with both, the endpoint knows the new one", payload: payload, header: sign(clock, whsecOld, whsec)},
		{description: "another API version", payload: otherVersion, header: billingtest.SignPayload(otherVersion, clock, whsec), expectErr: billing.ErrWebhookVersion},
		{description: "no API version (stripe-mock's fixtures)", payload: noVersion, header: billingtest.SignPayload(noVersion, clock, whsec), expectErr: billing.ErrWebhookVersion},
		{description: "another API version, badly signed, is a bad signature first", payload: otherVersion, header: sign(clock), expectErr: billing.ErrWebhookSignature},
		{description: "signed, not JSON", payload: []byte("not json"), header: billingtest.SignPayload([]byte("not json"), clock, whsec), expectErr: billing.ErrInvalidEvent},
		{description: "signed, an object of the wrong kind", payload: wrongObject, header: billingtest.SignPayload(wrongObject, clock, whsec), expectErr: billing.ErrInvalidEvent},
		{description: "over MaxBody", cfg: stripe.WebhooksConfig{MaxBody: 64}, payload: payload, header: sign(clock), expectErr: billing.ErrInvalidEvent},
	} {
		t.Run(tc.description, func(t *testing.T) {
			t.Parallel()
			w := newWebhooks(t, tc.cfg)
			got, err := w.VerifyEvent(tc.payload, tc.header, clock)
			if tc.expectErr != nil {
				require.ErrorIs(t, err, tc.expectErr)
				for _, other := range []error{billing.ErrWebhookSignature, billing.ErrWebhookVersion, billing.ErrInvalidEvent} {
					if other != tc.expectErr {
						require.NotErrorIs(t, err, other)
					}
				}
				for _, s := range []stripe.Secret{whsec, whsecOld} {
					require.NotContains(t, err.Error(), strings.TrimPrefix(string(s), "whsec_"))
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, event, got)
		})
	}
}

// TestStripeGoAloneAcceptsTheFuture documents why the verifier checks the
// future itself: stripe-go's check takes a signature an hour ahead.
func TestStripeGoAloneAcceptsTheFuture(t *testing.T) {
	t.Parallel()
	payload, err := billingtest.EventJSON(billing.Event{ID: "evt_1", Type: "balance.available", Created: time.Now()}, "")
	require.NoError(t, err)
	header := billingtest.SignPayload(payload, time.Now().Add(time.Hour), whsec)
	_, err = webhook.ConstructEvent(payload, header, string(whsec))
	require.NoError(t, err, "stripe-go checks only age")
	_, err = newWebhooks(t, stripe.WebhooksConfig{}).VerifyEvent(payload, header, time.Now())
	require.ErrorIs(t, err, billing.ErrWebhookSignature)
}

func TestUnknownEventsAreEnvelopes(t *testing.T) {
	t.Parallel()
	// A real Stripe shape for a type adshare ignores: the object is not read.
	payload := []byte(`{"id":"evt_9","object":"event","api_version":"2023-10-16","created":1930000000,"livemode":true,
		"account":"acct_9","type":"customer.created","data":{"object":{"id":"cus_1","object":"customer","email":"x@example.com"}}}`)
	got, err := newWebhooks(t, stripe.WebhooksConfig{}).VerifyEvent(payload, billingtest.SignPayload(payload, clock, whsec), clock)
	require.NoError(t, err)
	require.Equal(t, billing.Event{ID: "evt_9", Type: "customer.created", Account: "acct_9", Created: time.Unix(1930000000, 0).UTC(), Livemode: true}, got)

	// A known type must carry its object.
	var e map[string]any
	require.NoError(t, json.Unmarshal(payload, &e))
	e["type"] = "charge.refunded"
	payload, err = json.Marshal(e)
	require.NoError(t, err)
	_, err = newWebhooks(t, stripe.WebhooksConfig{}).VerifyEvent(payload, billingtest.SignPayload(payload, clock, whsec), clock)
	require.ErrorIs(t, err, billing.ErrInvalidEvent)
}

func TestWebhooksConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		description string
		cfg         stripe.WebhooksConfig
		errHas      string
	}{
		{"no secret", stripe.WebhooksConfig{}, "needs the endpoint's signing secret"},
		{"an API key instead", stripe.WebhooksConfig{Secrets: []stripe.Secret{"sk_test_51abcdef"}}, "not an API key"},
		{"negative", stripe.WebhooksConfig{Secrets: []stripe.Secret{whsec}, FutureSkew: -1}, "must not be negative"},
	} {
		_, err := stripe.NewWebhooks(tc.cfg)
		require.ErrorContains(t, err, tc.errHas, tc.description)
		require.NotContains(t, err.Error(), "51abcdef", tc.description)
	}
	w := newWebhooks(t, stripe.WebhooksConfig{})
	require.Equal(t, stripe.DefaultMaxBody, w.MaxBody())
	cfg := stripe.WebhooksConfig{Secrets: []stripe.Secret{whsec}}
	for _, out := range []string{fmt.Sprintf("%v %+v %#v", w, *w, w), fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)} {
		require.NotContains(t, out, strings.TrimPrefix(string(whsec), "whsec_"))
	}
}
