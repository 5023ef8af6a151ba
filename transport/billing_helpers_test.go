package transport

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/billingtest"
	"github.com/adshare/adshare/billing/stripe"
	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/privacy"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/store/postgres"
)

// testWebhookSecret signs the bundle's webhooks.
const testWebhookSecret = stripe.Secret("whsec_transport_test")

// billingOpts changes what newBillingBundle builds.
type billingOpts struct {
	// manual: no processor (admins confirm top-ups and record payouts).
	manual bool
	// billing changes the service's config just before it is built.
	billing func(*billing.Config)
	// api changes the API's config just before it is built.
	api func(*Config)
	// privacy mounts exports and erasures (billingBundle.privacy).
	privacy bool
	// apiLimits turns the API-wide rate limits on, at clientLimit.
	apiLimits   bool
	clientLimit auth.Limit
	// spaces mounts the ad space system too (every new account gets its
	// space): with it the bundle serves every route but the realtime one.
	spaces bool
}

// billingBundle is the API with the user, analytics and billing systems
// on one backend, served over real HTTP. Billing runs its jobs on a
// started queue (events and payouts are applied in the background, as in
// production), on its own clock, with the fake processor unless manual.
// Its day is the UTC day before the clock's: final, settled when the test
// says so.
type billingBundle struct {
	*authBundle
	billing *billing.Service
	store   billing.Store
	events  analytics.Store
	proc    *billingtest.Processor // nil in manual mode
	signer  billingtest.Signer
	// bclock is billing's own clock, which a test moves past a day's end
	// and the hold window; the user system keeps the real time, so that
	// access tokens stay fresh.
	bclock *fakeClock
	day    time.Time
	// spaces is the ad space system, with billingOpts.spaces.
	spaces *adspace.Service
	// privacy is exports and erasures, with billingOpts.privacy; its
	// clock is bclock.
	privacy *privacy.Service
	// privacyHold, write-locked, holds every export and erasure job
	// where it starts, so that a test sees two requests meet one pending.
	privacyHold sync.RWMutex
}

// billingBackends are the backends whose store keeps money: memory, and
// PostgreSQL once its store implements billing.Store (a type check, not a
// skip: the PostgreSQL runs join by themselves).
func billingBackends() []string {
	backends := []string{backendMemory}
	if _, ok := any((*postgres.DB)(nil)).(billing.Store); ok {
		backends = append(backends, backendPostgres)
	}
	return backends
}

// forEachBillingBackend runs fn, in parallel, on a fresh billingBundle per
// billing backend.
func forEachBillingBackend(t *testing.T, opts billingOpts, fn func(t *testing.T, b *billingBundle)) {
	t.Helper()
	for _, backend := range billingBackends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			fn(t, newBillingBundle(t, backend, opts))
		})
	}
}

// newBillingBundle builds the auth bundle of backend with analytics (its
// revenue report reading billing's final figures) and billing mounted.
func newBillingBundle(t *testing.T, backend string, opts billingOpts) *billingBundle {
	t.Helper()
	bb := &billingBundle{}
	day := time.Now().UTC().Truncate(24 * time.Hour)
	bb.day, bb.bclock = day, &fakeClock{now: day.Add(27 * time.Hour)}
	bb.authBundle = newAuthBundle(t, backend, bundleOpts{
		authConfig: func(cfg *auth.Config) {
			cfg.RegisterLimitPerClient = auth.Limit{Rate: 1000, Period: time.Minute, Burst: 1000}
			if opts.spaces {
				cfg.AccountObservers = []auth.AccountObserver{accountObserver(func(ctx context.Context, u auth.User) error {
					return bb.spaces.AccountCreated(ctx, u)
				})}
			}
		},
		apiLimits: opts.apiLimits, clientLimit: opts.clientLimit,
		configure: func(t *testing.T, b *authBundle, cfg *Config) {
			if opts.spaces {
				bb.spaces, _ = newSpaceService(t, b, memory.NewBus())
				cfg.AdSpaces, cfg.PublicBaseURL = bb.spaces, testPublicBaseURL
			}
			store, ok := b.users.(billing.Store)
			require.True(t, ok, "the %s store does not implement billing.Store", b.backend)
			bb.store = store
			bb.billing = newBillingService(t, bb, b, store, opts)
			sealer, err := tracking.NewSealer([][]byte{testTrackingKey}, nil)
			require.NoError(t, err)
			an := newAnalyticsService(t, b, sealer, &recordingPixels{}, analyticsOpts{settled: settledOf{bb.billing}})
			bb.events, _ = b.users.(analytics.Store)
			cfg.Analytics, cfg.Billing = an, bb.billing
			if opts.privacy {
				bb.privacy = newPrivacyService(t, b, cfg, bb)
				cfg.Privacy = bb.privacy
			}
			if opts.api != nil {
				opts.api(cfg)
			}
		},
	})
	return bb
}

