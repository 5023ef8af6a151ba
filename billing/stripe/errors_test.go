package stripe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	stripego "github.com/stripe/stripe-go/v76"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/testenv"
)

const testKey Secret = "sk_test_51AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"

// canned is a fake Stripe that answers every request with one status and
// body, and records the requests.
type canned struct {
	status int
	body   string
	delay  time.Duration

	mu   sync.Mutex
	reqs []*http.Request
}

func (c *canned) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r.Clone(context.Background()))
	c.mu.Unlock()
	_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client leaving
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Request-Id", "req_canned")
	w.Header().Set("Idempotency-Key", r.Header.Get("Idempotency-Key"))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(c.status)
	_, _ = w.Write([]byte(c.body))
}

func (c *canned) requests() []*http.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reqs
}

type errBundle struct {
	client *Client
	fake   *canned
	logs   *testenv.Buffer
}

func setupCanned(t *testing.T, fake *canned, cfg Config) errBundle {
	t.Helper()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	logs := &testenv.Buffer{}
	cfg.SecretKey = testKey
	cfg.BaseURL = srv.URL
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(cfg)
	require.NoError(t, err)
	return errBundle{client: c, fake: fake, logs: logs}
}

var transferReq = billing.TransferRequest{Key: "payout-key-1", Destination: "acct_1", Amount: 100, Currency: "usd", Group: "g1"}

func stripeError(typ, code, msg string) string {
	return fmt.Sprintf(`{"error":{"type":%q,"code":%q,"message":%q}}`, typ, code, msg)
}

// TestErrorsFromStripe sends a transfer to a fake Stripe that answers each
// way Stripe fails, through stripe-go's own parsing.
func TestErrorsFromStripe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		description string
		status      int
		body        string
		definite    bool
		code        string
		requestID   string
		msgHas      string
	}{
		{"card declined", 402, stripeError("card_error", "card_declined", "Your card was declined."), true, "card_declined", "req_canned", "declined"},
		{"missing parameter", 400, stripeError("invalid_request_error", "parameter_missing", "Missing required param: currency."), true, "parameter_missing", "req_canned", "currency"},
		{"platform balance too low", 400, stripeError("invalid_request_error", "balance_insufficient", "Insufficient funds."), true, "balance_insufficient", "req_canned", ""},
		{"key reused with other parameters", 400, `{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters they were first used with."}}`, true, CodeIdempotencyKeyReused, "req_canned", "first request's result stands"},
		{"no such object", 404, stripeError("invalid_request_error", "resource_missing", "No such destination: 'acct_1'"), true, "resource_missing", "req_canned", ""},
		{"bad key, echoed", 401, stripeError("invalid_request_error", "", "Invalid API Key provided: "+string(testKey)), true, CodeRefused, "req_canned", "[redacted]"},
		{"key in use by a running request", 409, stripeError("invalid_request_error", "idempotency_key_in_use", "There is currently another in-progress request using this key."), false, "idempotency_key_in_use", "req_canned", ""},
		{"rate limited", 429, stripeError("invalid_request_error", "rate_limit", "Too many requests."), false, "rate_limit", "req_canned", ""},
		{"lock timeout", 429, stripeError("invalid_request_error", "lock_timeout", "This object cannot be accessed right now."), false, "lock_timeout", "req_canned", ""},
		{"server error", 500, stripeError("api_error", "", "Something went wrong."), false, CodeServerError, "req_canned", ""},
		{"unavailable", 503, stripeError("api_error", "", "Try again."), false, CodeServerError, "req_canned", ""},
		{"a proxy's HTML", 502, "<html>bad gateway</html>", false, CodeBadResponse, "", ""},
		{"unreadable success", 200, `{"id":`, false, CodeBadResponse, "", ""},
	} {
		t.Run(tc.description, func(t *testing.T) {
			t.Parallel()
			b := setupCanned(t, &canned{status: tc.status, body: tc.body}, Config{MaxNetworkRetries: -1})
			_, err := b.client.Transfer(context.Background(), transferReq)
			pe, ok := errors.AsType[*billing.ProcessorError](err)
			require.True(t, ok, "%v", err)
			require.Equal(t, tc.definite, pe.Definite, pe.Error())
			require.Equal(t, tc.definite, billing.IsDefinite(err))
			require.Equal(t, tc.code, pe.Code)
			require.Equal(t, tc.requestID, pe.RequestID)
			require.Contains(t, pe.Message, tc.msgHas)
			require.Len(t, b.fake.requests(), 1, "no retries")

			logs := b.logs.String()
			require.Contains(t, logs, `"msg":"stripe: call failed"`)
			require.Contains(t, logs, `"idempotency_key":"payout-key-1"`)
			require.Contains(t, logs, `"request_id":"`+tc.requestID+`"`)
			for _, out := range []string{err.Error(), errors.Unwrap(err).Error(), logs, fmt.Sprintf("%+v %#v", err, err)} {
				require.NotContains(t, out, string(testKey))
			}
			if se, ok := errors.AsType[*stripego.Error](err); ok {
				require.Equal(t, tc.status, se.HTTPStatusCode, "the cause unwraps to stripe-go's error")
			}
		})
	}
}

