package adspace_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/decisiontest"
	"github.com/adshare/adshare/decision/local"
	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/store/memory"
	"go.opentelemetry.io/otel/trace"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

// testBundle is a service on memory stores with a real user system and,
// unless a decider is given, the local engine.
type testBundle struct {
	store  *memory.Store
	auth   *auth.Service
	spaces *adspace.Service
	sealer *tracking.Sealer
	engine *local.Engine
	bus    *memory.Bus
}

type opts struct {
	decider decision.Decider
	bus     *memory.Bus
	store   *memory.Store
	funding adspace.Funding
	tracer  trace.TracerProvider
	// users, when set, reads owners and viewers instead of the store;
	// cacheTTL replaces the space cache's TTL.
	users    adspace.UserReader
	cacheTTL time.Duration
	// now replaces the service's clock.
	now func() time.Time
}

func setup(t *testing.T, o opts) *testBundle {
	t.Helper()
	b := &testBundle{store: o.store, bus: o.bus}
	if b.store == nil {
		b.store = memory.New()
	}
	if b.bus == nil {
		b.bus = memory.NewBus()
	}
	key, err := auth.GenerateSigningKey()
	require.NoError(t, err)
	keys, err := auth.NewKeySet(key)
	require.NoError(t, err)
	tokens, err := auth.NewTokens(keys, auth.TokenConfig{Issuer: "https://api.adshare.test"})
	require.NoError(t, err)
	unlimited := auth.Limit{Rate: 1000, Period: time.Second, Burst: 1000}
	b.auth, err = auth.NewService(auth.Config{
		Users: b.store, Sessions: b.store, Identities: b.store, Audit: b.store,
		Limiter: memory.NewLimiter(), Revocations: memory.NewRevocationList(), OneTime: memory.NewOneTimeStore(),
		Tokens: tokens, RefreshKey: secret, RegisterLimitPerClient: unlimited,
		AccountObservers: []auth.AccountObserver{accountObserver(func(ctx context.Context, u auth.User) error { return b.spaces.AccountCreated(ctx, u) })},
	})
	require.NoError(t, err)
	b.sealer, err = tracking.NewSealer([][]byte{secret}, nil)
	require.NoError(t, err)
	decider := o.decider
	inv, err := adspace.NewInventory(b.store)
	require.NoError(t, err)
	if decider == nil {
		b.engine, err = local.New(local.Config{Inventory: inv, Frequency: memory.NewFrequencyCounter(time.Hour)})
		require.NoError(t, err)
		decider = b.engine
	}
	var users adspace.UserReader = b.store
	if o.users != nil {
		users = o.users
	}
	b.spaces, err = adspace.NewService(adspace.Config{
		SpaceCacheTTL: o.cacheTTL,
		Spaces:        b.store, Contents: b.store, Users: users, Auth: b.auth, Audit: b.store, Tiers: b.auth.Tiers(),
		Decider: decider, Sealer: b.sealer, ViewerKeySecret: secret, AllowAnonymous: true, Broadcaster: b.bus,
		Funding: o.funding, TracerProvider: o.tracer, Now: o.now,
	})
	require.NoError(t, err)
	require.NoError(t, b.spaces.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, b.spaces.Stop(context.Background())) })
	return b
}

// accountObserver lets a test tell the service built after auth of new
// accounts (the assembly in package adshare needs no such thing: it
// builds ad spaces first).
type accountObserver func(ctx context.Context, u auth.User) error

func (f accountObserver) AccountCreated(ctx context.Context, u auth.User) error { return f(ctx, u) }

// user registers someone with a role and returns their principal.
func (b *testBundle) user(t *testing.T, email string, role auth.Role) auth.Principal {
	t.Helper()
	ctx := context.Background()
	u, pair, err := b.auth.Register(ctx, auth.Registration{Email: email, Password: "correct horse battery staple"})
	require.NoError(t, err)
	if role != auth.RoleUser {
		_, err = b.store.SetRole(ctx, u.ID, role, time.Now())
		require.NoError(t, err)
		pair, err = b.auth.Refresh(ctx, pair.RefreshToken)
		require.NoError(t, err)
	}
	p, err := b.auth.Authenticate(ctx, pair.AccessToken)
	require.NoError(t, err)
	return p
}

func draft(title string) adspace.ContentDraft {
	return adspace.ContentDraft{
		Format: "banner", Title: title, Body: "Fresh beans every week.", ClickURL: "https://shop.example.com/beans",
		ImageURL: "https://cdn.example.com/beans.png", Image: adspace.Image{MimeType: "image/png", Width: 320, Height: 50, Bytes: 20_000},
		CallToAction: "Shop now", Categories: []string{"food"}, Keywords: []string{"coffee"},
		Bid: adspace.Bid{Model: adspace.BidCPM, Micros: 2_000_000}, TotalBudgetMicros: 100_000_000,
	}
}

