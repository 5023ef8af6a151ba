package billing_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/billingtest"
	"github.com/adshare/adshare/billing/stripe"
	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/store/memory"
)

// day is the day whose traffic the tests settle.
var day = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// tiers gives every user the same tier.
type tiers struct{ tier auth.Tier }

func (t tiers) TierAt(context.Context, uuid.UUID, time.Time) (auth.Tier, error) { return t.tier, nil }

var proTier = auth.Tier{Name: "pro", RevenueShareBP: 6500, MinPayoutMicros: 20 * billing.MicrosPerUnit}

// testStore is what the tests need of a store: billing's, and analytics'
// events and rollups (store/memory and store/postgres).
type testStore interface {
	billing.Store
	analytics.Store
	auth.AuditLog
}

type bundle struct {
	svc    *billing.Service
	store  testStore
	proc   *billingtest.Processor
	signer billingtest.Signer
	clock  *clock
	ctx    context.Context

	owner, advertiser, admin auth.Principal
}

const secret = stripe.Secret("whsec_test_secret")

// setup is a billing service on memory with the fake processor (manual
// mode when manual), its clock at the day after `day` plus three hours.
func setup(t *testing.T, manual bool, mutate ...func(*billing.Config)) *bundle {
	t.Helper()
	return setupOn(t, memory.New(), manual, mutate...)
}

// setupOn is setup on store.
func setupOn(t *testing.T, store testStore, manual bool, mutate ...func(*billing.Config)) *bundle {
	t.Helper()
	c := &clock{t: day.Add(27 * time.Hour)}
	authz, err := auth.NewAuthorizer(nil, store, nil, c.Now)
	require.NoError(t, err)
	q, err := jobs.NewLocal(nil)
	require.NoError(t, err) // never started: the tests run jobs themselves
	b := &bundle{store: store, clock: c, ctx: context.Background(),
		owner:      auth.Principal{UserID: uuid.Must(uuid.NewV7()), Role: auth.RoleUser},
		advertiser: auth.Principal{UserID: uuid.Must(uuid.NewV7()), Role: auth.RoleAdvertiser},
		admin:      auth.Principal{UserID: uuid.Must(uuid.NewV7()), Role: auth.RoleAdmin},
	}
	cfg := billing.Config{Store: store, Jobs: q, Auth: authz, Tiers: tiers{proTier}, Audit: store, Now: c.Now,
		HoldWindow: 24 * time.Hour, NewPayeeHold: time.Hour, TierChangeHold: time.Hour}
	if !manual {
		b.proc = billingtest.NewProcessor(billingtest.ProcessorConfig{Now: c.Now})
		b.proc.SetBalance(billing.USD, 1_000_000_00)
		wh, err := stripe.NewWebhooks(stripe.WebhooksConfig{Secrets: []stripe.Secret{secret}})
		require.NoError(t, err)
		cfg.Processor, cfg.Events = b.proc, wh
		cfg.OnboardingReturnURL, cfg.OnboardingRefreshURL = "https://app.example/payouts/done", "https://app.example/payouts/again"
		b.signer = billingtest.Signer{Secrets: []stripe.Secret{secret}, Now: c.Now}
	}
	for _, m := range mutate {
		m(&cfg)
	}
	b.svc, err = billing.NewService(cfg)
	require.NoError(t, err)
	return b
}

// deliver signs the processor's new events, receives and applies them.
func (b *bundle) deliver(t *testing.T, events billingtest.Delivery) {
	t.Helper()
	for _, e := range events {
		payload, header, err := b.signer.Sign(e)
		require.NoError(t, err)
		got, err := b.svc.ReceiveEvent(b.ctx, payload, header)
		require.NoError(t, err)
		require.NoError(t, b.svc.ApplyEventJob(b.ctx, got.ID))
	}
}

// topUp funds the advertiser's budget with minor units, through the
// processor's verified word.
func (b *bundle) topUp(t *testing.T, minor int64) billing.TopUp {
	t.Helper()
	started, err := b.svc.StartTopUp(b.ctx, b.advertiser, billing.TopUpRequest{Amount: minor, Currency: billing.USD, ClientKey: uuid.NewString()})
	require.NoError(t, err)
	if b.proc == nil {
		tu, err := b.svc.ConfirmTopUp(b.ctx, b.admin, started.ID)
		require.NoError(t, err)
		return tu
	}
	require.NotEmpty(t, started.ClientSecret, "the app gets the secret for its SDK")
	require.NoError(t, b.proc.SucceedPayment(started.PaymentID))
	b.deliver(t, b.proc.TakeEvents())
	tu, err := b.store.TopUp(b.ctx, started.ID)
	require.NoError(t, err)
	require.Equal(t, billing.TopUpSucceeded, tu.Status)
	return tu
}

