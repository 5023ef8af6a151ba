package stripe

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"

	"github.com/adshare/adshare/billing"
)

var (
	advertiser = uuid.MustParse("11111111-1111-4111-8111-111111111111")
	owner      = uuid.MustParse("22222222-2222-4222-8222-222222222222")
	payout     = uuid.MustParse("33333333-3333-4333-8333-333333333333")
	since      = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
)

// formOf is what stripe-go sends for params.
func formOf(t *testing.T, params any) url.Values {
	t.Helper()
	v := &form.Values{}
	form.AppendTo(v, params)
	return v.ToValues()
}

func TestRequestParams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		description string
		params      any
		want        url.Values
	}{
		{
			description: "top-up with a group",
			params:      paymentParams(billing.PaymentRequest{Key: "topup-1", Advertiser: advertiser, Amount: 5000, Currency: "usd", Group: "adv:1:topup:1"}),
			want: url.Values{
				"amount": {"5000"}, "currency": {"usd"}, "automatic_payment_methods[enabled]": {"true"},
				"metadata[adshare_advertiser]": {advertiser.String()}, "metadata[adshare_top_up]": {"topup-1"},
				"transfer_group": {"adv:1:topup:1"},
			},
		},
		{
			description: "top-up without a group sends none",
			params:      paymentParams(billing.PaymentRequest{Key: "topup-2", Advertiser: advertiser, Amount: 100, Currency: "eur"}),
			want: url.Values{
				"amount": {"100"}, "currency": {"eur"}, "automatic_payment_methods[enabled]": {"true"},
				"metadata[adshare_advertiser]": {advertiser.String()}, "metadata[adshare_top_up]": {"topup-2"},
			},
		},
		{
			description: "payment read expands the fee",
			params:      paymentGetParams(),
			want:        url.Values{"expand[0]": {"latest_charge.balance_transaction"}},
		},
		{
			description: "express account with both capabilities",
			params:      accountParams(billing.AccountRequest{Key: "acct-1", Owner: owner, Email: "o@example.com", Country: "US"}),
			want: url.Values{
				"type": {"express"}, "country": {"US"}, "email": {"o@example.com"},
				"capabilities[transfers][requested]": {"true"}, "capabilities[card_payments][requested]": {"true"},
				"metadata[adshare_owner]": {owner.String()},
			},
		},
		{
			description: "account link",
			params:      accountLinkParams("acct_1", "https://app.example/refresh", "https://app.example/done"),
			want: url.Values{
				"account": {"acct_1"}, "type": {"account_onboarding"},
				"refresh_url": {"https://app.example/refresh"}, "return_url": {"https://app.example/done"},
			},
		},
		{
			description: "transfer",
			params:      transferParams(billing.TransferRequest{Key: payout.String(), Destination: "acct_1", Amount: 1234, Currency: "usd", Group: payout.String(), Payout: payout}),
			want: url.Values{
				"amount": {"1234"}, "currency": {"usd"}, "destination": {"acct_1"},
				"transfer_group": {payout.String()}, "metadata[adshare_payout]": {payout.String()},
			},
		},
		{
			description: "transfers of a group: every time",
			params:      transferListParams("g1", time.Time{}),
			want:        url.Values{"transfer_group": {"g1"}, "limit": {"100"}},
		},
		{
			description: "transfers since",
			params:      transferListParams("", since),
			want:        url.Values{"created[gte]": {"1714521600"}, "limit": {"100"}},
		},
		{
			description: "balance transactions since, with each charge's payment",
			params:      balanceTransactionListParams(since),
			want:        url.Values{"created[gte]": {"1714521600"}, "limit": {"100"}, "expand[0]": {"data.source"}},
		},
	} {
		t.Run(tc.description, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, formOf(t, tc.params))
		})
	}

	// The idempotency key is the request's own key, on every creating call.
	require.Equal(t, "k1", *paymentParams(billing.PaymentRequest{Key: "k1"}).IdempotencyKey)
	require.Equal(t, "k2", *accountParams(billing.AccountRequest{Key: "k2"}).IdempotencyKey)
	require.Equal(t, "k3", *transferParams(billing.TransferRequest{Key: "k3"}).IdempotencyKey)
}

