package adshare_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/cache"
	"github.com/adshare/adshare/decision/decisiontest"
	"github.com/adshare/adshare/decision/kevel"
	"github.com/adshare/adshare/decision/kevel/kevelfake"
	"github.com/adshare/adshare/decision/local"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/transport"
)

// testKeys are fixed secrets, so that tests log no warning about random ones.
func testKeys(t testing.TB) adshare.Keys {
	t.Helper()
	signing, err := auth.SigningKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	require.NoError(t, err)
	return adshare.Keys{
		Signing: signing, Refresh: bytes.Repeat([]byte{2}, 32),
		Tracking: [][]byte{bytes.Repeat([]byte{3}, 32)}, Viewer: bytes.Repeat([]byte{4}, 32),
	}
}

// bannerDecider answers every placement with one banner.
func bannerDecider() *decisiontest.Fake {
	return &decisiontest.Fake{Ads: []decision.Ad{{
		Source: "test", AdID: "a1", CreativeID: "c1", AdvertiserID: "adv",
		Creative: decision.Creative{Format: "banner", Title: "Ride further", ImageURL: "https://cdn.example/bike.png"},
		Price:    decision.Price{Model: decision.CPM, Micros: 2_000_000},
	}}}
}

func TestNewSaysWhatIsMissing(t *testing.T) {
	t.Parallel()
	store := memory.New()
	for _, tt := range []struct {
		description string
		cfg         *adshare.Config
		want        string
	}{
		{"nil config", nil, "Config with at least Store, Shared and Decider"},
		{"no store", &adshare.Config{Shared: memory.NewShared(), Decider: bannerDecider()}, "Config.Store is required: store/memory.New()"},
		{"no shared", &adshare.Config{Store: store, Decider: bannerDecider()}, "Config.Shared is required: store/memory.NewShared()"},
		{"no decider", &adshare.Config{Store: store, Shared: memory.NewShared()}, "Config.Decider is required: decision/local.New"},
		{"a short tracking key", &adshare.Config{Store: store, Shared: memory.NewShared(), Decider: bannerDecider(),
			Keys: adshare.Keys{Tracking: [][]byte{[]byte("short")}}}, "Keys.Tracking"},
		{"a part's own config error", &adshare.Config{Store: store, Shared: memory.NewShared(), Decider: bannerDecider(),
			HTTP: transport.Config{PublicBaseURL: "https://api.example/"}}, "PublicBaseURL must not end with a slash"},
	} {
		_, err := adshare.New(tt.cfg)
		require.ErrorContains(t, err, tt.want, tt.description)
	}
}

func TestMissingKeysAreRandomWithAWarning(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
	_, err := adshare.New(&adshare.Config{Store: memory.New(), Shared: memory.NewShared(), Decider: bannerDecider(), Logger: logger})
	require.NoError(t, err)
	for _, field := range []string{"Signing", "Refresh", "Tracking", "Viewer"} {
		require.Contains(t, logs.String(), "Config.Keys."+field+" is not set", field)
	}
	logs.Reset()
	_, err = adshare.New(&adshare.Config{Store: memory.New(), Shared: memory.NewShared(), Decider: bannerDecider(), Logger: logger, Keys: testKeys(t)})
	require.NoError(t, err)
	require.NotContains(t, logs.String(), "Config.Keys")
}

func TestAHostOverridesOnePieceOfOnePart(t *testing.T) {
	t.Parallel()
	limiter := &countingLimiter{Limiter: memory.NewLimiter()}
	cfg := &adshare.Config{Store: memory.New(), Shared: memory.NewShared(), Decider: bannerDecider(), Keys: testKeys(t)}
	cfg.Auth.Limiter = limiter
	app, err := adshare.New(cfg)
	require.NoError(t, err)
	_, _, err = app.Auth().Register(context.Background(), auth.Registration{Email: "someone@example.com", Password: "a long enough passphrase"})
	require.NoError(t, err)
	require.Positive(t, limiter.calls.Load(), "sign-up goes through the host's limiter, not Shared's")
}

func TestANewAccountGetsItsSpace(t *testing.T) {
	t.Parallel()
	store := memory.New()
	app := newApp(t, &adshare.Config{Store: store, Shared: memory.NewShared(), Decider: bannerDecider()})
	u, _, err := app.Auth().Register(context.Background(), auth.Registration{Email: "owner@example.com", Password: "a long enough passphrase"})
	require.NoError(t, err)
	sp, err := store.SpaceByOwner(context.Background(), u.ID)
	require.NoError(t, err, "auth told adspace of the account, without the host wiring it")
	require.Equal(t, u.ID, sp.OwnerID)
}

// lifecycleLog records the order in which parts start and stop.
type lifecycleLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *lifecycleLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, s)
}

