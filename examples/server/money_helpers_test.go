package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/billingtest"
	"github.com/adshare/adshare/billing/stripe"
	"github.com/adshare/adshare/internal/testenv"
)

// moneyPassword is every money test user's password.
const moneyPassword = "a long enough passphrase"

// moneyWebhookSecret is the webhook signing secret the Stripe runs
// configure (-stripe-webhook-secrets) and sign their events with.
const moneyWebhookSecret = "whsec_money_e2e_secret"

// travelClock is real time moved forward by an offset the test grows:
// time keeps flowing (tokens, fills and impressions look as they do in
// production), and a test jumps past a day's end or a hold window.
type travelClock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the clock's time.
func (c *travelClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Add moves the clock forward by d.
func (c *travelClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// moneyServer is the example server as serve runs it (assemble, Start,
// serveHTTP on a free port) with the clock a test moves and, with Stripe,
// the fake processor in place of Stripe's API; the webhooks are verified
// by the billing/stripe Webhooks the server built from its configured
// signing secret.
type moneyServer struct {
	base   string
	env    map[string]string
	args   []string // the server's flags, which the users subcommand parses too
	app    *adshare.App
	clock  *travelClock
	store  adshare.Store
	proc   *billingtest.Processor // nil without Stripe
	signer billingtest.Signer
	out    *testenv.Buffer
	reg    *prometheus.Registry // what GET /metrics serves

	forged, delivered int             // webhook deliveries refused and accepted
	eventIDs          map[string]bool // the events delivered
}

// startMoneyServer parses args and env as the server does (the API-wide
// rate limits raised: the test is one client making a thousand fills),
// assembles it with the test's clock (and the fake processor when
// withStripe), starts it and serves it until the test ends.
func startMoneyServer(t *testing.T, env map[string]string, withStripe bool, args ...string) *moneyServer {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if withStripe {
		env["ADSHARE_STRIPE_SECRET_KEY"] = "sk_test_money_e2e"
		env["ADSHARE_STRIPE_WEBHOOK_SECRETS"] = moneyWebhookSecret
		args = append(args, "-payout-onboarding-return-url", "https://app.example/payouts/done",
			"-payout-onboarding-refresh-url", "https://app.example/payouts/again")
	}
	args = append([]string{"-addr", "127.0.0.1:0", "-client-rate", "600000", "-user-rate", "600000", "-access-log=false"}, args...)
	cfg, rest, err := parseConfig("server", args, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	require.Empty(t, rest)

	ms := &moneyServer{env: env, args: args, clock: &travelClock{}, out: &testenv.Buffer{}}
	logger := newLogger(ms.out, "json", slog.LevelInfo)
	ctx, cancel := context.WithCancel(context.Background())
	reg := prometheus.NewRegistry()
	ms.reg = reg
	app, cleanup, err := assemble(ctx, cfg, logger, reg, func(c *adshare.Config) {
		c.Now = ms.clock.Now
		ms.store = c.Store
		if withStripe {
			_, isStripe := c.Billing.Processor.(*stripe.Client)
			require.True(t, isStripe, "the server configured Stripe from the key")
			_, verified := c.Billing.Events.(*stripe.Webhooks)
			require.True(t, verified, "the server verifies webhooks with billing/stripe")
			ms.proc = billingtest.NewProcessor(billingtest.ProcessorConfig{Now: ms.clock.Now})
			c.Billing.Processor = ms.proc // c.Billing.Events stays the server's
			ms.signer = billingtest.Signer{Secrets: []stripe.Secret{moneyWebhookSecret}, Now: ms.clock.Now}
		}
	})
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	ms.app = app
	if err := app.Start(ctx); err != nil {
		cancel()
		cleanup()
		require.NoError(t, err)
	}
	done := make(chan error, 1)
	go func() { done <- serveHTTP(ctx, cfg, logger, reg, app, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("server did not stop within 20s of cancellation")
		}
		cleanup()
	})
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("server exited early: %v\n%s", err, ms.out.String())
		default:
		}
		ms.base = listeningURL(ms.out.String())
		return ms.base != ""
	}, 10*time.Second, 10*time.Millisecond)
	return ms
}