// approvedAd creates and approves content for a new advertiser.
func (b *testBundle) approvedAd(t *testing.T, advertiser, moderator auth.Principal, d adspace.ContentDraft) adspace.Content {
	t.Helper()
	ctx := context.Background()
	c, err := b.spaces.CreateContent(ctx, advertiser, d, true)
	require.NoError(t, err)
	c, err = b.spaces.Approve(ctx, moderator, c.ID)
	require.NoError(t, err)
	if b.engine != nil {
		require.NoError(t, b.engine.Refresh(ctx))
	}
	return c
}

func TestSettings(t *testing.T) {
	t.Parallel()
	b := setup(t, opts{})
	ctx := context.Background()
	owner := b.user(t, "owner@example.com", auth.RoleUser)

	sp, err := b.spaces.MySpace(ctx, owner)
	require.NoError(t, err, "the space was created with the user")
	require.Equal(t, adspace.DefaultSettings(), sp.Settings)

	set := sp.Settings
	set.Keywords = []string{"Coffee ", "cycling"}
	set.Formats = []string{"banner", "native"}
	set.HouseFallback = adspace.HouseOwn
	updated, err := b.spaces.UpdateSettings(ctx, owner, set, sp.Version)
	require.NoError(t, err)
	require.Equal(t, []string{"coffee", "cycling"}, updated.Settings.Keywords)
	require.Equal(t, sp.Version+1, updated.Version)

	_, err = b.spaces.UpdateSettings(ctx, owner, set, sp.Version)
	require.ErrorIs(t, err, adspace.ErrVersionConflict)

	for _, tc := range []struct {
		field  string
		mutate func(*adspace.Settings)
	}{
		{"formats", func(s *adspace.Settings) { s.Formats = []string{"hologram"} }},
		{"max_ads_per_view", func(s *adspace.Settings) { s.MaxAdsPerView = 3 }}, // the free tier allows 1
		{"allowed_categories", func(s *adspace.Settings) {
			s.AllowedCategories, s.BlockedCategories = []string{"food"}, []string{"food"}
		}},
		{"refresh_interval", func(s *adspace.Settings) { s.RefreshInterval = 10 * time.Second }},
		{"house_fallback", func(s *adspace.Settings) { s.HouseFallback = "theirs" }},
		{"blocked_advertisers", func(s *adspace.Settings) { s.BlockedAdvertisers = []string{"bad id!"} }},
	} {
		bad := updated.Settings
		tc.mutate(&bad)
		_, err := b.spaces.UpdateSettings(ctx, owner, bad, 0)
		require.ErrorIs(t, err, adspace.ErrInvalidSettings, tc.field)
		require.Contains(t, errs.As(err).Fields, tc.field)
	}
	again, err := b.spaces.MySpace(ctx, owner)
	require.NoError(t, err)
	require.Equal(t, updated, again, "refused updates change nothing")
}