// serve writes n valid billable impressions of the advertiser's ad in the
// owner's space on day, at cpmMicros per thousand, the owner's share at
// shareBP: what analytics would have stored.
func (b *bundle) serve(t *testing.T, owner uuid.UUID, advertiser string, source string, n int, cpmMicros int64, shareBP int) {
	t.Helper()
	events := make([]analytics.Event, n)
	for i := range events {
		when := day.Add(time.Duration(i%24)*time.Hour + time.Minute)
		spend := cpmMicros / 1000
		events[i] = analytics.Event{
			TrackingID: uuid.Must(uuid.NewV7()), Type: analytics.Impression,
			Ad: tracking.Ad{Owner: owner, Placement: "main", Source: source, AdID: "ad-1", AdvertiserID: advertiser,
				PriceModel: "cpm", PriceMicros: cpmMicros, Billable: true, IssuedAt: when.Add(-time.Second)},
			OccurredAt: when, ReceivedAt: when, Valid: true, SpendMicros: spend,
			OwnerEarningsMicros: spend * int64(shareBP) / 10_000, OwnerShareBP: shareBP,
		}
	}
	_, err := b.store.WriteEvents(b.ctx, events)
	require.NoError(t, err)
}

func (b *bundle) balances(t *testing.T, user uuid.UUID) billing.Balances {
	t.Helper()
	bal, err := b.svc.Balances(b.ctx, b.admin, user)
	require.NoError(t, err)
	return bal
}

func (b *bundle) requireBalanced(t *testing.T) {
	t.Helper()
	totals, err := b.store.Totals(b.ctx)
	require.NoError(t, err)
	for c, dc := range totals {
		require.Equal(t, dc.Debits, dc.Credits, "the ledger balances in %s", c)
	}
}