// listeningURL is the URL of the "listening" log line in logs, or "".
func listeningURL(logs string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
			URL string `json:"url"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			return line.URL
		}
	}
	return ""
}

// call sends a request (body JSON-encoded unless it is []byte or nil, a
// bearer token unless empty, extra headers as name/value pairs), requires
// the status want and decodes the answer into out when it is not nil. It
// returns the raw answer.
func (ms *moneyServer) call(t *testing.T, method, path, token string, body any, want int, out any, headers ...string) []byte {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, ms.base+path, r)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, path, raw)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out), "%s %s: %s", method, path, raw)
	}
	return raw
}

// problemCode sends a request that must fail with status and returns the
// problem's code.
func (ms *moneyServer) problemCode(t *testing.T, method, path, token string, body any, status int, headers ...string) string {
	t.Helper()
	var p struct {
		Code string `json:"code"`
	}
	ms.call(t, method, path, token, body, status, &p, headers...)
	return p.Code
}

// moneyUser is a signed-in test user.
type moneyUser struct {
	ID     uuid.UUID
	Email  string
	Access string
}

// register signs a new user up over the API.
func (ms *moneyServer) register(t *testing.T, email string) *moneyUser {
	t.Helper()
	var out struct {
		AccessToken string `json:"access_token"`
		User        struct {
			ID uuid.UUID `json:"id"`
		} `json:"user"`
	}
	ms.call(t, http.MethodPost, "/auth/register", "", map[string]string{"email": email, "password": moneyPassword}, http.StatusCreated, &out)
	return &moneyUser{ID: out.User.ID, Email: email, Access: out.AccessToken}
}

// login signs u in again (after a role change, or when the clock has
// travelled past the access token's life).
func (ms *moneyServer) login(t *testing.T, u *moneyUser) {
	t.Helper()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	ms.call(t, http.MethodPost, "/auth/login", "", map[string]string{"email": u.Email, "password": moneyPassword}, http.StatusOK, &out)
	u.Access = out.AccessToken
}

// makeAdmin gives u the admin role as an operator would: with the users
// subcommand on PostgreSQL, through the store on the embedded defaults
// (nothing else can before an admin exists), and signs u in again.
func (ms *moneyServer) makeAdmin(t *testing.T, u *moneyUser) {
	t.Helper()
	if ms.env["DATABASE_URL"] != "" {
		var out bytes.Buffer
		cmd := append(append([]string{"server", "users"}, ms.args...), "set-role", u.Email, "admin")
		require.NoError(t, run(context.Background(), cmd,
			func(k string) string { return ms.env[k] }, &out))
		require.Contains(t, out.String(), "is now admin")
	} else {
		users, ok := ms.store.(auth.UserStore)
		require.True(t, ok)
		_, err := users.SetRole(context.Background(), u.ID, auth.RoleAdmin, ms.clock.Now())
		require.NoError(t, err)
	}
	ms.login(t, u)
}

// balanceJSON is GET /billing/balance's answer.
type balanceJSON struct {
	BudgetMicros         int64 `json:"budget_micros"`
	UnsettledSpendMicros int64 `json:"unsettled_spend_micros"`
	HeldMicros           int64 `json:"held_micros"`
	AvailableMicros      int64 `json:"available_micros"`
	InTransitMicros      int64 `json:"in_transit_micros"`
	OwedMicros           int64 `json:"owed_micros"`
	Payee                *struct {
		PayoutsEnabled   bool `json:"payouts_enabled"`
		TransfersEnabled bool `json:"transfers_enabled"`
	} `json:"payee"`
}

func (ms *moneyServer) balance(t *testing.T, u *moneyUser) balanceJSON {
	t.Helper()
	var b balanceJSON
	ms.call(t, http.MethodGet, "/billing/balance", u.Access, nil, http.StatusOK, &b)
	return b
}

// topUpJSON is a top-up as the API shows it.
type topUpJSON struct {
	ID           uuid.UUID `json:"id"`
	Amount       int64     `json:"amount"`
	Status       string    `json:"status"`
	PaymentID    string    `json:"payment_id"`
	ClientSecret string    `json:"client_secret"`
}

// startTopUp posts a top-up of minor units with the Idempotency-Key key.
func (ms *moneyServer) startTopUp(t *testing.T, u *moneyUser, key string, minor int64) topUpJSON {
	t.Helper()
	var tu topUpJSON
	ms.call(t, http.MethodPost, "/billing/topups", u.Access, map[string]any{"amount": minor, "currency": "usd"},
		http.StatusCreated, &tu, "Idempotency-Key", key)
	return tu
}

func (ms *moneyServer) topUp(t *testing.T, u *moneyUser, id uuid.UUID) topUpJSON {
	t.Helper()
	var tu topUpJSON
	ms.call(t, http.MethodGet, "/billing/topups/"+id.String(), u.Access, nil, http.StatusOK, &tu)
	return tu
}

// payoutJSON is a payout as the API shows it.
type payoutJSON struct {
	ID     uuid.UUID `json:"id"`
	Amount int64     `json:"amount"`
	Status string    `json:"status"`
	Manual bool      `json:"manual"`
}

func (ms *moneyServer) payout(t *testing.T, u *moneyUser, id uuid.UUID) payoutJSON {
	t.Helper()
	var po payoutJSON
	ms.call(t, http.MethodGet, "/billing/payouts/"+id.String(), u.Access, nil, http.StatusOK, &po)
	return po
}

// transactionKinds lists u's statement, newest first, by kind.
func (ms *moneyServer) transactionKinds(t *testing.T, u *moneyUser) []string {
	t.Helper()
	var out struct {
		Transactions []struct {
			Kind    string `json:"kind"`
			Entries []struct {
				Account string `json:"account"`
			} `json:"entries"`
		} `json:"transactions"`
	}
	ms.call(t, http.MethodGet, "/billing/transactions", u.Access, nil, http.StatusOK, &out)
	kinds := make([]string, 0, len(out.Transactions))
	for _, tx := range out.Transactions {
		kinds = append(kinds, tx.Kind)
		for _, e := range tx.Entries {
			require.Contains(t, e.Account, u.ID.String(), "a statement shows only the user's own accounts")
		}
	}
	return kinds
}

// revenueJSON is GET /analytics/revenue's answer, the parts checked.
type revenueJSON struct {
	Estimated struct {
		OwnerMicros int64 `json:"owner_micros"`
	} `json:"estimated"`
	Final *struct {
		OwnerMicros    int64 `json:"owner_micros"`
		PlatformMicros int64 `json:"platform_micros"`
		PaidOutMicros  int64 `json:"paid_out_micros"`
	} `json:"final"`
}

// revenue reads the daily revenue report from from to to, with extra
// query parameters.
func (ms *moneyServer) revenue(t *testing.T, u *moneyUser, from, to time.Time, extra string) revenueJSON {
	t.Helper()
	var out revenueJSON
	ms.call(t, http.MethodGet, "/analytics/revenue?granularity=day&from="+from.Format(time.RFC3339)+"&to="+to.Format(time.RFC3339)+extra,
		u.Access, nil, http.StatusOK, &out)
	return out
}

// fill asks for an ad in owner's space as a fresh device and returns its
// tracking token ("" when the space stays empty).
func (ms *moneyServer) fill(t *testing.T, owner uuid.UUID) string {
	t.Helper()
	var out struct {
		Ads []struct {
			Title    string `json:"title"`
			Tracking struct {
				Token string `json:"token"`
			} `json:"tracking"`
		} `json:"ads"`
	}
	ms.call(t, http.MethodGet, "/ad-space/"+owner.String(), "", nil, http.StatusOK, &out, "X-Adshare-Device", "device-"+uuid.NewString())
	if len(out.Ads) == 0 {
		return ""
	}
	return out.Ads[0].Tracking.Token
}

// impressions reports a viewable impression of each token, in batches,
// as the app does (a non-bot User-Agent), and requires each to be
// accepted, valid and billable. It returns when they occurred.
func (ms *moneyServer) impressions(t *testing.T, tokens []string) time.Time {
	t.Helper()
	when := ms.clock.Now().UTC()
	at := when.Format(time.RFC3339Nano)
	for len(tokens) > 0 {
		n := min(len(tokens), 100)
		events := make([]map[string]string, n)
		for i, tok := range tokens[:n] {
			events[i] = map[string]string{"type": "impression", "token": tok, "occurred_at": at}
		}
		var out struct {
			Results []struct {
				Status   string `json:"status"`
				Valid    bool   `json:"valid"`
				Billable bool   `json:"billable"`
				Rule     string `json:"rule"`
			} `json:"results"`
		}
		ms.call(t, http.MethodPost, "/events", "", map[string]any{"events": events}, http.StatusOK, &out,
			"User-Agent", "AdshareApp/2.1 (iPhone; iOS 18.1)")
		require.Len(t, out.Results, n)
		for i, r := range out.Results {
			require.Equal(t, "accepted", r.Status, "event %d", i)
			require.True(t, r.Valid && r.Billable, "event %d: valid %v, billable %v, rule %q", i, r.Valid, r.Billable, r.Rule)
		}
		tokens = tokens[n:]
	}
	return when
}

// deliver signs each event with the configured secret and posts it to
// the webhook endpoint, requiring 200.
func (ms *moneyServer) deliver(t *testing.T, events billingtest.Delivery) {
	t.Helper()
	require.NotEmpty(t, events)
	for _, e := range events {
		payload, sig, err := ms.signer.Sign(e)
		require.NoError(t, err)
		ms.call(t, http.MethodPost, "/webhooks/stripe", "", payload, http.StatusOK, nil, "Stripe-Signature", sig)
		ms.delivered++
		if ms.eventIDs == nil {
			ms.eventIDs = map[string]bool{}
		}
		ms.eventIDs[e.ID] = true
	}
}

// forge posts each event signed with a secret the server does not know,
// and unsigned, requiring both to be refused.
func (ms *moneyServer) forge(t *testing.T, events billingtest.Delivery) {
	t.Helper()
	require.NotEmpty(t, events)
	forger := billingtest.Signer{Secrets: []stripe.Secret{"whsec_not_the_endpoints"}, Now: ms.clock.Now}
	for _, e := range events {
		payload, sig, err := forger.Sign(e)
		require.NoError(t, err)
		require.Equal(t, "invalid_webhook_signature",
			ms.problemCode(t, http.MethodPost, "/webhooks/stripe", "", payload, http.StatusBadRequest, "Stripe-Signature", sig))
		ms.problemCode(t, http.MethodPost, "/webhooks/stripe", "", payload, http.StatusBadRequest)
		ms.forged += 2
	}
}

// metric is the value of a sample of what GET /metrics serves.
func (ms *moneyServer) metric(t *testing.T, name string, labels ...string) int {
	t.Helper()
	return int(testenv.Metric(t, ms.reg, name, labels...))
}

// requireBalanced fails unless every currency's debits equal its credits.
func (ms *moneyServer) requireBalanced(t *testing.T) {
	t.Helper()
	bs, ok := ms.store.(billing.Store)
	require.True(t, ok)
	totals, err := bs.Totals(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, totals)
	for c, dc := range totals {
		require.Equal(t, dc.Debits, dc.Credits, "the ledger balances in %s", c)
		require.NotZero(t, dc.Debits, "%s has postings", c)
	}
}

// dataKeyFlags are -data-keys and -data-index-key with fresh random keys.
func dataKeyFlags() []string {
	key := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	return []string{"-data-keys", key(), "-data-index-key", key()}
}