func (l *lifecycleLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

// component is a part with a lifecycle that records itself, failing its
// Start when told to.
type component struct {
	name     string
	log      *lifecycleLog
	startErr error
}

func (c *component) Start(context.Context) error {
	c.log.add("start " + c.name)
	return c.startErr
}

func (c *component) Stop(context.Context) error {
	c.log.add("stop " + c.name)
	return nil
}

type loggedStore struct {
	*memory.Store
	component
}

type loggedShared struct {
	*memory.Shared
	component
}

type loggedDecider struct {
	*decisiontest.Fake
	component
}

type loggedPixels struct {
	component
}

func (loggedPixels) Fire(string) error { return nil }
func (loggedPixels) FireClick(context.Context, string) (string, error) {
	return "", errors.New("no clicks here")
}

func TestStartAndStopFollowDependencies(t *testing.T) {
	t.Parallel()
	build := func(failing string) (*adshare.App, *lifecycleLog) {
		log := &lifecycleLog{}
		part := func(name string) component {
			c := component{name: name, log: log}
			if name == failing {
				c.startErr = errors.New("boom")
			}
			return c
		}
		app, err := adshare.New(&adshare.Config{
			Store: &loggedStore{memory.New(), part("store")}, Shared: &loggedShared{memory.NewShared(), part("shared")},
			Decider: &loggedDecider{bannerDecider(), part("decider")}, Pixels: &loggedPixels{part("pixels")}, Keys: testKeys(t),
		})
		require.NoError(t, err)
		return app, log
	}
	ctx := context.Background()

	app, log := build("")
	require.NoError(t, app.Stop(ctx), "stop before start")
	require.Equal(t, []string{"stop pixels", "stop decider", "stop shared", "stop store"}, log.all(),
		"a never-started App still stops what it was given: a store owns connections from the start")
	require.ErrorContains(t, app.Start(ctx), "stopped")

	app, log = build("")
	require.NoError(t, app.Start(ctx))
	require.NoError(t, app.Start(ctx), "a second Start is a no-op")
	require.Equal(t, []string{"start store", "start shared", "start decider", "start pixels"}, log.all())
	require.NoError(t, app.Stop(ctx))
	require.NoError(t, app.Stop(ctx), "a second Stop is a no-op")
	require.Equal(t, []string{"start store", "start shared", "start decider", "start pixels",
		"stop pixels", "stop decider", "stop shared", "stop store"}, log.all())

	app, log = build("decider")
	err := app.Start(ctx)
	require.ErrorContains(t, err, "start decider: boom")
	require.Equal(t, []string{"start store", "start shared", "start decider",
		"stop pixels", "stop decider", "stop shared", "stop store"}, log.all(),
		"a failed start stops everything, in reverse, the part that failed included (Stop is safe before Start)")
	require.NoError(t, app.Stop(ctx))
	require.Len(t, log.all(), 7, "nothing is stopped twice")
	require.ErrorContains(t, app.Start(ctx), "stopped")
}

func TestTheDeciderThatIsAlsoThePixelsStartsOnce(t *testing.T) {
	t.Parallel()
	log := &lifecycleLog{}
	both := &decidingPixels{loggedDecider{bannerDecider(), component{name: "kevel", log: log}}}
	app, err := adshare.New(&adshare.Config{Store: memory.New(), Shared: memory.NewShared(), Decider: both, Pixels: both, Keys: testKeys(t)})
	require.NoError(t, err)
	require.NoError(t, app.Start(context.Background()))
	require.NoError(t, app.Stop(context.Background()))
	require.Equal(t, []string{"start kevel", "stop kevel"}, log.all())
}

type decidingPixels struct{ loggedDecider }

func (decidingPixels) Fire(string) error { return nil }
func (decidingPixels) FireClick(context.Context, string) (string, error) {
	return "", errors.New("no clicks here")
}

// TestStopUnderLoadDrainsAndLeavesNoGoroutine serves the assembled API to
// concurrent apps that fill a space and report impressions, and stops the
// App while they still send, then the server: every impression
// acknowledged is stored, later ones get 503, and no goroutine is left,
// on the local engine and on Kevel (the project's fake) through the cache
// with its pixels fired. It is not parallel: goleak sees the whole
// process.
func TestStopUnderLoadDrainsAndLeavesNoGoroutine(t *testing.T) {
	t.Run("local engine", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		store := memory.New()
		inventory, err := adspace.NewInventory(store)
		require.NoError(t, err)
		engine, err := local.New(local.Config{Inventory: inventory, Stats: store, Frequency: memory.NewFrequencyCounter(time.Hour)})
		require.NoError(t, err)
		cfg := &adshare.Config{Store: store, Shared: memory.NewShared(), Decider: engine, Keys: testKeys(t)}
		cfg.AdSpaces.AllowAnonymous = true
		app, err := adshare.New(cfg)
		require.NoError(t, err)
		owner, _ := seedApprovedAd(t, app, store)
		stopUnderLoad(t, app, store, owner)
	})
	t.Run("kevel through the cache", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		ctx := context.Background()
		fake := kevelfake.New(kevelfake.Config{NetworkID: 23, SiteIDs: []int64{1}, Ads: []kevelfake.Ad{{
			AdType: 4, SiteID: 1, Title: "Ride further", ImageURL: "https://cdn.example.com/bike.png", Width: 320, Height: 50,
			Price: "2.50", RateType: 2, ClickThroughURL: "https://bikes.example.com/",
		}}})
		require.NoError(t, fake.Start(ctx))
		defer func() { require.NoError(t, fake.Stop(ctx)) }() // after the App, before goleak
		client, err := kevel.New(kevel.Config{NetworkID: 23, SiteID: 1, BaseURL: fake.URL(), RatePerSecond: -1})
		require.NoError(t, err)
		firer, err := kevel.NewFirer(kevel.FirerConfig{NetworkID: 23, BaseURL: fake.URL()})
		require.NoError(t, err)
		cached, err := cache.New(client, nil)
		require.NoError(t, err)
		store := memory.New()
		cfg := &adshare.Config{Store: store, Shared: memory.NewShared(), Decider: cached, Pixels: firer, Keys: testKeys(t)}
		cfg.AdSpaces.AllowAnonymous = true
		app, err := adshare.New(cfg)
		require.NoError(t, err)
		owner, _, err := app.Auth().Register(ctx, auth.Registration{Email: "owner@example.com", Password: "a long enough passphrase"})
		require.NoError(t, err)
		stopUnderLoad(t, app, store, owner.ID)
		require.NotEmpty(t, fake.FireLog(), "the impressions' pixels reached Kevel")
	})
}

