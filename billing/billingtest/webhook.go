package billingtest

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/stripe"
)

// Signer turns events into the webhooks Stripe would send an endpoint:
// the event's JSON and its Stripe-Signature header.
type Signer struct {
	// Secrets sign each payload (one v1 signature each, as Stripe does
	// while a secret is rolled). At least one is required.
	Secrets []stripe.Secret
	// APIVersion is the events' api_version. Defaults to the version
	// stripe-go v76 reads (stripego.APIVersion, 2023-10-16).
	APIVersion string
	// Now is the signing time. Defaults to time.Now.
	Now func() time.Time
}

// Sign returns ev's payload and its Stripe-Signature header.
func (s Signer) Sign(ev billing.Event) (payload []byte, header string, err error) {
	if len(s.Secrets) == 0 {
		return nil, "", errors.New("billingtest: Signer.Secrets is empty")
	}
	payload, err = EventJSON(ev, s.APIVersion)
	if err != nil {
		return nil, "", err
	}
	at := time.Now()
	if s.Now != nil {
		at = s.Now()
	}
	return payload, SignPayload(payload, at, s.Secrets...), nil
}

// SignPayload returns the Stripe-Signature header of payload signed at at
// with each secret (stripe-go's webhook.GenerateTestSignedPayload).
func SignPayload(payload []byte, at time.Time, secrets ...stripe.Secret) string {
	var b strings.Builder
	for i, sec := range secrets {
		sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: string(sec), Timestamp: at})
		if i == 0 {
			b.WriteString(sp.Header)
			continue
		}
		b.WriteString(",v1=" + hex.EncodeToString(sp.Signature))
	}
	return b.String()
}

// EventJSON returns ev as Stripe writes an event of API version apiVersion
// ("" for stripego.APIVersion): the envelope, and the object with the
// fields billing.Event carries (and the object's kind), as they are on
// 2023-10-16 (nothing expanded). An event of a type adshare does not act
// on gets an object with only its kind.
func EventJSON(ev billing.Event, apiVersion string) ([]byte, error) {
	if apiVersion == "" {
		apiVersion = stripego.APIVersion
	}
	obj, err := objectJSON(ev)
	if err != nil {
		return nil, err
	}
	e := map[string]any{
		"id": ev.ID, "object": "event", "api_version": apiVersion, "created": ev.Created.Unix(),
		"livemode": ev.Livemode, "type": ev.Type, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil},
		"data":    map[string]any{"object": obj},
	}
	if ev.Account != "" {
		e["account"] = ev.Account
	}
	return json.Marshal(e)
}

func objectJSON(ev billing.Event) (map[string]any, error) {
	switch {
	case ev.Payment != nil:
		return paymentJSON(ev.Payment), nil
	case ev.Refund != nil:
		r := ev.Refund
		o := map[string]any{"id": r.Charge, "object": "charge", "amount_refunded": r.Amount, "currency": r.Currency, "payment_intent": r.Payment}
		if r.ID != "" {
			o["refunds"] = map[string]any{"object": "list", "data": []any{map[string]any{"id": r.ID, "object": "refund"}}}
		}
		return o, nil
	case ev.Dispute != nil:
		d := ev.Dispute
		return map[string]any{
			"id": d.ID, "object": "dispute", "amount": d.Amount, "currency": d.Currency, "status": d.Status,
			"charge": d.Charge, "payment_intent": d.Payment,
			"balance_transactions": []any{map[string]any{
				"id": "txn_" + d.ID, "object": "balance_transaction", "type": "adjustment", "currency": d.Currency,
				"amount": -d.Amount, "fee": d.Fee, "net": -d.Amount - d.Fee,
			}},
		}, nil
	case ev.Connect != nil:
		return accountJSON(ev.Connect), nil
	case ev.Transfer != nil:
		t := ev.Transfer
		return map[string]any{
			"id": t.ID, "object": "transfer", "amount": t.Amount, "amount_reversed": t.Reversed, "currency": t.Currency,
			"destination": t.Destination, "transfer_group": t.Group, "created": t.Created.Unix(),
			"reversed": t.Reversed == t.Amount, "metadata": metadata(stripe.MetadataPayout, t.Payout),
		}, nil
	case ev.Payout != nil:
		po := ev.Payout
		return map[string]any{
			"id": po.ID, "object": "payout", "amount": po.Amount, "currency": po.Currency, "status": po.Status,
			"failure_code": po.FailureCode,
		}, nil
	}
	kind, _, _ := strings.Cut(string(ev.Type), ".")
	if kind == "" {
		return nil, errors.New("billingtest: an event needs a type")
	}
	return map[string]any{"object": kind}, nil
}

// paymentJSON writes a PaymentIntent: pending is requires_payment_method,
// failed the same with a last_payment_error.
func paymentJSON(p *billing.Payment) map[string]any {
	o := map[string]any{
		"id": p.ID, "object": "payment_intent", "amount": p.Amount, "currency": p.Currency,
		"created": p.Created.Unix(), "metadata": metadata(stripe.MetadataAdvertiser, p.Advertiser),
		"latest_charge": nil,
	}
	switch p.Status {
	case billing.PaymentSucceeded, billing.PaymentCanceled:
		o["status"] = string(p.Status)
	case billing.PaymentFailed:
		o["status"] = "requires_payment_method"
		o["last_payment_error"] = map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "generic_decline"}
	default:
		o["status"] = "requires_payment_method"
	}
	return o
}

func accountJSON(a *billing.ConnectedAccount) map[string]any {
	transfers := "inactive"
	if a.TransfersEnabled {
		transfers = "active"
	}
	due := a.RequirementsDue
	if due == nil {
		due = []string{}
	}
	var disabled any
	if a.DisabledReason != "" {
		disabled = a.DisabledReason
	}
	return map[string]any{
		"id": a.ID, "object": "account", "type": "express",
		"payouts_enabled": a.PayoutsEnabled, "charges_enabled": a.TransfersEnabled, "details_submitted": a.DetailsSubmitted,
		"capabilities": map[string]any{"transfers": transfers, "card_payments": transfers},
		"requirements": map[string]any{"currently_due": due, "past_due": []string{}, "disabled_reason": disabled},
		"metadata":     metadata(stripe.MetadataOwner, a.Owner),
	}
}

// metadata is an object's metadata with id under key, or empty for
// uuid.Nil (an object adshare did not make).
func metadata(key string, id uuid.UUID) map[string]string {
	if id == uuid.Nil {
		return map[string]string{}
	}
	return map[string]string{key: id.String()}
}