func TestTheMoneyLoop(t *testing.T) {
	t.Parallel()
	b := setup(t, false)

	// Top-up: credited by the verified webhook, net of the fee.
	tu := b.topUp(t, 5_000) // $50
	require.Equal(t, int64(50*billing.MicrosPerUnit), b.balances(t, b.advertiser.UserID).Budget)

	// Spend: 40,000 impressions at $2 CPM ($80) — more than the budget —
	// and 1,000 Kevel impressions at $3 CPM.
	b.serve(t, b.owner.UserID, b.advertiser.UserID.String(), "local", 40_000, 2_000_000, 6500)
	b.serve(t, b.owner.UserID, "kevel-adv-9", "kevel", 1_000, 3_000_000, 6500)

	require.ErrorIs(t, b.svc.Settle(b.ctx, day.Add(24*time.Hour)), billing.ErrTooEarly, "today is not final")
	require.NoError(t, b.svc.Settle(b.ctx, day))
	require.NoError(t, b.svc.Settle(b.ctx, day), "settling again changes nothing")
	owner := b.balances(t, b.owner.UserID)
	// 40,000 × 2,000 × 0.65 = 52,000,000; 1,000 × 3,000 × 0.65 = 1,950,000.
	require.Equal(t, int64(52_000_000+1_950_000), owner.Held, "the owner's share at the tier of each impression")
	require.Zero(t, b.balances(t, b.advertiser.UserID).Budget, "the budget pays as far as it goes")
	figures, err := b.svc.Settled(b.ctx, uuid.Nil, day, day.Add(24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(53_950_000), figures.OwnerMicros)
	require.Equal(t, int64(80_000_000+3_000_000-53_950_000), figures.PlatformMicros, "the platform keeps the rest")
	b.requireBalanced(t)

	// Release after the hold window, then a payout.
	require.ErrorIs(t, b.svc.Release(b.ctx, day), billing.ErrTooEarly)
	b.clock.Set(day.Add(49 * time.Hour))
	require.NoError(t, b.svc.Release(b.ctx, day))
	require.NoError(t, b.svc.Release(b.ctx, day))
	owner = b.balances(t, b.owner.UserID)
	require.Zero(t, owner.Held)
	require.Equal(t, int64(53_950_000), owner.Available)

	_, err = b.svc.RequestPayout(b.ctx, b.owner, billing.PayoutRequest{})
	require.ErrorIs(t, err, billing.ErrNoPayee, "no payout account yet")
	ob, err := b.svc.Onboard(b.ctx, b.owner, "owner@example.com", "US")
	require.NoError(t, err)
	require.NotEmpty(t, ob.URL)
	require.NoError(t, b.proc.EnableAccount(ob.Payee.ID))
	b.deliver(t, b.proc.TakeEvents())
	_, err = b.svc.RequestPayout(b.ctx, b.owner, billing.PayoutRequest{})
	require.ErrorIs(t, err, billing.ErrPayoutHeld, "a new payout account waits")
	b.clock.Set(day.Add(51 * time.Hour))

	po, err := b.svc.RequestPayout(b.ctx, b.owner, billing.PayoutRequest{})
	require.NoError(t, err)
	require.Equal(t, int64(5_395), po.Amount, "whole cents; the rest stays available")
	owner = b.balances(t, b.owner.UserID)
	require.Equal(t, int64(53_950_000-53_950_000), owner.Available)
	require.Equal(t, int64(53_950_000), owner.InTransit, "reserved before the processor is called")
	require.NoError(t, b.svc.RunPayoutJob(b.ctx, po.ID))
	require.NoError(t, b.svc.RunPayoutJob(b.ctx, po.ID), "running the job again changes nothing")
	po, err = b.store.Payout(b.ctx, po.ID)
	require.NoError(t, err)
	require.Equal(t, billing.PayoutPaid, po.Status)
	transfers, err := b.proc.TransfersInGroup(b.ctx, po.ID.String())
	require.NoError(t, err)
	require.Len(t, transfers, 1)
	require.Equal(t, int64(5_395), transfers[0].Amount)
	owner = b.balances(t, b.owner.UserID)
	require.Zero(t, owner.InTransit)
	b.requireBalanced(t)

	rec, err := b.svc.Reconcile(b.ctx, day)
	require.NoError(t, err)
	require.Empty(t, rec.Differences, "the ledger and the processor agree")
	require.NotZero(t, tu.Amount)
}

func TestAPayoutWhoseOutcomeIsUnknownIsRetriedWithTheSameKey(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	po := b.readyPayout(t)
	b.proc.FailNext(billingtest.MethodTransfer, billingtest.FailTimeout)
	err := b.svc.RunPayoutJob(b.ctx, po.ID)
	require.Error(t, err)
	require.False(t, billing.IsDefinite(err), "a timeout may have moved the money")
	got, _ := b.store.Payout(b.ctx, po.ID)
	require.Equal(t, billing.PayoutPending, got.Status, "nothing is decided on an unknown outcome")
	require.NoError(t, b.svc.RunPayoutJob(b.ctx, po.ID))
	transfers, err := b.proc.TransfersInGroup(b.ctx, po.ID.String())
	require.NoError(t, err)
	require.Len(t, transfers, 1, "the retry got the first transfer back, not a second one")
	got, _ = b.store.Payout(b.ctx, po.ID)
	require.Equal(t, billing.PayoutPaid, got.Status)

	// Past the processor's key window, the group is looked up first.
	po2 := b.readyPayoutAgain(t)
	b.proc.FailNext(billingtest.MethodTransfer, billingtest.FailTimeout)
	require.Error(t, b.svc.RunPayoutJob(b.ctx, po2.ID))
	b.clock.Set(b.clock.Now().Add(25 * time.Hour))
	require.NoError(t, b.svc.RunPayoutJob(b.ctx, po2.ID))
	transfers, err = b.proc.TransfersInGroup(b.ctx, po2.ID.String())
	require.NoError(t, err)
	require.Len(t, transfers, 1)
	b.requireBalanced(t)
}

func TestADefiniteFailureVoidsThePayout(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	po := b.readyPayout(t)
	b.proc.SetBalance(billing.USD, 0) // the platform cannot pay
	require.NoError(t, b.svc.RunPayoutJob(b.ctx, po.ID))
	got, _ := b.store.Payout(b.ctx, po.ID)
	require.Equal(t, billing.PayoutVoided, got.Status)
	require.NotEmpty(t, got.LastError)
	owner := b.balances(t, b.owner.UserID)
	require.Equal(t, int64(53_950_000), owner.Available, "the reserve went back")
	require.Zero(t, owner.InTransit)
	b.requireBalanced(t)
}

// readyPayout runs the loop up to a pending payout of the owner's.
func (b *bundle) readyPayout(t *testing.T) billing.Payout {
	t.Helper()
	b.topUp(t, 10_000)
	b.serve(t, b.owner.UserID, b.advertiser.UserID.String(), "local", 40_000, 2_000_000, 6500)
	b.serve(t, b.owner.UserID, "kevel-adv-9", "kevel", 1_000, 3_000_000, 6500)
	require.NoError(t, b.svc.Settle(b.ctx, day))
	b.clock.Set(day.Add(49 * time.Hour))
	require.NoError(t, b.svc.Release(b.ctx, day))
	ob, err := b.svc.Onboard(b.ctx, b.owner, "owner@example.com", "US")
	require.NoError(t, err)
	require.NoError(t, b.proc.EnableAccount(ob.Payee.ID))
	b.deliver(t, b.proc.TakeEvents())
	b.clock.Set(day.Add(51 * time.Hour))
	po, err := b.svc.RequestPayout(b.ctx, b.owner, billing.PayoutRequest{})
	require.NoError(t, err)
	return po
}

// readyPayoutAgain earns the owner another day and asks for a payout.
func (b *bundle) readyPayoutAgain(t *testing.T) billing.Payout {
	t.Helper()
	next := day.Add(24 * time.Hour)
	events := make([]analytics.Event, 30_000)
	for i := range events {
		when := next.Add(time.Duration(i%24)*time.Hour + time.Minute)
		events[i] = analytics.Event{TrackingID: uuid.Must(uuid.NewV7()), Type: analytics.Impression,
			Ad: tracking.Ad{Owner: b.owner.UserID, Placement: "main", Source: "kevel", AdID: "ad-2", AdvertiserID: "kevel-adv-9",
				PriceModel: "cpm", PriceMicros: 2_000_000, Billable: true, IssuedAt: when.Add(-time.Second)},
			OccurredAt: when, ReceivedAt: when, Valid: true, SpendMicros: 2_000, OwnerEarningsMicros: 1_300, OwnerShareBP: 6500}
	}
	_, err := b.store.WriteEvents(b.ctx, events)
	require.NoError(t, err)
	b.clock.Set(next.Add(49 * time.Hour))
	require.NoError(t, b.svc.Settle(b.ctx, next))
	require.NoError(t, b.svc.Release(b.ctx, next))
	po, err := b.svc.RequestPayout(b.ctx, b.owner, billing.PayoutRequest{})
	require.NoError(t, err)
	return po
}

func TestReleasingADayNeverSettledSettlesItFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	b.topUp(t, 5_000)
	b.serve(t, b.owner.UserID, b.advertiser.UserID.String(), "local", 1_000, 2_000_000, 6500)
	b.clock.Set(day.Add(49 * time.Hour)) // past the hold window; the sweep never settled the day
	require.NoError(t, b.svc.Release(b.ctx, day))
	owner := b.balances(t, b.owner.UserID)
	require.Zero(t, owner.Held)
	require.Equal(t, int64(1_000*2_000*65/100), owner.Available)
	require.NoError(t, b.svc.Settle(b.ctx, day), "settling it again changes nothing")
	require.Equal(t, owner, b.balances(t, b.owner.UserID))
	b.requireBalanced(t)
}

