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
	"github.com/adshare/adshare/store/memory"
)

// testServedAgo is how far in the past the analytics bundle's fills are
// served: as if the app had shown each ad for its viewable second before
// reporting it, so that tests need not sleep for an impression to count.
const testServedAgo = 2 * time.Second

// testUpstreamLanding is where the recording pixels say an ad server's
// click redirects.
const testUpstreamLanding = "https://advertiser.example/landing"

// analyticsBundle is the API with the user, ad space and analytics systems
// on one backend, served over real HTTP: a spacesBundle whose ad space
// service counts its fills in an analytics.Service on the same stores,
// which seals and opens tracking tokens with the same Sealer. The client
// sends an app's user agent and does not follow redirects, so click links
// answer their 302.
type analyticsBundle struct {
	*spacesBundle
	analytics *analytics.Service
	sealer    *tracking.Sealer
	pixels    *recordingPixels
}

// analyticsOpts changes what newAnalyticsBundle builds; the zero value is
// the service's defaults.
type analyticsOpts struct {
	// filters configures the invalid-traffic rules.
	filters analytics.FilterConfig
	// settled supplies the revenue report's final figures (nil: none).
	settled analytics.Settled
}

// forEachAnalyticsBackend runs fn, in parallel, on a fresh analyticsBundle
// per backend.
func forEachAnalyticsBackend(t *testing.T, fn func(t *testing.T, b *analyticsBundle)) {
	t.Helper()
	forEachAnalyticsBackendWith(t, analyticsOpts{}, fn)
}

// forEachAnalyticsBackendWith is forEachAnalyticsBackend with options.
func forEachAnalyticsBackendWith(t *testing.T, opts analyticsOpts, fn func(t *testing.T, b *analyticsBundle)) {
	t.Helper()
	for _, backend := range []string{backendMemory, backendPostgres} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			fn(t, newAnalyticsBundle(t, backend, opts))
		})
	}
}

// newAnalyticsBundle builds the spaces bundle of backend with analytics
// mounted: Store and Users are the backend's store, Limiter its limiter
// (Redis on PostgreSQL+Redis), Tiers and Auth the user system, Pixels a
// recording double. The service is closed when t ends, before the stores.
func newAnalyticsBundle(t *testing.T, backend string, opts analyticsOpts) *analyticsBundle {
	t.Helper()
	ab := &analyticsBundle{spacesBundle: &spacesBundle{}, pixels: &recordingPixels{}}
	sb := ab.spacesBundle
	sb.authBundle = newAuthBundle(t, backend, bundleOpts{
		authConfig: func(cfg *auth.Config) {
			cfg.RegisterLimitPerClient = auth.Limit{Rate: 1000, Period: time.Minute, Burst: 1000}
			cfg.AccountObservers = []auth.AccountObserver{accountObserver(func(ctx context.Context, u auth.User) error {
				return sb.spaces.AccountCreated(ctx, u)
			})}
		},
		configure: func(t *testing.T, b *authBundle, cfg *Config) {
			var bus adspace.Broadcaster = memory.NewBus()
			if b.redis != nil {
				bus = b.redis.Bus(nil)
			}
			sb.spaces, sb.engine = newSpaceServiceWith(t, b, bus, func(sc *adspace.Config) {
				ab.sealer = sc.Sealer
				ab.analytics = newAnalyticsService(t, b, sc.Sealer, ab.pixels, opts)
				sc.Fills = ab.analytics
				sc.Now = func() time.Time { return time.Now().Add(-testServedAgo) }
			})
			cfg.AdSpaces, cfg.Analytics, cfg.PublicBaseURL = sb.spaces, ab.analytics, testPublicBaseURL
		},
	})
	ab.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ab.client.Transport = appUserAgent{next: ab.client.Transport}
	return ab
}

// testAppUserAgent is the user agent of the app that reports events; Go's
// own ("Go-http-client/1.1") is an HTTP library's, which the filters flag.
const testAppUserAgent = "AdshareApp/2.1 (iPhone; iOS 18.1)"

// appUserAgent sends testAppUserAgent on requests that set no user agent.
type appUserAgent struct{ next http.RoundTripper }

func (a appUserAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("User-Agent") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", testAppUserAgent)
	}
	return a.next.RoundTrip(r)
}

// newAnalyticsService returns an analytics.Service on b's stores and user
// system, counting bursts in Redis on PostgreSQL+Redis and in memory
// otherwise, closed when t ends.
func newAnalyticsService(t *testing.T, b *authBundle, sealer *tracking.Sealer, pixels analytics.Pixels, opts analyticsOpts) *analytics.Service {
	t.Helper()
	store, ok := b.users.(analytics.Store)
	require.True(t, ok, "the %s store does not implement analytics.Store", b.backend)
	users, ok := b.users.(analytics.UserStats)
	require.True(t, ok, "the %s store does not implement analytics.UserStats", b.backend)
	var bursts analytics.BurstCounter = memory.NewBurstCounter()
	if b.redis != nil {
		bursts = b.redis.BurstCounter()
	}
	svc, err := analytics.NewService(analytics.Config{
		Store: store, Sealer: sealer, Tiers: b.svc, Bursts: bursts, Filters: opts.filters,
		Pixels: pixels, Auth: b.svc, Users: users, Settled: opts.settled,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, svc.Stop(context.Background())) })
	return svc
}