// newBillingService builds billing on store with b's user system, starts
// its queue, and stops it when t ends.
func newBillingService(t *testing.T, bb *billingBundle, b *authBundle, store billing.Store, opts billingOpts) *billing.Service {
	t.Helper()
	var q jobs.Queue
	if db, ok := b.users.(*postgres.DB); ok {
		pq, err := db.Jobs(nil)
		require.NoError(t, err)
		q = pq
	} else {
		lq, err := jobs.NewLocal(nil)
		require.NoError(t, err)
		q = lq
	}
	cfg := billing.Config{
		Store: store, Jobs: q, Auth: b.svc, Audit: b.audit, Limiter: b.limiter,
		Tiers:      auth.TierHistory{Users: b.users, Tiers: b.svc.Tiers()},
		HoldWindow: 24 * time.Hour, NewPayeeHold: time.Hour, TierChangeHold: time.Hour,
		TopUpLimitPerUser:   auth.Limit{Rate: 100, Period: time.Minute, Burst: 100},
		TopUpLimitPerClient: auth.Limit{Rate: 100, Period: time.Minute, Burst: 100},
		Now:                 bb.bclock.Now,
	}
	if !opts.manual {
		bb.proc = billingtest.NewProcessor(billingtest.ProcessorConfig{Now: bb.bclock.Now})
		bb.proc.SetBalance(billing.USD, 1_000_000_00)
		wh, err := stripe.NewWebhooks(stripe.WebhooksConfig{Secrets: []stripe.Secret{testWebhookSecret}})
		require.NoError(t, err)
		cfg.Processor, cfg.Events = bb.proc, wh
		cfg.OnboardingReturnURL, cfg.OnboardingRefreshURL = "https://app.adshare.test/payouts/done", "https://app.adshare.test/payouts/again"
		bb.signer = billingtest.Signer{Secrets: []stripe.Secret{testWebhookSecret}, Now: bb.bclock.Now}
	}
	if opts.billing != nil {
		opts.billing(&cfg)
	}
	svc, err := billing.NewService(cfg)
	require.NoError(t, err)
	require.NoError(t, q.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, q.Stop(ctx))
	})
	return svc
}

// settledOf gives analytics' revenue report billing's final figures, as
// the assembly does.
type settledOf struct{ b *billing.Service }

func (s settledOf) Settled(ctx context.Context, owner uuid.UUID, from, to time.Time) (analytics.SettledFigures, error) {
	f, err := s.b.Settled(ctx, owner, from, to)
	return analytics.SettledFigures{OwnerMicros: f.OwnerMicros, PlatformMicros: f.PlatformMicros, PaidOutMicros: f.PaidOutMicros}, err
}

// cast registers the bundle's usual users: an advertiser, an owner (a
// plain user), another advertiser and owner, and an admin.
type cast struct {
	advertiser, owner, otherAdvertiser, otherOwner, admin tokenJSON
}