func TestErrorsWithoutAnAnswer(t *testing.T) {
	t.Parallel()

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		b := setupCanned(t, &canned{status: 200, body: `{}`, delay: 10 * time.Second}, Config{Timeout: 50 * time.Millisecond})
		_, err := b.client.Transfer(context.Background(), transferReq)
		pe, ok := errors.AsType[*billing.ProcessorError](err)
		require.True(t, ok, "%v", err)
		require.False(t, pe.Definite)
		require.Equal(t, CodeTimeout, pe.Code)
		require.Len(t, b.fake.requests(), 1, "a timeout is not retried: the deadline covers the retries")
	})

	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		b := setupCanned(t, &canned{status: 200, body: `{}`}, Config{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := b.client.Transfer(ctx, transferReq)
		pe, ok := errors.AsType[*billing.ProcessorError](err)
		require.True(t, ok, "%v", err)
		require.Equal(t, CodeCanceled, pe.Code)
		require.False(t, pe.Definite)
	})

	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		c, err := New(Config{SecretKey: testKey, BaseURL: srv.URL, MaxNetworkRetries: -1})
		require.NoError(t, err)
		_, err = c.Account(context.Background(), "acct_1")
		pe, ok := errors.AsType[*billing.ProcessorError](err)
		require.True(t, ok, "%v", err)
		require.Equal(t, CodeNetwork, pe.Code)
		require.False(t, pe.Definite)
	})
}

// TestRetries: stripe-go re-sends what is safe to re-send, once by
// default, with the same idempotency key; never a POST's 500 (Stripe
// stored it under the key).
func TestRetries(t *testing.T) {
	t.Parallel()
	b := setupCanned(t, &canned{status: 503, body: stripeError("api_error", "", "Try again.")}, Config{})
	_, err := b.client.Transfer(context.Background(), transferReq)
	require.False(t, billing.IsDefinite(err))
	reqs := b.fake.requests()
	require.Len(t, reqs, 1+DefaultMaxNetworkRetries)
	for _, r := range reqs {
		require.Equal(t, "payout-key-1", r.Header.Get("Idempotency-Key"))
	}

	b = setupCanned(t, &canned{status: 500, body: stripeError("api_error", "", "Oops.")}, Config{})
	_, err = b.client.Transfer(context.Background(), transferReq)
	require.False(t, billing.IsDefinite(err))
	require.Len(t, b.fake.requests(), 1)
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		description string
		err         *stripego.Error
		definite    bool
		code        string
	}{
		{"card error without a status", &stripego.Error{Type: stripego.ErrorTypeCard}, true, "card_declined"},
		{"invalid request without a status", &stripego.Error{Type: stripego.ErrorTypeInvalidRequest, Code: "parameter_unknown"}, true, "parameter_unknown"},
		{"api error without a status", &stripego.Error{Type: stripego.ErrorTypeAPI}, false, CodeUnknown},
		{"idempotency error whatever its status", &stripego.Error{Type: stripego.ErrorTypeIdempotency, HTTPStatusCode: 409}, true, CodeIdempotencyKeyReused},
		{"409 without a code", &stripego.Error{Type: stripego.ErrorTypeInvalidRequest, HTTPStatusCode: 409}, false, "rate_limit"},
		{"403", &stripego.Error{Type: stripego.ErrorTypeInvalidRequest, HTTPStatusCode: 403, Code: "secret_key_required"}, true, "secret_key_required"},
	} {
		definite, code := classify(tc.err)
		require.Equal(t, tc.definite, definite, tc.description)
		require.Equal(t, tc.code, code, tc.description)
	}
	require.Nil(t, processorError(nil, testKey))
	pe := processorError(errors.New("something odd with "+string(testKey)), testKey)
	require.False(t, pe.Definite, "unknown failures are ambiguous")
	require.Equal(t, CodeUnknown, pe.Code)
	require.NotContains(t, pe.Message, string(testKey))
}