// recordingPixels is the ad server's pixels as the analytics service sees
// them: Fire records the URL, FireClick records it and answers
// testUpstreamLanding.
type recordingPixels struct {
	mu     sync.Mutex
	fired  []string
	clicks []string
}

func (p *recordingPixels) Fire(url string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fired = append(p.fired, url)
	return nil
}

func (p *recordingPixels) FireClick(_ context.Context, url string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clicks = append(p.clicks, url)
	return testUpstreamLanding, nil
}

// recorded returns what was fired and what was clicked.
func (p *recordingPixels) recorded() (fired, clicks []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.fired...), append([]string(nil), p.clicks...)
}

// servedAd fills owner's space with the query as the viewer of token (""
// for anonymous) and returns its one ad.
func (b *analyticsBundle) servedAd(t *testing.T, owner uuid.UUID, query, token string) servedAdJSON {
	t.Helper()
	f := b.fill(t, owner, query, token)
	require.Len(t, f.Ads, 1)
	return f.Ads[0]
}

// tracking opens a token with the bundle's sealer.
func (b *analyticsBundle) tracking(t *testing.T, token string) tracking.Payload {
	t.Helper()
	tr, err := b.sealer.Open(token)
	require.NoError(t, err)
	return tr
}

// reseal seals a copy of the tracking of token, with a fresh id, changed
// by mutate: a showing the test makes up.
func (b *analyticsBundle) reseal(t *testing.T, token string, mutate func(*tracking.Payload)) string {
	t.Helper()
	tr := b.tracking(t, token)
	tr.ID = uuid.Must(uuid.NewV7())
	mutate(&tr)
	sealed, err := b.sealer.Seal(tr)
	require.NoError(t, err)
	return sealed
}

// postEvents posts body to /events with the access token ("" for none)
// and extra headers.
func (b *analyticsBundle) postEvents(t *testing.T, token string, body any, header http.Header) reply {
	t.Helper()
	return b.send(t, request{method: http.MethodPost, path: "/events", token: token, body: body, header: header})
}

// report posts one event, expecting 200, and returns its result.
func (b *analyticsBundle) report(t *testing.T, token string, event map[string]any, header http.Header) resultJSON {
	t.Helper()
	var res resultJSON
	b.postEvents(t, token, event, header).requireStatus(t, http.StatusOK).decode(t, &res)
	return res
}

// impression is an impression event of token, at occurredAt unless zero.
func impression(token string, occurredAt time.Time) map[string]any {
	e := map[string]any{"type": "impression", "token": token}
	if !occurredAt.IsZero() {
		e["occurred_at"] = occurredAt.UTC().Format(time.RFC3339Nano)
	}
	return e
}

// click follows a served ad's click link once, without following its
// redirect.
func (b *analyticsBundle) click(t *testing.T, clickURL string) reply {
	t.Helper()
	path, ok := strings.CutPrefix(clickURL, testPublicBaseURL)
	require.True(t, ok, "click link %q is not under %s", clickURL, testPublicBaseURL)
	return b.do(t, http.MethodGet, path, "", nil)
}

// performanceReportJSON is GET /analytics/performance's answer.
type performanceReportJSON struct {
	From        time.Time            `json:"from"`
	To          time.Time            `json:"to"`
	Granularity string               `json:"granularity"`
	TimeZone    string               `json:"time_zone"`
	Rows        []performanceRowJSON `json:"rows"`
	Totals      totalsJSON           `json:"totals"`
}

// revenueReportJSON is GET /analytics/revenue's answer.
type revenueReportJSON struct {
	From        time.Time         `json:"from"`
	To          time.Time         `json:"to"`
	Granularity string            `json:"granularity"`
	TimeZone    string            `json:"time_zone"`
	Rows        []revenueRowJSON  `json:"rows"`
	Estimated   revenueRowJSON    `json:"estimated"`
	Final       *map[string]int64 `json:"final"`
}

// usersReportJSON is GET /analytics/users' answer.
type usersReportJSON struct {
	From        time.Time        `json:"from"`
	To          time.Time        `json:"to"`
	Granularity string           `json:"granularity"`
	TimeZone    string           `json:"time_zone"`
	Signups     []countJSON      `json:"signups"`
	ActiveUsers []countJSON      `json:"active_users"`
	UsersByTier map[string]int64 `json:"users_by_tier"`
	Retention   []cohortJSON     `json:"retention"`
}

// aroundNow is a report query over the hours around now, by hour.
func aroundNow(scope string) string {
	now := time.Now().UTC()
	return "?scope=" + scope + "&granularity=hour&from=" + now.Add(-time.Hour).Format(time.RFC3339) +
		"&to=" + now.Add(time.Hour).Format(time.RFC3339)
}

// performance reads GET /analytics/performance with the query, expecting 200.
func (b *analyticsBundle) performance(t *testing.T, token, query string) performanceReportJSON {
	t.Helper()
	var out performanceReportJSON
	b.do(t, http.MethodGet, "/analytics/performance"+query, token, nil).requireStatus(t, http.StatusOK).decode(t, &out)
	return out
}

// revenue reads GET /analytics/revenue with the query, expecting 200.
func (b *analyticsBundle) revenue(t *testing.T, token, query string) revenueReportJSON {
	t.Helper()
	var out revenueReportJSON
	b.do(t, http.MethodGet, "/analytics/revenue"+query, token, nil).requireStatus(t, http.StatusOK).decode(t, &out)
	return out
}
