package adshare_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/decision/local"
	"github.com/adshare/adshare/store/memory"
)

// travel is a clock a test moves forward.
type travel struct {
	mu sync.Mutex
	t  time.Time
}

func (c *travel) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *travel) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestTheMoneyLoopThroughTheAssembly runs the embedded defaults' money
// loop through what New assembled, travelling in time with Config.Now:
// a funded ad fills a space, its impressions are accepted over HTTP, the
// day is settled at the owner's tier share, released after the hold
// window, paid out (manually: an admin records it), and the revenue
// report's final and paid-out figures come from the ledger.
func TestTheMoneyLoopThroughTheAssembly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &travel{t: time.Now().UTC()}
	store := memory.New()
	inventory, err := adspace.NewInventory(store)
	require.NoError(t, err)
	engine, err := local.New(local.Config{Inventory: inventory, Stats: store, Frequency: memory.NewFrequencyCounter(time.Hour), Now: clock.Now})
	require.NoError(t, err)
	tiers := auth.DefaultTiers()
	tiers[0].MinPayoutMicros = 10_000 // a cent: the test's earnings are small
	tierSet, err := auth.NewTiers(tiers)
	require.NoError(t, err)
	cfg := &adshare.Config{Store: store, Shared: memory.NewShared(), Decider: engine, Now: clock.Now}
	cfg.Auth.Tiers = tierSet
	cfg.AdSpaces.AllowAnonymous = true
	app := newApp(t, cfg)
	owner, _ := seedApprovedAd(t, app, store) // $50 budget, a $2 CPM ad
	clock.Add(time.Minute)                    // the engine's inventory is refreshed by its clock
	require.NoError(t, engine.Refresh(ctx))   // it took its snapshot before the ad was approved
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(srv.Close)

	const n = 40
	for i := range n {
		token, ok := fillOnce(srv.Client(), srv.URL, owner, "device-"+uuid.NewString())
		require.True(t, ok, "fill %d serves the funded ad", i)
		body := `{"type":"impression","token":"` + token + `","occurred_at":"` + clock.Now().Add(time.Second).Format(time.RFC3339Nano) + `"}`
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/events", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "AdshareApp/2.1 (iPhone; iOS 18.1)")
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	day := clock.Now().Truncate(24 * time.Hour)
	admin := auth.Principal{UserID: uuid.Must(uuid.NewV7()), Role: auth.RoleAdmin}
	free := tiers[0] // a new owner's
	require.Equal(t, "free", free.Name)
	perImpression := int64(2_000_000 / 1000)
	wantOwner := n * (perImpression * int64(free.RevenueShareBP) / 10_000)

	require.NoError(t, app.Billing().SettleAndRelease(ctx))
	bal, err := app.Billing().Balances(ctx, admin, owner)
	require.NoError(t, err)
	require.Zero(t, bal.Held, "today is not final yet")

	clock.Add(24*time.Hour + billing.DefaultSettleLag)
	require.NoError(t, app.Billing().SettleAndRelease(ctx))
	bal, err = app.Billing().Balances(ctx, admin, owner)
	require.NoError(t, err)
	require.Equal(t, wantOwner, bal.Held, "settled at the owner's tier share, held")

	clock.Add(billing.DefaultHoldWindow)
	require.NoError(t, app.Billing().SettleAndRelease(ctx))
	bal, err = app.Billing().Balances(ctx, admin, owner)
	require.NoError(t, err)
	require.Zero(t, bal.Held)
	require.Equal(t, wantOwner, bal.Available, "released after the hold window")

	report, err := app.Analytics().Revenue(ctx, auth.Principal{UserID: owner, Role: auth.RoleUser}, analytics.ReportParams{
		Scope: analytics.ScopeOwner, From: day, To: day.Add(24 * time.Hour), Granularity: analytics.Day})
	require.NoError(t, err)
	require.Equal(t, wantOwner, report.Estimated.OwnerMicros, "the estimate")
	require.NotNil(t, report.Final)
	require.Equal(t, wantOwner, report.Final.OwnerMicros, "the report's final figure is the ledger's")
	require.Zero(t, report.Final.PaidOutMicros)

	// A manual payout: reserved, then recorded paid by an admin.
	ownerP := auth.Principal{UserID: owner, Role: auth.RoleUser}
	po, err := app.Billing().RequestPayout(ctx, ownerP, billing.PayoutRequest{})
	require.NoError(t, err)
	require.True(t, po.Manual)
	require.Equal(t, wantOwner/10_000, po.Amount, "whole cents")
	_, err = app.Billing().RecordPayout(ctx, admin, po.ID, true, "bank transfer 42")
	require.NoError(t, err)
	bal, err = app.Billing().Balances(ctx, admin, owner)
	require.NoError(t, err)
	require.Zero(t, bal.InTransit)
	require.Equal(t, wantOwner%10_000, bal.Available, "the micros below a cent stay")
	report, err = app.Analytics().Revenue(ctx, ownerP, analytics.ReportParams{
		Scope: analytics.ScopeOwner, From: day, To: clock.Now().Add(24 * time.Hour), Granularity: analytics.Day})
	require.NoError(t, err)
	require.Equal(t, po.Amount*10_000, report.Final.PaidOutMicros, "paid out, from the ledger")
}

// TestTheAssemblyMountsTheBillingAPI: New hands billing to the HTTP API
// when the Store keeps money, so its routes answer (here without a token,
// and the webhook without a processor's verifier) instead of 404 route
// not found.
func TestTheAssemblyMountsTheBillingAPI(t *testing.T) {
	t.Parallel()
	store := memory.New()
	inventory, err := adspace.NewInventory(store)
	require.NoError(t, err)
	engine, err := local.New(local.Config{Inventory: inventory, Stats: store, Frequency: memory.NewFrequencyCounter(time.Hour)})
	require.NoError(t, err)
	app := newApp(t, &adshare.Config{Store: store, Shared: memory.NewShared(), Decider: engine})
	require.NotNil(t, app.Billing())
	for _, tt := range []struct {
		method, path, code string
		status             int
	}{
		{http.MethodGet, "/billing/balance", `"invalid_token"`, http.StatusUnauthorized},
		{http.MethodPost, "/webhooks/stripe", `"webhooks_not_configured"`, http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		app.Handler().ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader("{}")))
		require.Equal(t, tt.status, rec.Code, tt.path)
		require.Contains(t, rec.Body.String(), tt.code, tt.path)
	}
}
