package transport

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision/local"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/memory"
	redisstore "github.com/adshare/adshare/store/redis"
)

// testPublicBaseURL prefixes the tracking links of fills.
const testPublicBaseURL = "https://api.adshare.test"

var (
	testTrackingKey  = []byte("tracking-key-0123456789abcdef012")
	testViewerSecret = []byte("viewer-secret-0123456789abcdef01")
)

// spacesBundle is the API with the user and ad space systems on one
// backend, served over real HTTP: an authBundle whose API also mounts an
// adspace.Service on the same stores, filled by the local engine.
type spacesBundle struct {
	*authBundle
	spaces *adspace.Service
	engine *local.Engine
}

// adspaceStores is what the ad space system needs from a backend; the
// memory store and the PostgreSQL store implement it.
type adspaceStores interface {
	adspace.Store
	adspace.ContentStore
	adspace.UserReader
}

// forEachSpacesBackend runs fn, in parallel, on a fresh spacesBundle per
// backend.
func forEachSpacesBackend(t *testing.T, fn func(t *testing.T, b *spacesBundle)) {
	t.Helper()
	for _, backend := range []string{backendMemory, backendPostgres} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			fn(t, newSpacesBundle(t, backend))
		})
	}
}

// newSpacesBundle builds the auth bundle of backend with the ad space
// system mounted: every new account gets its space (an account observer), and
// sign-ups are not rate limited, so a test may register its cast.
func newSpacesBundle(t *testing.T, backend string) *spacesBundle {
	t.Helper()
	sb := &spacesBundle{}
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
			sb.spaces, sb.engine = newSpaceService(t, b, bus)
			cfg.AdSpaces, cfg.PublicBaseURL = sb.spaces, testPublicBaseURL
		},
	})
	return sb
}

// newSpaceService returns an adspace.Service on b's stores and user
// system, filled by the local engine (which reads the service's inventory
// through a late-bound wrapper) and publishing invalidations on bus. It is
// started, and stopped when t ends.
func newSpaceService(t *testing.T, b *authBundle, bus adspace.Broadcaster) (*adspace.Service, *local.Engine) {
	t.Helper()
	return newSpaceServiceWith(t, b, bus, nil)
}

// newSpaceServiceWith is newSpaceService with configure, when set,
// changing the service's config just before it is built (its Sealer is
// set by then, so analytics can share it).
func newSpaceServiceWith(t *testing.T, b *authBundle, bus adspace.Broadcaster, configure func(*adspace.Config)) (*adspace.Service, *local.Engine) {
	t.Helper()
	st, ok := b.users.(adspaceStores)
	require.True(t, ok, "the %s store does not implement the ad space stores", b.backend)
	sealer, err := tracking.NewSealer([][]byte{testTrackingKey}, nil)
	require.NoError(t, err)
	inv, err := adspace.NewInventory(st)
	require.NoError(t, err)
	engine, err := local.New(local.Config{Inventory: inv, Frequency: memory.NewFrequencyCounter(time.Hour)})
	require.NoError(t, err)
	cfg := adspace.Config{
		Spaces: st, Contents: st, Users: st, Auth: b.svc, Audit: b.audit, Tiers: b.svc.Tiers(),
		Decider: engine, Sealer: sealer, ViewerKeySecret: testViewerSecret, AllowAnonymous: true,
		Broadcaster: bus, DecisionTimeout: 5 * time.Second,
	}
	if configure != nil {
		configure(&cfg)
	}
	spaces, err := adspace.NewService(cfg)
	require.NoError(t, err)
	require.NoError(t, spaces.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, spaces.Stop(context.Background())) })
	return spaces, engine
}

// accountObserver lets a test tell a service built after auth of new
// accounts.
type accountObserver func(ctx context.Context, u auth.User) error

func (f accountObserver) AccountCreated(ctx context.Context, u auth.User) error { return f(ctx, u) }

// secondInstance serves a second API over the same PostgreSQL schema and
// Redis prefix as b, with its own adspace.Service, engine and Redis
// client and bus: another instance of the fleet. The user system is
// shared (it keeps nothing that matters here in memory).
func (b *spacesBundle) secondInstance(t *testing.T) *spacesBundle {
	t.Helper()
	require.NotNil(t, b.redis, "a second instance needs the PostgreSQL+Redis backend")
	redisURL, _ := testenv.Redis(t) // the server b uses; the fresh prefix goes unused
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := redisstore.Open(ctx, redisURL, &redisstore.Config{Prefix: b.redis.Prefix()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })

	other := *b.authBundle
	next := &spacesBundle{authBundle: &other}
	next.redis = rc
	next.spaces, next.engine = newSpaceService(t, &other, rc.Bus(nil))
	h, err := New(Config{Auth: b.svc, AdSpaces: next.spaces, PublicBaseURL: testPublicBaseURL})
	require.NoError(t, err)
	next.srv = httptest.NewServer(withTestPeer(h))
	t.Cleanup(next.srv.Close)
	next.client = next.srv.Client()
	next.client.Timeout = 30 * time.Second
	return next
}

// role registers email and gives the account role (in the store, then by
// a refresh, as an operator would).
func (b *spacesBundle) role(t *testing.T, email string, role auth.Role) tokenJSON {
	t.Helper()
	tok := b.register(t, email)
	if role == auth.RoleUser {
		return tok
	}
	return b.promote(t, tok, role)
}

