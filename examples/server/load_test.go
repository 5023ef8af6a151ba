package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/loadtest"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// loadProfile is ADSHARE_LOAD_PROFILE: "ci" (the default: short runs at
// modest rates, for every CI run) or "full" (the capacity search, the
// 10-minute soak and long fault windows; see the README's load section).
func loadProfile() string {
	if p := os.Getenv("ADSHARE_LOAD_PROFILE"); p != "" {
		return p
	}
	return "ci"
}

// loadResults writes a run's JSON, Markdown and HDR files under
// ADSHARE_LOAD_RESULTS (a directory) when set, and logs the Markdown.
func loadResults(t *testing.T, name string, rep *loadtest.Report) {
	t.Helper()
	var md bytes.Buffer
	require.NoError(t, rep.WriteMarkdown(&md))
	t.Logf("%s\n%s", name, md.String())
	dir := os.Getenv("ADSHARE_LOAD_RESULTS")
	if dir == "" {
		return
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for ext, write := range map[string]func(*bytes.Buffer) error{
		".json": func(b *bytes.Buffer) error { return rep.WriteJSON(b) },
		".md":   func(b *bytes.Buffer) error { _, err := b.Write(md.Bytes()); return err },
		".hdr":  func(b *bytes.Buffer) error { return rep.WriteHDR(b) },
	} {
		var b bytes.Buffer
		require.NoError(t, write(&b))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+ext), b.Bytes(), 0o644))
	}
}

// loadServer starts the example server on PostgreSQL and Redis for load:
// client limits out of the way (the fleet comes from many addresses
// through a trusted proxy, which is what is measured), and sets up a
// fleet on it.
func loadServer(t *testing.T, env map[string]string, cfg loadtest.FleetConfig) (string, *loadtest.Fleet) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if env["DATABASE_URL"] == "" {
		env["DATABASE_URL"] = postgrestest.URL(t)
	}
	if env["REDIS_URL"] == "" {
		redisURL, prefix := testenv.Redis(t)
		env["REDIS_URL"], env["ADSHARE_REDIS_PREFIX"] = redisURL, prefix
	}
	for k, v := range map[string]string{"ADSHARE_ACCESS_LOG": "false", "ADSHARE_CLIENT_RATE": "6000000", "ADSHARE_USER_RATE": "6000000",
		"ADSHARE_TRUSTED_PROXIES": "127.0.0.1/32"} {
		if env[k] == "" {
			env[k] = v
		}
	}
	base, out := startServer(t, env, "-migrate-on-start")
	t.Cleanup(func() { // the server's errors explain a failed run
		if t.Failed() {
			for line := range strings.Lines(out.String()) {
				if strings.Contains(line, `"level":"ERROR"`) {
					t.Log(strings.TrimSpace(line))
				}
			}
		}
	})
	dbEnv := map[string]string{"DATABASE_URL": env["DATABASE_URL"]}
	cfg.Base = base
	cfg.Promote = func(ctx context.Context, email, role string) error {
		var out bytes.Buffer
		return run(ctx, []string{"server", "users", "set-role", email, role}, func(k string) string { return dbEnv[k] }, &out)
	}
	if cfg.Payees > 0 {
		cfg.Earn = ledgerEarn(t, env["DATABASE_URL"])
	}
	fleet, err := loadtest.Setup(context.Background(), cfg)
	require.NoError(t, err)
	return base, fleet
}

// ledgerEarn is a fleet's FleetConfig.Earn on the server's PostgreSQL:
// settlement and the hold window's release put earnings in an owner's
// available account after days, which a load run cannot wait for, so
// they are posted there directly, from the platform's settlement account
// (as billing's payout example does).
func ledgerEarn(t *testing.T, dbURL string) func(ctx context.Context, owner string, micros int64) error {
	t.Helper()
	db, err := postgres.Open(context.Background(), dbURL, &postgres.Config{MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Stop(context.Background()) })
	return func(ctx context.Context, owner string, micros int64) error {
		id, err := uuid.Parse(owner)
		if err != nil {
			return err
		}
		return db.Apply(ctx, billing.Write{Post: []billing.Transaction{{
			Key: "load-earnings:" + owner, Kind: billing.TxAdjustment, EffectiveAt: time.Now(), Memo: "load test earnings",
			Entries: []billing.Entry{
				{Account: billing.PlatformAccount(billing.PlatformSettlement, billing.USD), Side: billing.Debit, Amount: micros},
				{Account: billing.UserAccount(billing.Available, id, billing.USD), Side: billing.Credit, Amount: micros},
			},
		}}})
	}
}