// unmarshal decodes Stripe JSON into a stripe-go object, as the API client
// and the webhooks do.
func unmarshal[T any](t *testing.T, js string) *T {
	t.Helper()
	v := new(T)
	require.NoError(t, json.Unmarshal([]byte(js), v))
	return v
}

func TestPaymentOf(t *testing.T) {
	t.Parallel()
	created := time.Unix(1714521600, 0).UTC()
	expanded := `{"id":"pi_1","object":"payment_intent","amount":5000,"currency":"usd","status":"succeeded","created":1714521600,
		"client_secret":"pi_1_secret_x","metadata":{"adshare_advertiser":"` + advertiser.String() + `"},
		"latest_charge":{"id":"ch_1","object":"charge","amount":5000,"amount_refunded":700,"disputed":true,"currency":"usd",
			"balance_transaction":{"id":"txn_1","object":"balance_transaction","amount":5000,"fee":175,"net":4825,"currency":"usd"}}}`
	require.Equal(t, billing.Payment{
		ID: "pi_1", Advertiser: advertiser, Amount: 5000, Currency: "usd", Status: billing.PaymentSucceeded,
		Fee: 175, Refunded: 700, Disputed: 5000, Created: created,
	}, paymentOf(unmarshal[stripego.PaymentIntent](t, expanded)), "the client secret is never mapped; the expanded charge gives fee, refunds, dispute")

	asInEvents := `{"id":"pi_1","object":"payment_intent","amount":5000,"currency":"usd","status":"succeeded","created":1714521600,
		"metadata":{"adshare_advertiser":"` + advertiser.String() + `"},"latest_charge":"ch_1"}`
	require.Equal(t, billing.Payment{ID: "pi_1", Advertiser: advertiser, Amount: 5000, Currency: "usd", Status: billing.PaymentSucceeded, Created: created},
		paymentOf(unmarshal[stripego.PaymentIntent](t, asInEvents)), "an unexpanded charge says nothing")

	otherCurrency := `{"id":"pi_1","amount":5000,"currency":"eur","status":"succeeded",
		"latest_charge":{"id":"ch_1","amount":5000,"currency":"eur","balance_transaction":{"id":"txn_1","amount":5400,"fee":190,"currency":"usd"}}}`
	require.Zero(t, paymentOf(unmarshal[stripego.PaymentIntent](t, otherCurrency)).Fee, "a fee in the settlement currency is not the payment's")

	foreign := `{"id":"pi_2","amount":100,"currency":"usd","status":"processing","metadata":{"adshare_advertiser":"not-a-uuid"}}`
	require.Equal(t, uuid.Nil, paymentOf(unmarshal[stripego.PaymentIntent](t, foreign)).Advertiser)

	for status, want := range map[string]billing.PaymentStatus{
		`"succeeded"`:               billing.PaymentSucceeded,
		`"canceled"`:                billing.PaymentCanceled,
		`"requires_payment_method"`: billing.PaymentPending,
		`"requires_payment_method","last_payment_error":{"type":"card_error","code":"card_declined"}`: billing.PaymentFailed,
		`"requires_confirmation"`: billing.PaymentPending,
		`"requires_action"`:       billing.PaymentPending,
		`"processing"`:            billing.PaymentPending,
		`"requires_capture"`:      billing.PaymentPending,
	} {
		pi := unmarshal[stripego.PaymentIntent](t, `{"id":"pi_3","status":`+status+`}`)
		require.Equal(t, want, paymentOf(pi).Status, status)
	}
}