// stopUnderLoad starts app, loads it with fills and impressions from 16
// apps, stops it under that load and checks what was stored.
func stopUnderLoad(t *testing.T, app *adshare.App, store *memory.Store, owner uuid.UUID) {
	ctx := context.Background()
	require.NoError(t, app.Start(ctx)) // the local engine's first snapshot holds the seeded ad
	srv := httptest.NewServer(app.Handler())

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var (
		acked       atomic.Int64
		refused     atomic.Int64
		unanswered  atomic.Int64 // sent, but the connection failed: maybe stored
		unavailable atomic.Int64 // 503 shutting_down
		wg          sync.WaitGroup
		stop        = make(chan struct{})
	)
	for i := range 16 {
		wg.Go(func() {
			n := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				n++
				token, ok := fillOnce(client, srv.URL, owner, fmt.Sprintf("device-%d-%d", i, n))
				if !ok {
					refused.Add(1)
					continue
				}
				switch postImpression(client, srv.URL, token) {
				case http.StatusOK:
					acked.Add(1)
				case 0:
					unanswered.Add(1)
				case -http.StatusServiceUnavailable:
					unavailable.Add(1)
					refused.Add(1)
				default:
					refused.Add(1)
				}
			}
		})
	}
	require.Eventually(t, func() bool { return acked.Load() >= 500 }, 30*time.Second, 10*time.Millisecond)

	// The App stops while the server still serves (harder than the
	// documented order, server first): what is queued drains, and what
	// comes after is refused with 503. Then the server shuts down.
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, app.Stop(stopCtx))
	require.Eventually(t, func() bool { return unavailable.Load() > 0 }, 10*time.Second, time.Millisecond,
		"impressions after Stop are refused with 503 shutting_down")
	srv.Config.SetKeepAlivesEnabled(false)
	require.NoError(t, srv.Config.Shutdown(stopCtx))
	close(stop)
	wg.Wait()
	srv.Close()
	client.CloseIdleConnections()

	// An impression whose answer was lost with its connection may be
	// stored (the app retries it, and is told it is a duplicate); every
	// acknowledged one must be, and nothing refused.
	stored := storedImpressions(t, store, owner)
	require.GreaterOrEqual(t, stored, acked.Load(), "every acknowledged impression is stored")
	require.LessOrEqual(t, stored, acked.Load()+unanswered.Load(), "no refused impression is stored")
	t.Logf("%d impressions acknowledged, %d stored; %d requests refused and %d unanswered while stopping",
		acked.Load(), stored, refused.Load(), unanswered.Load())
}

