package stripe_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/stripe"
)

// New makes the Stripe processor; BaseURL points it elsewhere than
// api.stripe.com (stripe-mock in tests, here a stand-in that answers one
// PaymentIntent). A top-up becomes a PaymentIntent whose client secret the
// app hands to Stripe's SDK; its idempotency key is the top-up's id.
func ExampleNew() {
	stand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.Method, r.URL.Path, "idempotency key:", r.Header.Get("Idempotency-Key"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"pi_123","object":"payment_intent","amount":2000,"currency":"usd",
			"status":"requires_payment_method","client_secret":"pi_123_secret_abc","created":1767225600,
			"metadata":{"adshare_advertiser":"0190a3b4-0000-7000-8000-000000000001"}}`)
	}))
	defer stand.Close()

	client, err := stripe.New(stripe.Config{SecretKey: "sk_test_123", BaseURL: stand.URL})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	defer client.Stop(ctx)
	p, err := client.CreatePayment(ctx, billing.PaymentRequest{
		Key: "topup-0190a3b4", Advertiser: uuid.MustParse("0190a3b4-0000-7000-8000-000000000001"),
		Amount: 2000, Currency: billing.USD, Group: "topup-0190a3b4",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(p.ID, p.Amount, p.Currency, p.Status, p.ClientSecret)
	// Output:
	// POST /v1/payment_intents idempotency key: topup-0190a3b4
	// pi_123 2000 usd pending pi_123_secret_abc
}

// sign is Stripe's webhook signature: HMAC-SHA256 of "<t>.<payload>".
func sign(secret string, t time.Time, payload []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(payload)))
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifyEvent checks a webhook's Stripe-Signature header against the
// endpoint's signing secrets before anything in the payload is believed.
func ExampleWebhooks_VerifyEvent() {
	hooks, err := stripe.NewWebhooks(stripe.WebhooksConfig{Secrets: []stripe.Secret{"whsec_test"}})
	if err != nil {
		panic(err)
	}
	now := time.Unix(1767225600, 0)
	payload := []byte(`{"id":"evt_1","object":"event","type":"payment_intent.succeeded","api_version":"2023-10-16",
		"created":1767225600,"livemode":false,"data":{"object":{"id":"pi_123","object":"payment_intent","amount":2000,
		"currency":"usd","status":"succeeded","created":1767225600,
		"metadata":{"adshare_advertiser":"0190a3b4-0000-7000-8000-000000000001"}}}}`)

	ev, err := hooks.VerifyEvent(payload, sign("whsec_test", now, payload), now)
	if err != nil {
		panic(err)
	}
	fmt.Println(ev.ID, ev.Type, ev.Payment.ID, ev.Payment.Status)

	_, err = hooks.VerifyEvent(payload, sign("whsec_someone_else", now, payload), now)
	fmt.Println(errors.Is(err, billing.ErrWebhookSignature))
	// Output:
	// evt_1 payment_intent.succeeded pi_123 succeeded
	// true
}