func TestObjectMapping(t *testing.T) {
	t.Parallel()
	created := time.Unix(1714521600, 0).UTC()

	acct := unmarshal[stripego.Account](t, `{"id":"acct_1","object":"account","payouts_enabled":false,"details_submitted":true,
		"capabilities":{"transfers":"active","card_payments":"pending"},"metadata":{"adshare_owner":"`+owner.String()+`"},
		"requirements":{"past_due":["external_account"],"currently_due":["external_account","tos_acceptance.date"],"disabled_reason":"requirements.past_due"}}`)
	require.Equal(t, billing.ConnectedAccount{
		ID: "acct_1", Owner: owner, TransfersEnabled: true, DetailsSubmitted: true,
		RequirementsDue: []string{"external_account", "tos_acceptance.date"}, DisabledReason: "requirements.past_due",
	}, accountOf(acct))
	require.False(t, accountOf(unmarshal[stripego.Account](t, `{"id":"acct_2","capabilities":{"transfers":"pending"}}`)).TransfersEnabled,
		"only an active capability transfers")

	tr := unmarshal[stripego.Transfer](t, `{"id":"tr_1","object":"transfer","amount":1234,"amount_reversed":200,"currency":"usd",
		"destination":"acct_1","transfer_group":"g1","created":1714521600,"metadata":{"adshare_payout":"`+payout.String()+`"}}`)
	require.Equal(t, billing.Transfer{ID: "tr_1", Destination: "acct_1", Amount: 1234, Currency: "usd", Group: "g1", Payout: payout, Reversed: 200, Created: created},
		transferOf(tr))

	bt := unmarshal[stripego.BalanceTransaction](t, `{"id":"txn_1","object":"balance_transaction","type":"charge","amount":5000,"fee":175,"net":4825,
		"currency":"usd","source":"ch_1","created":1714521600}`)
	require.Equal(t, billing.BalanceTransaction{ID: "txn_1", Type: "charge", Amount: 5000, Fee: 175, Net: 4825, Source: "ch_1", Currency: "usd", Created: created},
		balanceTransactionOf(bt))

	ch := unmarshal[stripego.Charge](t, `{"id":"ch_1","object":"charge","amount":5000,"amount_refunded":1500,"currency":"usd","payment_intent":"pi_1"}`)
	require.Equal(t, billing.Refund{Payment: "pi_1", Charge: "ch_1", Amount: 1500, Currency: "usd"}, refundOf(ch), "2023-10-16: no refunds list, no refund id")
	ch = unmarshal[stripego.Charge](t, `{"id":"ch_1","amount_refunded":1500,"currency":"usd","refunds":{"object":"list","data":[{"id":"re_2"},{"id":"re_1"}]}}`)
	require.Equal(t, "re_2", refundOf(ch).ID, "an expanded list gives the newest")

	du := unmarshal[stripego.Dispute](t, `{"id":"du_1","object":"dispute","amount":5000,"currency":"usd","status":"won","charge":"ch_1","payment_intent":"pi_1",
		"balance_transactions":[{"id":"txn_2","amount":-5000,"fee":1500,"currency":"usd"},{"id":"txn_3","amount":5000,"fee":-1500,"currency":"usd"},
		{"id":"txn_4","amount":-10,"fee":99,"currency":"eur"}]}`)
	require.Equal(t, billing.Dispute{ID: "du_1", Payment: "pi_1", Charge: "ch_1", Amount: 5000, Currency: "usd", Status: "won", Fee: 0}, disputeOf(du),
		"the fee is what the dispute's transactions in its currency net to")

	po := unmarshal[stripego.Payout](t, `{"id":"po_1","object":"payout","amount":900,"currency":"usd","status":"failed","failure_code":"account_closed"}`)
	require.Equal(t, billing.ConnectedPayout{ID: "po_1", Amount: 900, Currency: "usd", Status: "failed", FailureCode: "account_closed"}, payoutOf(po))
}