// seedApprovedAd makes an owner, an advertiser and an approved, funded ad
// of the advertiser's, and returns the owner's id and the ad's.
func seedApprovedAd(t *testing.T, app *adshare.App, store *memory.Store) (owner, content uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	o, _, err := app.Auth().Register(ctx, auth.Registration{Email: "owner@example.com", Password: "a long enough passphrase"})
	require.NoError(t, err)
	adv, _, err := app.Auth().Register(ctx, auth.Registration{Email: "advertiser@example.com", Password: "a long enough passphrase"})
	require.NoError(t, err)
	admin, _, err := app.Auth().Register(ctx, auth.Registration{Email: "admin@example.com", Password: "a long enough passphrase"})
	require.NoError(t, err)
	_, err = store.SetRole(ctx, admin.ID, auth.RoleAdmin, time.Now())
	require.NoError(t, err)
	_, err = store.SetRole(ctx, adv.ID, auth.RoleAdvertiser, time.Now())
	require.NoError(t, err)
	advertiser := auth.Principal{UserID: adv.ID, Role: auth.RoleAdvertiser}
	c, err := app.AdSpaces().CreateContent(ctx, advertiser, adspace.ContentDraft{
		Format: "banner", Title: "Ride further", ClickURL: "https://bikes.example.com/",
		Bid: adspace.Bid{Model: adspace.BidCPM, Micros: 2_000_000}, TotalBudgetMicros: 1_000_000_000,
	}, true)
	require.NoError(t, err)
	adminP := auth.Principal{UserID: admin.ID, Role: auth.RoleAdmin}
	_, err = app.AdSpaces().Approve(ctx, adminP, c.ID)
	require.NoError(t, err)
	// Ads run on funded budgets only: a top-up (manual on the embedded
	// defaults: an admin confirms it).
	tu, err := app.Billing().StartTopUp(ctx, advertiser, billing.TopUpRequest{Amount: 5_000, Currency: billing.USD, ClientKey: "seed"})
	require.NoError(t, err)
	_, err = app.Billing().ConfirmTopUp(ctx, adminP, tu.ID)
	require.NoError(t, err)
	return o.ID, c.ID
}

func fillOnce(client *http.Client, base string, owner uuid.UUID, device string) (string, bool) {
	req, _ := http.NewRequest(http.MethodGet, base+"/ad-space/"+owner.String(), nil)
	req.Header.Set("X-Adshare-Device", device)
	resp, err := client.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var fill struct {
		Ads []struct {
			Tracking struct {
				Token string `json:"token"`
			} `json:"tracking"`
		} `json:"ads"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&fill) != nil || len(fill.Ads) == 0 {
		return "", false
	}
	return fill.Ads[0].Tracking.Token, true
}

func postImpression(client *http.Client, base, token string) int {
	body := `{"type":"impression","token":"` + token + `","occurred_at":"` + time.Now().Add(2*time.Second).UTC().Format(time.RFC3339Nano) + `"}`
	req, _ := http.NewRequest(http.MethodPost, base+"/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "AdshareApp/2.1 (iPhone; iOS 18.1)")
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var out map[string]any // a result's status is a word, a problem's a number
	if json.NewDecoder(resp.Body).Decode(&out) != nil {
		return -1
	}
	switch {
	case resp.StatusCode == http.StatusOK && out["status"] == "accepted":
		return http.StatusOK
	case resp.StatusCode == http.StatusServiceUnavailable && out["code"] == "shutting_down" && resp.Header.Get("Retry-After") != "":
		return -http.StatusServiceUnavailable
	}
	return -resp.StatusCode
}

func storedImpressions(t *testing.T, store *memory.Store, owner uuid.UUID) int64 {
	t.Helper()
	now := time.Now().UTC()
	rows, err := store.Report(context.Background(), analytics.Query{
		Granularity: analytics.Day, From: now.Add(-48 * time.Hour).Truncate(24 * time.Hour), To: now.Add(48 * time.Hour).Truncate(24 * time.Hour),
		Location: time.UTC, Owner: owner,
	})
	require.NoError(t, err)
	var n int64
	for _, r := range rows {
		n += r.Impressions
	}
	return n
}

// newApp builds an App with testKeys, started, and stopped when t ends.
func newApp(t *testing.T, cfg *adshare.Config) *adshare.App {
	t.Helper()
	if cfg.Keys.Signing == nil {
		cfg.Keys = testKeys(t)
	}
	app, err := adshare.New(cfg)
	require.NoError(t, err)
	require.NoError(t, app.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, app.Stop(context.Background())) })
	return app
}

type countingLimiter struct {
	auth.Limiter
	calls atomic.Int64
}

func (l *countingLimiter) Allow(ctx context.Context, key string, limit auth.Limit) (auth.LimitResult, error) {
	l.calls.Add(1)
	return l.Limiter.Allow(ctx, key, limit)
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