func TestContentLifecycleAndModeration(t *testing.T) {
	t.Parallel()
	b := setup(t, opts{})
	ctx := context.Background()
	plain := b.user(t, "plain@example.com", auth.RoleUser)
	adv := b.user(t, "adv@example.com", auth.RoleAdvertiser)
	other := b.user(t, "other@example.com", auth.RoleAdvertiser)
	mod := b.user(t, "mod@example.com", auth.RoleModerator)

	_, err := b.spaces.CreateContent(ctx, plain, draft("Beans"), true)
	require.ErrorIs(t, err, auth.ErrForbidden)

	c, err := b.spaces.CreateContent(ctx, adv, draft("<b>Beans</b> weekly"), false)
	require.NoError(t, err)
	require.Equal(t, adspace.StatusDraft, c.Status)
	require.Equal(t, "Beans weekly", c.Title, "HTML is stripped")

	_, err = b.spaces.CreateContent(ctx, adv, draft("BEANS   weekly"), false)
	require.ErrorIs(t, err, adspace.ErrDuplicateContent)

	_, err = b.spaces.Content(ctx, other, c.ID)
	require.ErrorIs(t, err, adspace.ErrContentNotFound, "another advertiser's content is not found, not forbidden")
	_, err = b.spaces.Transition(ctx, other, c.ID, "archive")
	require.ErrorIs(t, err, adspace.ErrContentNotFound)

	_, err = b.spaces.Approve(ctx, mod, c.ID)
	require.ErrorIs(t, err, adspace.ErrInvalidTransition, "drafts are not reviewed")
	c, err = b.spaces.Transition(ctx, adv, c.ID, "submit")
	require.NoError(t, err)
	queue, err := b.spaces.ReviewQueue(ctx, mod, adspace.QueuePlace{}, 10)
	require.NoError(t, err)
	require.Len(t, queue, 1)
	_, err = b.spaces.ReviewQueue(ctx, adv, adspace.QueuePlace{}, 10)
	require.ErrorIs(t, err, auth.ErrForbidden)

	_, err = b.spaces.Reject(ctx, mod, c.ID, "   ")
	require.ErrorIs(t, err, adspace.ErrInvalidContent)
	c, err = b.spaces.Reject(ctx, mod, c.ID, "Image is blurry")
	require.NoError(t, err)
	require.Equal(t, adspace.StatusRejected, c.Status)
	require.Equal(t, "Image is blurry", c.RejectReason)

	d := draft("Beans weekly, sharper")
	c, err = b.spaces.UpdateContent(ctx, adv, c.ID, d, c.Version, true)
	require.NoError(t, err)
	require.Equal(t, adspace.StatusPendingReview, c.Status)
	require.Empty(t, c.RejectReason)
	c, err = b.spaces.Approve(ctx, mod, c.ID)
	require.NoError(t, err)
	require.Equal(t, adspace.StatusApproved, c.Status)
	require.Equal(t, mod.UserID, c.ReviewedBy)

	// Editing approved content sends it back to review: nothing unseen runs.
	c, err = b.spaces.UpdateContent(ctx, adv, c.ID, draft("Beans weekly, now with more"), c.Version, true)
	require.NoError(t, err)
	require.Equal(t, adspace.StatusPendingReview, c.Status)
	_, err = b.spaces.UpdateContent(ctx, adv, c.ID, d, c.Version-1, true)
	require.ErrorIs(t, err, adspace.ErrVersionConflict)
	c, err = b.spaces.Approve(ctx, mod, c.ID)
	require.NoError(t, err)

	c, err = b.spaces.Transition(ctx, adv, c.ID, "pause")
	require.NoError(t, err)
	_, err = b.spaces.Transition(ctx, adv, c.ID, "pause")
	require.ErrorIs(t, err, adspace.ErrInvalidTransition)
	c, err = b.spaces.Transition(ctx, adv, c.ID, "resume")
	require.NoError(t, err)
	c, err = b.spaces.Transition(ctx, adv, c.ID, "archive")
	require.NoError(t, err)
	_, err = b.spaces.UpdateContent(ctx, adv, c.ID, d, c.Version, false)
	require.ErrorIs(t, err, adspace.ErrInvalidTransition)
	_, err = b.spaces.Transition(ctx, adv, c.ID, "explode")
	require.ErrorIs(t, err, adspace.ErrInvalidTransition)

	// Moderators cannot approve their own content.
	_, err = b.store.SetRole(ctx, mod.UserID, auth.RoleModerator, time.Now())
	require.NoError(t, err)
	own, err := b.spaces.CreateContent(ctx, mod, draft("Mod's own"), true)
	require.NoError(t, err)
	_, err = b.spaces.Approve(ctx, mod, own.ID)
	require.ErrorIs(t, err, auth.ErrForbidden)

	events, err := b.store.AuditEvents(ctx, auth.AuditFilter{TargetID: c.ID.String(), Limit: 100})
	require.NoError(t, err)
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	require.Contains(t, actions, adspace.AuditContentApproved)
	require.Contains(t, actions, adspace.AuditContentRejected)
	require.Contains(t, actions, auth.AuditAccessDenied, "the other advertiser's attempts are audited")
}