// TestLoadMix sends the fleet's mix at a fixed rate to the example server
// on PostgreSQL and Redis, with a WebSocket client per owner held open:
// every route answers, nothing fails, and no 5xx; every payout asked for
// is accepted, and made once; the clients stay connected and get the
// live figures of their owner's impressions.
func TestLoadMix(t *testing.T) {
	t.Parallel()
	loadAlone(t)
	rate, d := 150, 5*time.Second
	if loadProfile() == "full" {
		rate, d = 600, 60*time.Second
	}
	// A payee asks for one payout: enough of them for the run's share.
	payees := rate*int(d/time.Second)*loadtest.DefaultWeights.Payout*11/10_000 + 3 // a tenth to spare: fitWeights' cuts raise the others' shares
	base, fleet := loadServer(t, nil, loadtest.FleetConfig{Owners: 20, Tokens: 1000, Payees: payees})
	rep := runFleetMix(t, fleet, "mix", rate, d)
	require.NotNil(t, rep.Route(loadtest.RoutePayout), "payouts were sent")
	require.InDelta(t, rate*int(d/time.Second), rep.Total.Requests, float64(rate)/10, "open loop: rate times duration")
	require.False(t, strings.Contains(rep.Route(loadtest.RouteFill).Route, "unmatched"))

	payouts := rep.Route(loadtest.RoutePayout)
	require.Equal(t, payouts.Requests, payouts.Statuses["201"], "every payout is accepted")
	require.Positive(t, fleet.PayoutsLeft(), "no payee asked twice")
	made := listPayouts(t, base, fleet.Admin)
	require.Len(t, made, payouts.Requests, "one payout for each accepted request, none twice")
	owners := map[string]bool{}
	for _, po := range made {
		require.False(t, owners[po.OwnerID], "a payee's payout is made once")
		owners[po.OwnerID] = true
		require.Equal(t, int64(5000), po.Amount)
		require.Equal(t, "pending", po.Status, "manual payouts wait for an admin")
	}

	ws := rep.Sockets
	require.NotNil(t, ws)
	require.Equal(t, len(fleet.Owners), ws.Clients)
	require.Equal(t, ws.Clients, ws.Open, "every client is connected at the end")
	require.Equal(t, ws.Clients, ws.Connects, "no client had to reconnect")
	require.Zero(t, ws.UnexpectedCloses)
	require.Zero(t, ws.ConnectErrors)
	require.Equal(t, 3*ws.Clients, ws.Messages["subscribed"], "each its space, its alerts and the broadcasts")
	require.Zero(t, ws.WithoutMetrics, "every owner's space got impressions, and its client their live figures: %v", ws.Messages)
	require.Positive(t, ws.Messages["ad.updated"], "settings edits reach the owners' clients")
	require.Positive(t, ws.Samples, "impressions were timed to their metrics.live")
	// Live figures are best effort (a publish that fails or comes too late
	// is dropped, and none is replayed): most, not all, are asked for. On
	// a quiet machine none is missing (the long profile's 1,000 of 1,000);
	// CI's race detector on two shared cores loses a fifth.
	require.LessOrEqual(t, ws.Unreported, (ws.Samples+ws.Unreported)/2, "most impressions sent were reported live")
	require.Less(t, ws.MetricsLatency.P99, 5000.0, "live figures come within seconds")
}