// settings reads the caller's space and its ETag.
func (b *spacesBundle) settings(t *testing.T, token string) (spaceJSON, string) {
	t.Helper()
	r := b.do(t, http.MethodGet, "/ad-space/settings", token, nil).requireStatus(t, http.StatusOK)
	var sp spaceJSON
	r.decode(t, &sp)
	require.Equal(t, etag(sp.Version), r.header.Get("ETag"))
	return sp, r.header.Get("ETag")
}

// putSettings replaces the caller's settings, expecting 200.
func (b *spacesBundle) putSettings(t *testing.T, token string, set map[string]any) spaceJSON {
	t.Helper()
	r := b.do(t, http.MethodPut, "/ad-space/settings", token, set).requireStatus(t, http.StatusOK)
	var sp spaceJSON
	r.decode(t, &sp)
	require.Equal(t, etag(sp.Version), r.header.Get("ETag"))
	return sp
}

// defaultSettingsBody is a new space's settings as a PUT body.
func defaultSettingsBody() map[string]any {
	return map[string]any{
		"enabled": true, "refresh_interval_seconds": 60, "max_ads_per_view": 1, "formats": []string{"banner"},
		"keywords": []string{}, "blocked_keywords": []string{}, "allowed_categories": []string{},
		"blocked_categories": []string{}, "blocked_advertisers": []string{}, "house_fallback": "none",
	}
}

// contentBody is valid content as a POST body; title makes it unique.
func contentBody(title string) map[string]any {
	return map[string]any{
		"format": "banner", "title": title, "body": "Fresh beans every week.",
		"click_url":      "https://shop.example.com/beans?ref=" + url.QueryEscape(strings.ToLower(title)),
		"image_url":      "https://cdn.example.com/beans.png",
		"image":          map[string]any{"mime_type": "image/png", "width": 320, "height": 50, "bytes": 20_000},
		"call_to_action": "Shop now", "categories": []string{"food"}, "keywords": []string{"coffee"},
		"bid":                 map[string]any{"model": "cpm", "micros": 2_000_000},
		"daily_budget_micros": 10_000_000, "total_budget_micros": 100_000_000,
	}
}

// with returns a copy of body with the fields set (a nil value deletes).
func with(body map[string]any, fields map[string]any) map[string]any {
	out := make(map[string]any, len(body)+len(fields))
	for k, v := range body {
		out[k] = v
	}
	for k, v := range fields {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// createContent posts content, expecting 201 with its Location and ETag.
func (b *spacesBundle) createContent(t *testing.T, token string, body map[string]any) contentJSON {
	t.Helper()
	r := b.do(t, http.MethodPost, "/ad-space/content", token, body).requireStatus(t, http.StatusCreated)
	var c contentJSON
	r.decode(t, &c)
	require.Equal(t, "/ad-space/content/"+c.ID.String(), r.header.Get("Location"))
	require.Equal(t, etag(c.Version), r.header.Get("ETag"))
	return c
}

// contentAnswer sends a request that answers content with status 200.
func (b *spacesBundle) contentAnswer(t *testing.T, method, path, token string, body any) contentJSON {
	t.Helper()
	var c contentJSON
	b.do(t, method, path, token, body).requireStatus(t, http.StatusOK).decode(t, &c)
	return c
}

// listContent lists the caller's content with the query (e.g. "?status=draft").
func (b *spacesBundle) listContent(t *testing.T, token, query string) []contentJSON {
	t.Helper()
	var out struct {
		Contents []contentJSON `json:"contents"`
	}
	b.do(t, http.MethodGet, "/ad-space/content"+query, token, nil).requireStatus(t, http.StatusOK).decode(t, &out)
	return out.Contents
}

// approvedContent creates content as advertiser, submitted, approves it as
// moderator and refreshes the engine so that fills see it.
func (b *spacesBundle) approvedContent(t *testing.T, advertiser, moderator string, body map[string]any) contentJSON {
	t.Helper()
	c := b.createContent(t, advertiser, with(body, map[string]any{"submit": true}))
	require.Equal(t, string(adspace.StatusPendingReview), c.Status)
	c = b.contentAnswer(t, http.MethodPost, "/moderation/content/"+c.ID.String()+"/approve", moderator, nil)
	require.Equal(t, string(adspace.StatusApproved), c.Status)
	b.refreshEngine(t)
	return c
}

// refreshEngine makes the engine reread the inventory now.
func (b *spacesBundle) refreshEngine(t *testing.T) {
	t.Helper()
	require.NoError(t, b.engine.Refresh(t.Context()))
}

// fill fills owner's space with the query (e.g. "?count=1") as the
// viewer of token ("" for anonymous), expecting 200.
func (b *spacesBundle) fill(t *testing.T, owner uuid.UUID, query, token string) fillJSON {
	t.Helper()
	var f fillJSON
	b.do(t, http.MethodGet, "/ad-space/"+owner.String()+query, token, nil).requireStatus(t, http.StatusOK).decode(t, &f)
	require.Equal(t, owner, f.OwnerID)
	return f
}

// auditEvents reads GET /audit-events with the query as an admin.
func (b *spacesBundle) auditEvents(t *testing.T, admin, query string) []auditEventJSON {
	t.Helper()
	var out struct {
		Events       []auditEventJSON `json:"events"`
		NextBeforeID int64            `json:"next_before_id"`
	}
	b.do(t, http.MethodGet, "/audit-events"+query, admin, nil).requireStatus(t, http.StatusOK).decode(t, &out)
	return out.Events
}