// Content holds its draft whole: every field an advertiser writes is
// what the service answers and what the store keeps, on create and on
// edit (an edit replaces every field, the empty ones too).
func TestContentKeepsEveryFieldOfItsDraft(t *testing.T) {
	t.Parallel()
	b := setup(t, opts{})
	ctx := context.Background()
	adv := b.user(t, "adv@example.com", auth.RoleAdvertiser)
	start := time.Now().UTC().Add(time.Hour).Truncate(time.Microsecond)
	first := draft("Beans")
	first.DailyBudgetMicros = 10_000_000
	first.Schedule = adspace.Schedule{Start: start, End: start.Add(48 * time.Hour)}
	edit := adspace.ContentDraft{
		Format: "native", Title: "Tea", Body: "Leaves, loose.", ClickURL: "https://shop.example.com/tea",
		ImageURL: "https://cdn.example.com/tea.webp", Image: adspace.Image{MimeType: "image/webp", Width: 600, Height: 400, Bytes: 30_000},
		CallToAction: "Brew", Categories: []string{"drinks"}, Keywords: []string{"oolong", "tea"},
		Bid: adspace.Bid{Model: adspace.BidCPC, Micros: 300_000}, DailyBudgetMicros: 5_000_000, TotalBudgetMicros: 50_000_000,
		Schedule: adspace.Schedule{Start: start.Add(time.Hour), End: start.Add(72 * time.Hour)},
	}

	c, err := b.spaces.CreateContent(ctx, adv, first, false)
	require.NoError(t, err)
	require.Equal(t, first, c.ContentDraft)
	require.Equal(t, adspace.Fingerprint(first), c.Fingerprint)
	stored, err := b.spaces.Content(ctx, adv, c.ID)
	require.NoError(t, err)
	require.Equal(t, first, stored.ContentDraft)

	c, err = b.spaces.UpdateContent(ctx, adv, c.ID, edit, c.Version, false)
	require.NoError(t, err)
	require.Equal(t, edit, c.ContentDraft)
	require.Equal(t, adspace.Fingerprint(edit), c.Fingerprint)
	stored, err = b.spaces.Content(ctx, adv, c.ID)
	require.NoError(t, err)
	require.Equal(t, edit, stored.ContentDraft)
}

func TestContentLimitByTier(t *testing.T) {
	t.Parallel()
	b := setup(t, opts{})
	ctx := context.Background()
	adv := b.user(t, "many@example.com", auth.RoleAdvertiser)
	free, err := b.auth.Tiers().Get("free")
	require.NoError(t, err)
	var last adspace.Content
	for i := range free.MaxAdContents {
		last, err = b.spaces.CreateContent(ctx, adv, draft("Ad number "+string(rune('A'+i))), false)
		require.NoError(t, err)
	}
	_, err = b.spaces.CreateContent(ctx, adv, draft("One too many"), false)
	require.ErrorIs(t, err, adspace.ErrContentLimit)
	_, err = b.spaces.Transition(ctx, adv, last.ID, "archive")
	require.NoError(t, err)
	_, err = b.spaces.CreateContent(ctx, adv, draft("Room again"), false)
	require.NoError(t, err, "archived content does not count")
}

func TestFillWithTheLocalEngine(t *testing.T) {
	t.Parallel()
	b := setup(t, opts{})
	ctx := context.Background()
	owner := b.user(t, "owner@example.com", auth.RoleUser)
	viewer := b.user(t, "viewer@example.com", auth.RoleUser)
	adv := b.user(t, "adv@example.com", auth.RoleAdvertiser)
	mod := b.user(t, "mod@example.com", auth.RoleModerator)
	ad := b.approvedAd(t, adv, mod, draft("Beans"))

	fill, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID, Device: "install-1", GDPRApplies: true, GDPRConsent: true})
	require.NoError(t, err)
	require.True(t, fill.Billable)
	require.Len(t, fill.Ads, 1)
	served := fill.Ads[0]
	require.Equal(t, ad.ID.String(), served.AdID)
	require.Equal(t, "Beans", served.Creative.Title)
	require.True(t, served.Billable)
	require.Empty(t, served.Tracking.ImpressionURL, "no upstream pixels leave the server")

	tr, err := b.sealer.Open(served.Token)
	require.NoError(t, err)
	require.Equal(t, owner.UserID, tr.Owner)
	require.Equal(t, served.TrackingID, tr.ID)
	require.Equal(t, adv.UserID.String(), tr.AdvertiserID)
	require.Equal(t, int64(2_000_000), tr.PriceMicros)
	require.True(t, tr.Billable)
	require.NotEmpty(t, tr.ViewerKey)
	require.NotContains(t, tr.ViewerKey, "install-1")

	// The owner viewing their own space: never billable.
	self, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID, Viewer: &owner})
	require.NoError(t, err)
	require.False(t, self.Billable)
	for _, a := range self.Ads {
		require.False(t, a.Billable)
		tr, err := b.sealer.Open(a.Token)
		require.NoError(t, err)
		require.False(t, tr.Billable)
	}

	// A signed-in viewer without consent gets no pseudonymous key.
	seen, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID, Viewer: &viewer})
	require.NoError(t, err)
	require.Len(t, seen.Ads, 1)
	tr, err = b.sealer.Open(seen.Ads[0].Token)
	require.NoError(t, err)
	require.Empty(t, tr.ViewerKey)
	require.Equal(t, viewer.UserID, tr.Viewer)

	// The advertiser's own space never shows their own ad.
	advFill, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: adv.UserID})
	require.NoError(t, err)
	require.Empty(t, advFill.Ads)

	_, err = b.spaces.Fill(ctx, adspace.FillRequest{Owner: uuid.New()})
	require.ErrorIs(t, err, adspace.ErrSpaceNotFound)
}