// alerts records what billing tells users.
type alerts struct {
	mu  sync.Mutex
	got []string // "user kind"
}

func (a *alerts) Alert(_ context.Context, user uuid.UUID, kind, _ string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, user.String()+" "+kind)
}

func (a *alerts) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.got)
}

func TestOwnersSettledAtOnceDrainASharedBudgetExactly(t *testing.T) {
	t.Parallel()
	told := &alerts{}
	b := setup(t, false, func(c *billing.Config) { c.Alerts = told })
	b.topUp(t, 1_000) // $10 for $40 of spend across 200 owners
	for range 200 {
		b.serve(t, uuid.Must(uuid.NewV7()), b.advertiser.UserID.String(), "local", 100, 2_000_000, 5000)
	}
	require.NoError(t, b.svc.Settle(b.ctx, day))
	require.Zero(t, b.balances(t, b.advertiser.UserID).Budget, "the budget paid as far as it went")
	unfunded := billing.PlatformAccount(billing.PlatformUnfunded, billing.USD)
	bals, err := b.store.Balances(b.ctx, []billing.AccountID{unfunded})
	require.NoError(t, err)
	require.Equal(t, int64(30*billing.MicrosPerUnit), bals[unfunded].Micros, "the rest, and no more")
	b.requireBalanced(t)
	require.Equal(t, []string{b.advertiser.UserID.String() + " budget_exhausted"}, told.list(),
		"the advertiser is told once, by the settlement that took the last of the budget")
	require.NoError(t, b.svc.Settle(b.ctx, day))
	require.Len(t, told.list(), 1, "settling again tells no one")
}
