package stripe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	stripego "github.com/stripe/stripe-go/v76"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/stripe"
	"github.com/adshare/adshare/internal/testenv"
)

// sent is a request as it left the Client.
type sent struct {
	method, path string
	header       http.Header
	form         url.Values // the body's, or the query's for a GET
}

// recorder is a transport that records each request before sending it.
type recorder struct {
	mu   sync.Mutex
	reqs []sent
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	s := sent{method: req.Method, path: req.URL.Path, header: req.Header.Clone(), form: req.URL.Query()}
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		if len(b) > 0 {
			if s.form, err = url.ParseQuery(string(b)); err != nil {
				return nil, err
			}
		}
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, s)
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// only returns the one request sent.
func (r *recorder) only(t *testing.T) sent {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Len(t, r.reqs, 1)
	return r.reqs[0]
}

type contractBundle struct {
	client *stripe.Client
	rec    *recorder
	logs   *testenv.Buffer
}

const mockKey stripe.Secret = "sk_test_51Contract0123456789abcdef"

// TestContract runs every Processor method against stripe-mock, which
// checks each request against Stripe's OpenAPI spec (a wrong parameter is a
// 400). stripe-mock keeps no state and reflects only some top-level
// scalars, so only those are asserted, with the requests as sent.
func TestContract(t *testing.T) {
	t.Parallel()
	base := testenv.StripeMock(t)
	setup := func(t *testing.T, key stripe.Secret) contractBundle {
		t.Helper()
		rec := &recorder{}
		logs := &testenv.Buffer{}
		c, err := stripe.New(stripe.Config{
			SecretKey: key, BaseURL: base, HTTPClient: &http.Client{Transport: rec}, MaxNetworkRetries: -1,
			Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		require.NoError(t, err)
		return contractBundle{client: c, rec: rec, logs: logs}
	}
	ctx := context.Background()
	advertiser, owner, payout := uuid.New(), uuid.New(), uuid.New()

	// wellFormed checks what every request carries.
	wellFormed := func(t *testing.T, b contractBundle, method, path, key string) sent {
		t.Helper()
		s := b.rec.only(t)
		require.Equal(t, method, s.method)
		require.Equal(t, path, s.path)
		require.Equal(t, stripego.APIVersion, s.header.Get("Stripe-Version"))
		require.Equal(t, "Bearer "+string(mockKey), s.header.Get("Authorization"))
		require.Empty(t, s.header.Get("Stripe-Account"), "every call is the platform's")
		if key != "" {
			require.Equal(t, key, s.header.Get("Idempotency-Key"))
			require.Contains(t, b.logs.String(), `"idempotency_key":"`+key+`"`)
		}
		require.Contains(t, b.logs.String(), `"request_id":"req_`, "stripe-mock's request id is logged")
		return s
	}

	t.Run("CreatePayment", func(t *testing.T) {
		t.Parallel()
		b := setup(t, mockKey)
		p, err := b.client.CreatePayment(ctx, billing.PaymentRequest{Key: "topup-1", Advertiser: advertiser, Amount: 5000, Currency: "usd", Group: "adv:topup:1"})
		require.NoError(t, err)
		require.Equal(t, int64(5000), p.Amount)
		require.Equal(t, billing.USD, p.Currency)
		require.NotEmpty(t, p.ClientSecret, "the app's SDK needs it")
		s := wellFormed(t, b, http.MethodPost, "/v1/payment_intents", "topup-1")
		require.Equal(t, advertiser.String(), s.form.Get("metadata[adshare_advertiser]"))
		require.Equal(t, "topup-1", s.form.Get("metadata[adshare_top_up]"))
		require.Equal(t, "adv:topup:1", s.form.Get("transfer_group"))
		require.Equal(t, "true", s.form.Get("automatic_payment_methods[enabled]"))
	})

	t.Run("CloseAccount", func(t *testing.T) {
		t.Parallel()
		b := setup(t, mockKey)
		require.NoError(t, b.client.CloseAccount(ctx, "acct_123"))
		wellFormed(t, b, http.MethodDelete, "/v1/accounts/acct_123", "")
		require.Error(t, b.client.CloseAccount(ctx, ""), "no account id")
	})

	t.Run("Payment", func(t *testing.T) {
		t.Parallel()
		b := setup(t, mockKey)
		_, err := b.client.Payment(ctx, "pi_123")
		require.NoError(t, err)
		s := wellFormed(t, b, http.MethodGet, "/v1/payment_intents/pi_123", "")
		require.Equal(t, []string{"latest_charge.balance_transaction"}, s.form["expand[0]"])
	})

	t.Run("CreateAccount", func(t *testing.T) {
		t.Parallel()
		b := setup(t, mockKey)
		_, err := b.client.CreateAccount(ctx, billing.AccountRequest{Key: "acct-key-1", Owner: owner, Email: "owner@example.com", Country: "US"})
		require.NoError(t, err)
		s := wellFormed(t, b, http.MethodPost, "/v1/accounts", "acct-key-1")
		require.Equal(t, "express", s.form.Get("type"))
		require.Equal(t, "true", s.form.Get("capabilities[transfers][requested]"))
		require.Equal(t, "true", s.form.Get("capabilities[card_payments][requested]"))
		require.Equal(t, owner.String(), s.form.Get("metadata[adshare_owner]"))
	})

	t.Run("Account", func(t *testing.T) {
		t.Parallel()
		b := setup(t, mockKey)
		_, err := b.client.Account(ctx, "acct_123")
		require.NoError(t, err)
		wellFormed(t, b, http.MethodGet, "/v1/accounts/acct_123", "")
	})

	t.Run("OnboardingLink", func(t *testing.T) {
		t.Parallel()
		b := setup(t, mockKey)
		link, err := b.client.OnboardingLink(ctx, "acct_123", "https://app.example/refresh", "https://app.example/done")
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(link, "https://"), link)
		s := wellFormed(t, b, http.MethodPost, "/v1/account_links", "")
		require.Equal(t, "account_onboarding", s.form.Get("type"))
		require.NotEmpty(t, s.header.Get("Idempotency-Key"), "stripe-go makes one for the call's own retries")
	})

	t.Run("Transfer", func(t *testing.T) {
		t.Parallel()
		b := setup(t, mockKey)
		tr, err := b.client.Transfer(ctx, billing.TransferRequest{Key: payout.String(), Destination: "acct_123", Amount: 1234, Currency: "usd", Group: payout.String(), Payout: payout})
		require.NoError(t, err)
		require.Equal(t, int64(1234), tr.Amount)
		require.Equal(t, billing.USD, tr.Currency)
		require.Equal(t, "acct_123", tr.Destination)
		require.Equal(t, payout.String(), tr.Group)
		s := wellFormed(t, b, http.MethodPost, "/v1/transfers", payout.String())
		require.Equal(t, payout.String(), s.form.Get("metadata[adshare_payout]"))
	})

	t.Run("TransfersInGroup", func(t *testing.T) {
		t.Parallel()
		b := setup(t, mockKey)
		_, err := b.client.TransfersInGroup(ctx, "g1")
		require.NoError(t, err)
		s := wellFormed(t, b, http.MethodGet, "/v1/transfers", "")
		require.Equal(t, "g1", s.form.Get("transfer_group"))
		require.Equal(t, "100", s.form.Get("limit"))
	})

	since := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		path string
		list func(*stripe.Client) error
	}{
		"Transfers": {"/v1/transfers", func(c *stripe.Client) error { _, err := c.Transfers(ctx, since); return err }},
		"BalanceTransactions": {"/v1/balance_transactions", func(c *stripe.Client) error {
			_, err := c.BalanceTransactions(ctx, since)
			return err
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, mockKey)
			require.NoError(t, tc.list(b.client))
			s := wellFormed(t, b, http.MethodGet, tc.path, "")
			require.Equal(t, fmt.Sprint(since.Unix()), s.form.Get("created[gte]"))
			require.Equal(t, "100", s.form.Get("limit"))
		})
	}

	// stripe-mock refuses live keys and quotes the Authorization header in
	// its message: the key must reach neither the error nor the logs.
	t.Run("the secret key never shows", func(t *testing.T) {
		t.Parallel()
		live := stripe.Secret("sk_live_" + strings.ReplaceAll(uuid.NewString(), "-", ""))
		b := setup(t, live)
		_, err := b.client.Transfer(ctx, billing.TransferRequest{Key: "k-live", Destination: "acct_123", Amount: 1, Currency: "usd"})
		require.Error(t, err)
		require.True(t, billing.IsDefinite(err), "a refused key did nothing")
		se, ok := errors.AsType[*stripego.Error](err)
		require.True(t, ok)
		require.Contains(t, se.Msg, "Authorization was 'Bearer [redacted]'", "stripe-mock quoted the key, and it was scrubbed")

		_, err2 := b.client.TransfersInGroup(ctx, "g1")
		require.Error(t, err2)
		logs := b.logs.String()
		require.Contains(t, logs, "stripe: call failed")
		texts := []string{logs, fmt.Sprintf("%v %+v %#v %s", err, err, err2, err2)}
		for e := error(err); e != nil; e = errors.Unwrap(e) {
			texts = append(texts, e.Error()) // down to stripe-go's own error
		}
		for _, out := range texts {
			require.NotContains(t, out, string(live))
			require.NotContains(t, out, strings.TrimPrefix(string(live), "sk_live_"))
		}
	})
}