func TestFillHonoursOwnerSettingsAndConsent(t *testing.T) {
	t.Parallel()
	fake := &decisiontest.Fake{Ads: []decision.Ad{
		{Source: "kevel", AdID: "1", AdvertiserID: "501", Categories: []string{"Gambling"}, Creative: decision.Creative{Format: "banner", Title: "Bet"},
			Price: decision.Price{Model: decision.CPM, Micros: 3_000_000}, Tracking: decision.Tracking{ImpressionURL: "https://e-1.adzerk.net/i.gif?e=1"}},
		{Source: "kevel", AdID: "2", AdvertiserID: "502", Categories: []string{"food"}, Creative: decision.Creative{Format: "banner", Title: "Eat"},
			Price: decision.Price{Model: decision.CPM, Micros: 2_000_000}, Tracking: decision.Tracking{ImpressionURL: "https://e-1.adzerk.net/i.gif?e=2"}},
		{Source: "kevel", AdID: "3", AdvertiserID: "503", Creative: decision.Creative{Format: "banner", Title: "Stale"},
			Price: decision.Price{Model: decision.CPM, Micros: 1_000_000}}, // no pixels: a stale copy
	}}
	b := setup(t, opts{decider: fake})
	ctx := context.Background()
	owner := b.user(t, "owner@example.com", auth.RoleUser)
	_, err := b.store.SetTier(ctx, auth.TierChange{UserID: owner.UserID, Tier: "premium", EffectiveAt: time.Now()})
	require.NoError(t, err)
	sp, err := b.spaces.MySpace(ctx, owner)
	require.NoError(t, err)
	set := sp.Settings
	set.MaxAdsPerView, set.BlockedCategories, set.BlockedAdvertisers = 3, []string{"gambling"}, []string{"502"}
	set.Keywords, set.BlockedKeywords = []string{"coffee", "casino"}, []string{"casino"}
	_, err = b.spaces.UpdateSettings(ctx, owner, set, 0)
	require.NoError(t, err)

	fill, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID, Device: "d1", GDPRApplies: true, GDPRConsent: true,
		DoNotSell: true, Keywords: []string{"Espresso"}, Properties: map[string]string{"screen": "feed"}})
	require.NoError(t, err)
	require.Len(t, fill.Ads, 1, "gambling and the blocked advertiser are filtered even if the engine returns them")
	require.Equal(t, "3", fill.Ads[0].AdID)
	require.False(t, fill.Ads[0].Billable, "an ad without pixels (a stale cache copy) never bills")

	calls := fake.Calls()
	req := calls[len(calls)-1]
	require.Empty(t, req.UserKey, "an opt-out of sale keeps the viewer key from the ad server")
	require.Equal(t, 3, req.Placements[0].Count)
	require.Equal(t, []string{"coffee", "espresso"}, req.Keywords, "blocked keywords never reach the request")
	require.Contains(t, req.Exclude.Advertisers, owner.UserID.String())
	require.Equal(t, "feed", req.Placements[0].Properties["screen"])

	for _, bad := range []adspace.FillRequest{
		{Owner: owner.UserID, Properties: map[string]string{"email": "x@example.com"}},
		{Owner: owner.UserID, Keywords: []string{strings.Repeat("k", 100)}},
		{Owner: owner.UserID, Count: 99},
		{Owner: owner.UserID, Device: "\xff"},
	} {
		_, err := b.spaces.Fill(ctx, bad)
		require.Equal(t, errs.Invalid, errs.KindOf(err), "%+v", bad)
	}
}

func TestFillFallsBackWhenTheDeciderFails(t *testing.T) {
	t.Parallel()
	fake := &decisiontest.Fake{Err: decision.ErrUnavailable}
	b := setup(t, opts{decider: fake})
	ctx := context.Background()
	owner := b.user(t, "owner@example.com", auth.RoleAdvertiser)
	mod := b.user(t, "mod@example.com", auth.RoleModerator)

	empty, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID})
	require.NoError(t, err, "a failing ad server is no ad, not an error")
	require.Empty(t, empty.Ads)

	b.approvedAd(t, owner, mod, draft("My own shop"))
	sp, err := b.spaces.MySpace(ctx, owner)
	require.NoError(t, err)
	set := sp.Settings
	set.HouseFallback = adspace.HouseOwn
	_, err = b.spaces.UpdateSettings(ctx, owner, set, 0)
	require.NoError(t, err)
	house, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID})
	require.NoError(t, err)
	require.Len(t, house.Ads, 1)
	require.True(t, house.Ads[0].House)
	require.False(t, house.Ads[0].Billable, "house ads never bill")

	fake.Err = decision.ErrInvalidRequest
	_, err = b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID})
	require.ErrorIs(t, err, decision.ErrInvalidRequest, "our own bugs surface")
}