// runFleetMix runs fleet's mix (fitWeights) at rate for d with a
// WebSocket client per owner, keeps the results as name, and requires
// that nothing failed and that every route but payouts was sent.
func runFleetMix(t *testing.T, fleet *loadtest.Fleet, name string, rate int, d time.Duration) *loadtest.Report {
	t.Helper()
	ctx := context.Background()
	sockets, err := fleet.OpenSockets(ctx, loadtest.SocketConfig{})
	require.NoError(t, err)
	defer sockets.Close()
	rep, err := loadtest.Run(ctx, loadtest.Config{Rate: rate, Duration: d, Mix: fleet.Mix(fitWeights(fleet, rate*int(d/time.Second))),
		Sockets: sockets})
	require.NoError(t, err)
	loadResults(t, name, rep)
	require.Empty(t, rep.Failures(0), "every request of the mix succeeds, and every socket stays open")
	for _, route := range []string{loadtest.RouteFill, loadtest.RouteEvents, loadtest.RouteClick, loadtest.RouteSettings,
		loadtest.RoutePerformance, loadtest.RouteBalance, loadtest.RouteSignIn, loadtest.RouteRefresh, loadtest.RouteTopUp} {
		r := rep.Route(route)
		require.NotNil(t, r, "%s was sent", route)
		require.NotZero(t, r.Requests, route)
	}
	return rep
}

// loadSlots bounds how many of the package's load-harness tests (the
// mixes, the fault rows, the crash rounds) run at once: each drives a
// server at a fixed rate, and on two cores under the race detector more
// than two at a time time out on the machine, not on the server.
var loadSlots = make(chan struct{}, 2)

// loadSlot waits for a slot and holds it until t ends (after t's other
// cleanups, its server's stop among them).
func loadSlot(t *testing.T) {
	t.Helper()
	loadSlots <- struct{}{}
	t.Cleanup(func() { <-loadSlots })
}

// loadAloneMu makes loadAlone's taking of every slot one step: two tests
// taking them one by one could each hold some and wait for the other's.
var loadAloneMu sync.Mutex

// loadAlone is loadSlot holding every slot: no other load test runs
// beside t. The mixes take it, whose every request must succeed and
// whose generator must keep its rate: beside a fault row on CI's race
// detector, the generator fell behind its schedule and requests passed
// their deadline queued behind the other test's.
func loadAlone(t *testing.T) {
	t.Helper()
	loadAloneMu.Lock()
	for range cap(loadSlots) {
		loadSlots <- struct{}{}
	}
	loadAloneMu.Unlock()
	t.Cleanup(func() {
		for range cap(loadSlots) {
			<-loadSlots
		}
	})
}

// fitWeights is the default mix, in ten-thousandths, with the requests
// that use up what the fleet holds (refresh tokens, sign-ins within the
// accounts' limits, top-ups within the advertisers' burst, less the one
// each spent on funding its ad) cut to what a run of n requests finds,
// with a tenth to spare: the long profile's run would otherwise replay
// them and be refused, as a replay should be. The CI run's share is the
// default's.
func fitWeights(f *loadtest.Fleet, n int) loadtest.Weights {
	d := loadtest.DefaultWeights
	fit := func(share, have int) int { return max(1, min(10*share, have*9_000/n)) }
	return loadtest.Weights{Fill: 10 * d.Fill, Impression: 10 * d.Impression, Batch: 10 * d.Batch, Click: 10 * d.Click,
		Settings: 10 * d.Settings, Report: 10 * d.Report, Balance: 10 * d.Balance, Payout: 10 * d.Payout,
		Refresh: fit(d.Refresh, f.Refreshes()), SignIn: fit(d.SignIn, f.SignInsLeft()),
		TopUp: fit(d.TopUp, len(f.Advertisers)*(billing.DefaultTopUpLimitPerUser.Burst-1))}
}

// listedPayout is a payout as GET /billing/payouts lists it.
type listedPayout struct {
	OwnerID string `json:"owner_id"`
	Amount  int64  `json:"amount"`
	Status  string `json:"status"`
}

// listPayouts lists everyone's payouts as admin.
func listPayouts(t *testing.T, base string, admin *loadtest.Member) []listedPayout {
	t.Helper()
	p := send(http.MethodGet, base+"/billing/payouts?all=true&limit=500", "", "Authorization", "Bearer "+admin.Access,
		"X-Forwarded-For", admin.Addr)
	require.Equal(t, http.StatusOK, p.status, p.body)
	var out struct {
		Payouts []listedPayout `json:"payouts"`
	}
	require.NoError(t, json.Unmarshal([]byte(p.body), &out))
	return out.Payouts
}