func (b *billingBundle) cast(t *testing.T) cast {
	t.Helper()
	role := func(email string, r auth.Role) tokenJSON {
		tok := b.register(t, email)
		if r == auth.RoleUser {
			return tok
		}
		return b.promote(t, tok, r)
	}
	return cast{
		advertiser: role("adv@example.com", auth.RoleAdvertiser), owner: role("owner@example.com", auth.RoleUser),
		otherAdvertiser: role("adv2@example.com", auth.RoleAdvertiser), otherOwner: role("owner2@example.com", auth.RoleUser),
		admin: role("admin@example.com", auth.RoleAdmin),
	}
}

// startTopUp posts a top-up of body with the Idempotency-Key key ("": none).
func (b *billingBundle) startTopUp(t *testing.T, token, key string, body any) reply {
	t.Helper()
	h := http.Header{}
	if key != "" {
		h.Set("Idempotency-Key", key)
	}
	return b.send(t, request{method: http.MethodPost, path: "/billing/topups", token: token, body: body, header: h})
}

// topUp starts a top-up of minor units with a fresh key, expecting 201.
func (b *billingBundle) topUp(t *testing.T, token string, minor int64) topUpJSON {
	t.Helper()
	var tu topUpJSON
	r := b.startTopUp(t, token, uuid.NewString(), map[string]any{"amount": minor, "currency": "usd"}).requireStatus(t, http.StatusCreated)
	r.decode(t, &tu)
	require.Equal(t, "/billing/topups/"+tu.ID.String(), r.header.Get("Location"))
	return tu
}

// webhook posts payload to the webhook endpoint with the Stripe-Signature
// header sig ("": none).
func (b *billingBundle) webhook(t *testing.T, payload []byte, sig string) reply {
	t.Helper()
	h := http.Header{}
	if sig != "" {
		h.Set("Stripe-Signature", sig)
	}
	return b.send(t, request{method: http.MethodPost, path: stripeWebhookPath, body: string(payload), header: h})
}

// deliver signs each event and posts it, expecting 200.
func (b *billingBundle) deliver(t *testing.T, events billingtest.Delivery) {
	t.Helper()
	for _, e := range events {
		payload, sig, err := b.signer.Sign(e)
		require.NoError(t, err)
		b.webhook(t, payload, sig).requireStatus(t, http.StatusOK)
	}
}

// getTopUp reads a top-up, expecting 200.
func (b *billingBundle) getTopUp(t *testing.T, token string, id uuid.UUID) topUpJSON {
	t.Helper()
	var tu topUpJSON
	b.do(t, http.MethodGet, "/billing/topups/"+id.String(), token, nil).requireStatus(t, http.StatusOK).decode(t, &tu)
	return tu
}

// eventually polls cond (billing applies events and makes transfers in
// the background) until it holds, failing after ten seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 10*time.Millisecond, what)
}

// fundedTopUp tops up minor units through the processor's verified word:
// the payment succeeds at the fake processor, its webhook is delivered,
// and the top-up is applied in the background.
func (b *billingBundle) fundedTopUp(t *testing.T, token string, minor int64) topUpJSON {
	t.Helper()
	tu := b.topUp(t, token, minor)
	require.NoError(t, b.proc.SucceedPayment(tu.PaymentID))
	b.deliver(t, b.proc.TakeEvents())
	eventually(t, "the top-up is credited", func() bool { return b.getTopUp(t, token, tu.ID).Status == "succeeded" })
	return b.getTopUp(t, token, tu.ID)
}

// balance reads GET /billing/balance with the query, expecting 200.
func (b *billingBundle) balance(t *testing.T, token, query string) balanceJSON {
	t.Helper()
	var out balanceJSON
	b.do(t, http.MethodGet, "/billing/balance"+query, token, nil).requireStatus(t, http.StatusOK).decode(t, &out)
	return out
}