func TestDisabledSpaceFillsNothing(t *testing.T) {
	t.Parallel()
	fake := &decisiontest.Fake{Ads: []decision.Ad{{Source: "kevel", AdvertiserID: "1", Creative: decision.Creative{Format: "banner"}}}}
	b := setup(t, opts{decider: fake})
	ctx := context.Background()
	owner := b.user(t, "owner@example.com", auth.RoleUser)
	sp, err := b.spaces.MySpace(ctx, owner)
	require.NoError(t, err)
	set := sp.Settings
	set.Enabled = false
	_, err = b.spaces.UpdateSettings(ctx, owner, set, 0)
	require.NoError(t, err)
	fill, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID})
	require.NoError(t, err)
	require.Empty(t, fill.Ads)
	require.Empty(t, fake.Calls(), "a disabled space asks no ad server")
}

// A settings change on one instance reaches fills on another at once.
func TestSettingsInvalidationAcrossInstances(t *testing.T) {
	t.Parallel()
	store, bus := memory.New(), memory.NewBus()
	fake := &decisiontest.Fake{}
	a := setup(t, opts{decider: fake, store: store, bus: bus})
	b := setup(t, opts{decider: fake, store: store, bus: bus})
	ctx := context.Background()
	owner := a.user(t, "owner@example.com", auth.RoleUser)

	// b caches the space.
	fill, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID})
	require.NoError(t, err)
	require.Equal(t, adspace.DefaultRefreshInterval, fill.Space.Settings.RefreshInterval)

	sp, err := a.spaces.MySpace(ctx, owner)
	require.NoError(t, err)
	set := sp.Settings
	set.RefreshInterval = 5 * time.Minute
	_, err = a.spaces.UpdateSettings(ctx, owner, set, 0)
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		fill, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID})
		return err == nil && fill.Space.Settings.RefreshInterval == 5*time.Minute
	}, time.Second, 5*time.Millisecond)
}

// funding is a Funding double: the advertisers it lists are funded; err,
// when set, is its answer.
type funding struct {
	mu     sync.Mutex
	funded map[uuid.UUID]bool
	err    error
	hang   bool // answers only when the caller gives up
	calls  int
}

func (f *funding) Funded(ctx context.Context, advertisers []uuid.UUID) (map[uuid.UUID]bool, error) {
	f.mu.Lock()
	f.calls++
	hang := f.hang
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := map[uuid.UUID]bool{}
	for _, a := range advertisers {
		out[a] = f.funded[a]
	}
	return out, nil
}

func TestFillServesOnlyFundedAdvertisersAds(t *testing.T) {
	t.Parallel()
	rich, broke := uuid.New(), uuid.New()
	fake := &decisiontest.Fake{Ads: []decision.Ad{
		{Source: "local", AdID: "a", AdvertiserID: broke.String(), Creative: decision.Creative{Format: "banner", Title: "Spent"},
			Price: decision.Price{Model: decision.CPM, Micros: 3_000_000}},
		{Source: "local", AdID: "b", AdvertiserID: rich.String(), Creative: decision.Creative{Format: "banner", Title: "Funded"},
			Price: decision.Price{Model: decision.CPM, Micros: 2_000_000}},
		{Source: "kevel", AdID: "k", AdvertiserID: "501", Creative: decision.Creative{Format: "banner", Title: "Kevel"},
			Price: decision.Price{Model: decision.CPM, Micros: 1_000_000}, Tracking: decision.Tracking{ImpressionURL: "https://e-1.adzerk.net/i.gif?e=1"}},
	}}
	f := &funding{funded: map[uuid.UUID]bool{rich: true}}
	b := setup(t, opts{decider: fake, funding: f})
	ctx := context.Background()
	titles := premiumOwnerFills(t, b)
	require.Equal(t, []string{"Funded", "Kevel"}, titles(), "the spent advertiser's ad is not served; Kevel's are not ours to fund")
	require.Equal(t, []string{"Funded", "Kevel"}, titles())
	require.Equal(t, 1, f.calls, "funding is cached between fills")

	f2 := &funding{err: errors.New("ledger down")}
	b2 := setup(t, opts{decider: fake, funding: f2})
	owner2 := b2.user(t, "owner2@example.com", auth.RoleUser)
	fill, err := b2.spaces.Fill(ctx, adspace.FillRequest{Owner: owner2.UserID, Device: "d1"})
	require.NoError(t, err)
	require.Len(t, fill.Ads, 1, "funding unknown: the ads are served (fail open)")
}