// TestRefusedBeforeSending: a request that breaks a rule is refused
// (definite) without a call.
func TestRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	b := setupCanned(t, &canned{status: 200, body: `{}`}, Config{})
	ctx := context.Background()
	errs := []error{}
	_, err := b.client.CreatePayment(ctx, billing.PaymentRequest{Advertiser: advertiser, Amount: 1, Currency: "usd"})
	errs = append(errs, err)
	_, err = b.client.Transfer(ctx, billing.TransferRequest{Key: strings.Repeat("k", 256), Destination: "acct_1", Amount: 1, Currency: "usd"})
	errs = append(errs, err)
	_, err = b.client.CreateAccount(ctx, billing.AccountRequest{Key: "k", Owner: owner, Country: "usa"})
	errs = append(errs, err)
	_, err = b.client.OnboardingLink(ctx, "acct_1", "/relative", "https://app.example/done")
	errs = append(errs, err)
	_, err = b.client.TransfersInGroup(ctx, "")
	errs = append(errs, err)
	for _, err := range errs {
		pe, ok := errors.AsType[*billing.ProcessorError](err)
		require.True(t, ok, "%v", err)
		require.True(t, pe.Definite)
		require.Equal(t, billing.CodeInvalidRequest, pe.Code)
	}
	require.Empty(t, b.fake.requests())
}

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		description string
		cfg         Config
		errHas      string
	}{
		{"no key", Config{}, "SecretKey is required"},
		{"publishable key", Config{SecretKey: "pk_test_abc"}, "publishable"},
		{"not a key", Config{SecretKey: "whsec_abc"}, "secret key (sk_…)"},
		{"two lines", Config{SecretKey: "sk_test_abc\n"}, "one word"},
		{"bad base URL", Config{SecretKey: testKey, BaseURL: "127.0.0.1:12111"}, "absolute http(s) URL"},
		{"negative timeout", Config{SecretKey: testKey, Timeout: -1}, "must not be negative"},
	} {
		_, err := New(tc.cfg)
		require.ErrorContains(t, err, tc.errHas, tc.description)
		require.NotContains(t, err.Error(), "abc", tc.description)
	}

	cfg, err := Config{SecretKey: testKey, BaseURL: "http://127.0.0.1:12111/v1/"}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:12111", cfg.BaseURL)
	require.Equal(t, DefaultTimeout, cfg.Timeout)
	require.Equal(t, DefaultListTimeout, cfg.ListTimeout)
	require.Equal(t, DefaultMaxListItems, cfg.MaxListItems)
	require.Equal(t, DefaultMaxNetworkRetries, cfg.MaxNetworkRetries)
	cfg, err = Config{SecretKey: testKey, MaxNetworkRetries: -3}.withDefaults()
	require.NoError(t, err)
	require.Zero(t, cfg.MaxNetworkRetries)
	require.Equal(t, DefaultBaseURL, cfg.BaseURL)

	// Neither the Client nor its Config prints the key, however printed.
	c, err := New(Config{SecretKey: testKey})
	require.NoError(t, err)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v", c, *c, c), fmt.Sprintf("%v %+v %#v", Config{SecretKey: testKey}, Config{SecretKey: testKey}, Config{SecretKey: testKey})} {
		require.NotContains(t, out, string(testKey))
	}
	require.NoError(t, c.Stop(context.Background()))
	require.NoError(t, c.Stop(context.Background()), "Stop is idempotent")
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := setupCanned(t, &canned{status: 402, body: stripeError("card_error", "card_declined", "Declined.")}, Config{Metrics: reg})
	_, err := b.client.Transfer(context.Background(), transferReq)
	require.Error(t, err)
	n, err := testutil.GatherAndCount(reg, "adshare_stripe_calls_total", "adshare_stripe_call_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 2, n, "one call counted, one duration observed")
	require.Equal(t, 1.0, testutil.ToFloat64(b.client.metrics.calls.WithLabelValues("transfer", "definite")))

	_, err = New(Config{SecretKey: testKey, Metrics: reg})
	require.ErrorContains(t, err, "one Client per registry", "a second Client on the same registry says how to run several")
}

// TestListingsAreBounded: a listing reads every page, up to
// Config.MaxListItems; past it, it fails instead of answering in part.
func TestListingsAreBounded(t *testing.T) {
	t.Parallel()
	page := func(more bool) string {
		return fmt.Sprintf(`{"object":"list","url":"/v1/transfers","has_more":%t,"data":[
			{"id":"tr_1","object":"transfer","amount":1,"currency":"usd","transfer_group":"g"},
			{"id":"tr_2","object":"transfer","amount":2,"currency":"usd","transfer_group":"g"}]}`, more)
	}

	b := setupCanned(t, &canned{status: 200, body: page(true)}, Config{MaxListItems: 5})
	_, err := b.client.TransfersInGroup(context.Background(), "g")
	pe, ok := errors.AsType[*billing.ProcessorError](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, CodeListTooLong, pe.Code)
	reqs := b.fake.requests()
	require.Len(t, reqs, 3, "pages of 2 until the sixth item")
	require.Equal(t, "tr_2", reqs[1].URL.Query().Get("starting_after"), "paging goes on from the last item")

	b = setupCanned(t, &canned{status: 200, body: page(false)}, Config{MaxListItems: 2})
	got, err := b.client.TransfersInGroup(context.Background(), "g")
	require.NoError(t, err, "exactly MaxListItems is fine")
	require.Len(t, got, 2)
	require.Equal(t, int64(2), got[1].Amount)
}