// transactions reads GET /billing/transactions with the query, expecting 200.
func (b *billingBundle) transactions(t *testing.T, token, query string) ([]transactionJSON, string) {
	t.Helper()
	var out struct {
		Transactions []transactionJSON `json:"transactions"`
		NextCursor   string            `json:"next_cursor"`
	}
	b.do(t, http.MethodGet, "/billing/transactions"+query, token, nil).requireStatus(t, http.StatusOK).decode(t, &out)
	return out.Transactions, out.NextCursor
}

// payouts reads GET /billing/payouts with the query, expecting 200.
func (b *billingBundle) payouts(t *testing.T, token, query string) []payoutJSON {
	t.Helper()
	var out struct {
		Payouts    []payoutJSON `json:"payouts"`
		NextCursor string       `json:"next_cursor"`
	}
	b.do(t, http.MethodGet, "/billing/payouts"+query, token, nil).requireStatus(t, http.StatusOK).decode(t, &out)
	return out.Payouts
}

// requestPayout posts a payout request, expecting 201.
func (b *billingBundle) requestPayout(t *testing.T, token string, body any) payoutJSON {
	t.Helper()
	var po payoutJSON
	r := b.do(t, http.MethodPost, "/billing/payouts", token, body).requireStatus(t, http.StatusCreated)
	r.decode(t, &po)
	require.Equal(t, "/billing/payouts/"+po.ID.String(), r.header.Get("Location"))
	return po
}

// getPayout reads a payout, expecting 200.
func (b *billingBundle) getPayout(t *testing.T, token string, id uuid.UUID) payoutJSON {
	t.Helper()
	var po payoutJSON
	b.do(t, http.MethodGet, "/billing/payouts/"+id.String(), token, nil).requireStatus(t, http.StatusOK).decode(t, &po)
	return po
}

// serve writes n valid billable impressions of advertiser's ad in owner's
// space on the bundle's day at cpmMicros per thousand, the owner's share
// at shareBP: what analytics stores for accepted impressions.
func (b *billingBundle) serve(t *testing.T, owner, advertiser uuid.UUID, n int, cpmMicros int64, shareBP int) {
	t.Helper()
	events := make([]analytics.Event, n)
	spend := cpmMicros / 1000
	for i := range events {
		when := b.day.Add(time.Duration(i%24)*time.Hour + time.Minute)
		events[i] = analytics.Event{
			TrackingID: uuid.Must(uuid.NewV7()), Type: analytics.Impression,
			Ad: tracking.Ad{Owner: owner, Placement: "main", Source: "local", AdID: "ad-1", AdvertiserID: advertiser.String(),
				PriceModel: "cpm", PriceMicros: cpmMicros, Billable: true, IssuedAt: when.Add(-time.Second)},
			OccurredAt: when, ReceivedAt: when, Valid: true, SpendMicros: spend,
			OwnerEarningsMicros: spend * int64(shareBP) / 10_000, OwnerShareBP: shareBP,
		}
	}
	_, err := b.events.WriteEvents(t.Context(), events)
	require.NoError(t, err)
}

// settleDay moves billing's clock past the day's end and settles it, then
// past the hold window and releases it.
func (b *billingBundle) settleAndRelease(t *testing.T) {
	t.Helper()
	require.NoError(t, b.billing.SettleAndRelease(t.Context()))
	b.bclock.Advance(24 * time.Hour)
	require.NoError(t, b.billing.SettleAndRelease(t.Context()))
}

// requireBalanced fails unless the ledger balances.
func (b *billingBundle) requireBalanced(t *testing.T) {
	t.Helper()
	totals, err := b.store.Totals(t.Context())
	require.NoError(t, err)
	for c, dc := range totals {
		require.Equal(t, dc.Debits, dc.Credits, "the ledger balances in %s", c)
	}
}

// problemCode is a problem reply's status and code, for tables.
func problemCode(t *testing.T, r reply) (int, string) {
	t.Helper()
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
		return r.status, ""
	}
	var p Problem
	require.NoError(t, jsonUnmarshalStrict(r.body, &p))
	return p.Status, p.Code
}