// When the ledger fails, fills go on with its last answer: an advertiser
// known to be out of budget stays unserved, the failing ledger is asked
// again once a second rather than by every fill, and a ledger that does
// not answer holds a fill half a second at most.
func TestFundingLookupFailureKeepsTheLastAnswer(t *testing.T) {
	t.Parallel()
	rich, broke := uuid.New(), uuid.New()
	fake := &decisiontest.Fake{Ads: []decision.Ad{
		{Source: "local", AdID: "a", AdvertiserID: broke.String(), Creative: decision.Creative{Format: "banner", Title: "Spent"},
			Price: decision.Price{Model: decision.CPM, Micros: 3_000_000}},
		{Source: "local", AdID: "b", AdvertiserID: rich.String(), Creative: decision.Creative{Format: "banner", Title: "Funded"},
			Price: decision.Price{Model: decision.CPM, Micros: 2_000_000}},
	}}
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	f := &funding{funded: map[uuid.UUID]bool{rich: true}}
	b := setup(t, opts{decider: fake, funding: f, now: func() time.Time { return time.Unix(0, clock.Load()) }})
	titles := premiumOwnerFills(t, b)
	calls := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.calls
	}
	require.Equal(t, []string{"Funded"}, titles())
	require.Equal(t, 1, calls())

	f.mu.Lock()
	f.err = errors.New("ledger down")
	f.mu.Unlock()
	advance(16 * time.Second) // past the funding TTL
	for range 5 {
		require.Equal(t, []string{"Funded"}, titles(), "the spent advertiser stays unserved on the last answer")
	}
	require.Equal(t, 2, calls(), "one lookup for the failing second, not one per fill")
	advance(1100 * time.Millisecond)
	require.Equal(t, []string{"Funded"}, titles())
	require.Equal(t, 3, calls(), "asked again a second later")

	f.mu.Lock()
	f.err, f.hang = nil, true
	f.mu.Unlock()
	advance(2 * time.Second)
	began := time.Now()
	require.Equal(t, []string{"Funded"}, titles())
	require.Less(t, time.Since(began), 2*time.Second, "a ledger that does not answer holds the fill half a second, not the request's deadline")
	require.Equal(t, 4, calls())

	f.mu.Lock()
	f.hang, f.funded[broke] = false, true // topped up
	f.mu.Unlock()
	advance(1100 * time.Millisecond)
	require.ElementsMatch(t, []string{"Spent", "Funded"}, titles(), "the ledger's next answer is used")
}

// premiumOwnerFills makes a premium owner whose space shows three ads a
// view, and returns a fill of it by one device, as the ads' titles.
func premiumOwnerFills(t *testing.T, b *testBundle) func() []string {
	t.Helper()
	ctx := context.Background()
	owner := b.user(t, "owner@example.com", auth.RoleUser)
	_, err := b.store.SetTier(ctx, auth.TierChange{UserID: owner.UserID, Tier: "premium", EffectiveAt: time.Now()})
	require.NoError(t, err)
	sp, err := b.spaces.MySpace(ctx, owner)
	require.NoError(t, err)
	set := sp.Settings
	set.MaxAdsPerView = 3
	_, err = b.spaces.UpdateSettings(ctx, owner, set, 0)
	require.NoError(t, err)
	return func() []string {
		fill, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID, Device: "d1"})
		require.NoError(t, err)
		var out []string
		for _, ad := range fill.Ads {
			out = append(out, ad.Creative.Title)
		}
		return out
	}
}

// TestViewerKeyIsTheDocumentedHMAC holds the pseudonymous viewer key to its
// derivation, the first 16 bytes of HMAC-SHA256(secret, "adshare viewer\0"
// + identity) in hex, from fills running at once: a key that changed
// between releases or mixed up viewers under load would break frequency
// caps and the ad server's profiles.
func TestViewerKeyIsTheDocumentedHMAC(t *testing.T) {
	t.Parallel()
	fake := &decisiontest.Fake{}
	b := setup(t, opts{decider: fake})
	ctx := context.Background()
	owner := b.user(t, "owner@example.com", auth.RoleUser)
	want := func(identity string) string {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("adshare viewer\x00" + identity))
		return hex.EncodeToString(m.Sum(nil)[:16])
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			_, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID, Device: fmt.Sprintf("dev-%d", i), GDPRApplies: true, GDPRConsent: true})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	keys := map[string]bool{}
	for _, c := range fake.Calls() {
		keys[c.UserKey] = true
	}
	require.Len(t, keys, 16)
	for i := range 16 {
		require.True(t, keys[want(fmt.Sprintf("device:dev-%d", i))], "device %d", i)
	}
}

// failingUsers reads users from a store until told to fail as an
// unreachable database does.
type failingUsers struct {
	adspace.UserReader
	err atomic.Pointer[error]
}

func (f *failingUsers) UserByID(ctx context.Context, id uuid.UUID) (auth.User, error) {
	if err := f.err.Load(); err != nil {
		return auth.User{}, *err
	}
	return f.UserReader.UserByID(ctx, id)
}

// A cached space past its TTL still fills while the store cannot be
// reached (stale if error); a store that answers with a domain error is
// not papered over, and neither is a space never cached.
func TestFillFromTheStaleSpaceWhileTheStoreIsDown(t *testing.T) {
	t.Parallel()
	store := memory.New()
	users := &failingUsers{UserReader: store}
	b := setup(t, opts{store: store, users: users, cacheTTL: 20 * time.Millisecond})
	ctx := context.Background()
	owner := b.user(t, "owner@example.com", auth.RoleUser)
	other := b.user(t, "other@example.com", auth.RoleUser)
	_, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID})
	require.NoError(t, err, "cached now")

	time.Sleep(30 * time.Millisecond) // past the TTL
	down := error(fmt.Errorf("dial tcp 127.0.0.1:5432: %w", syscall.ECONNREFUSED))
	users.err.Store(&down)
	_, err = b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID})
	require.NoError(t, err, "filled from the stale copy")
	_, err = b.spaces.Fill(ctx, adspace.FillRequest{Owner: other.UserID})
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "a space never cached has no copy to fall back on")

	refused := error(errs.New(errs.Forbidden, "nope", "nope"))
	users.err.Store(&refused)
	_, err = b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID})
	require.ErrorIs(t, err, refused, "an answer from the store is not a store that is down")
}

// The instance that writes an owner's settings caches what it wrote: its
// own invalidation, echoed back, leaves the copy in place, so a fill right
// after the edit needs no read and, if the store then goes away, fills with
// the new settings; another instance drops its older copy (and, the store
// away, has none to fall back on rather than the superseded one).
func TestTheWritingInstanceKeepsWhatItWrote(t *testing.T) {
	t.Parallel()
	store, bus := memory.New(), memory.NewBus()
	usersA, usersB := &failingUsers{UserReader: store}, &failingUsers{UserReader: store}
	a := setup(t, opts{store: store, bus: bus, users: usersA, cacheTTL: 20 * time.Millisecond})
	b := setup(t, opts{store: store, bus: bus, users: usersB, cacheTTL: 20 * time.Millisecond})
	ctx := context.Background()
	owner := a.user(t, "owner@example.com", auth.RoleUser)
	for _, inst := range []*testBundle{a, b} {
		_, err := inst.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID})
		require.NoError(t, err, "cached")
	}

	sp, err := a.spaces.MySpace(ctx, owner)
	require.NoError(t, err)
	set := sp.Settings
	set.RefreshInterval = 5 * time.Minute
	_, err = a.spaces.UpdateSettings(ctx, owner, set, 0)
	require.NoError(t, err)
	// b drops its copy once the invalidation reaches it.
	require.Eventually(t, func() bool {
		fill, err := b.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID})
		return err == nil && fill.Space.Settings.RefreshInterval == 5*time.Minute
	}, time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // a's echo has arrived; every copy is past its TTL

	down := error(fmt.Errorf("dial tcp 127.0.0.1:5432: %w", syscall.ECONNREFUSED))
	usersA.err.Store(&down)
	fill, err := a.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID})
	require.NoError(t, err, "the writer fills from what it wrote")
	require.Equal(t, 5*time.Minute, fill.Space.Settings.RefreshInterval)

	// A second edit, written by b: a's copy is older than the version
	// announced, so a drops it, and with the store away has nothing.
	usersA.err.Store(nil)
	sp, err = b.spaces.MySpace(ctx, owner)
	require.NoError(t, err)
	set = sp.Settings
	set.RefreshInterval = 7 * time.Minute
	_, err = b.spaces.UpdateSettings(ctx, owner, set, 0)
	require.NoError(t, err)
	usersA.err.Store(&down)
	require.Eventually(t, func() bool {
		_, err := a.spaces.Fill(ctx, adspace.FillRequest{Owner: owner.UserID})
		return errors.Is(err, syscall.ECONNREFUSED)
	}, time.Second, 5*time.Millisecond, "a superseded copy is not served, even while the store is away")
}
