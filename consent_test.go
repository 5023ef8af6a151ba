package adshare_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision/kevel"
	"github.com/adshare/adshare/decision/kevel/kevelfake"
	"github.com/adshare/adshare/store/memory"
)

// Consent decides what reaches Kevel: no user key and gdpr false without
// it, the key and gdpr true with it, none again after Sec-GPC; and Kevel's
// UserDB hears of the consent and of the opt-out (the fake records both).
// Tokens of a viewer without analytics consent say so.
func TestConsentReachesKevel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const apiKey = "kevel-test-key"
	fake := kevelfake.New(kevelfake.Config{NetworkID: 23, SiteIDs: []int64{1}, APIKey: apiKey, Ads: []kevelfake.Ad{{
		AdType: 4, SiteID: 1, Title: "Ride further", ImageURL: "https://cdn.example.com/bike.png", Width: 320, Height: 50,
		Price: "2.50", RateType: 2, ClickThroughURL: "https://bikes.example.com/",
	}}})
	require.NoError(t, fake.Start(ctx))
	t.Cleanup(func() { _ = fake.Stop(context.Background()) })
	client, err := kevel.New(kevel.Config{NetworkID: 23, SiteID: 1, BaseURL: fake.URL(), APIKey: kevel.Secret(apiKey), RatePerSecond: -1})
	require.NoError(t, err)
	keys := testKeys(t)
	cfg := &adshare.Config{Store: memory.New(), Shared: memory.NewShared(), Decider: client, Keys: keys}
	cfg.AdSpaces.UserDB = client.UserDB()
	app, err := adshare.New(cfg)
	require.NoError(t, err)
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(srv.Close)
	sealer, err := tracking.NewSealer(keys.Tracking, nil)
	require.NoError(t, err)

	owner, _, err := app.Auth().Register(ctx, auth.Registration{Email: "consent.owner@example.com", Password: "a long enough passphrase"})
	require.NoError(t, err)
	viewer, tp, err := app.Auth().Register(ctx, auth.Registration{Email: "consent.viewer@example.com", Password: "a long enough passphrase"})
	require.NoError(t, err)
	userKey := app.AdSpaces().UserKey(viewer.ID)

	// fill fills owner's space as the viewer and returns what Kevel got
	// and the first ad's token.
	type kevelBody struct {
		User    *struct{ Key string } `json:"user"`
		Consent *struct{ GDPR *bool } `json:"consent"`
	}
	fill := func(header http.Header) (kevelBody, tracking.Payload) {
		t.Helper()
		before := len(fake.DecisionRequests())
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/ad-space/"+owner.ID.String(), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tp.AccessToken)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var out struct {
			Ads []struct {
				Tracking struct{ Token string } `json:"tracking"`
			} `json:"ads"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		require.NotEmpty(t, out.Ads)
		p, err := sealer.Open(out.Ads[0].Tracking.Token)
		require.NoError(t, err)
		recs := fake.DecisionRequests()
		require.Len(t, recs, before+1)
		var kb kevelBody
		require.NoError(t, json.Unmarshal(recs[len(recs)-1].Body, &kb))
		return kb, p
	}

	// No consent: no user key, gdpr false, no per-viewer analytics.
	kb, p := fill(nil)
	require.Nil(t, kb.User)
	require.NotNil(t, kb.Consent)
	require.NotNil(t, kb.Consent.GDPR)
	require.False(t, *kb.Consent.GDPR)
	require.Empty(t, p.ViewerKey)
	require.True(t, p.NoViewerAnalytics)

	// Consent to both: the key reaches Kevel with gdpr true, UserDB has it.
	principal, err := app.Auth().Authenticate(ctx, tp.AccessToken)
	require.NoError(t, err)
	_, err = app.Auth().SetConsent(ctx, principal, auth.ConsentChange{PolicyVersion: auth.DefaultConsentPolicy,
		Purposes: map[string]bool{"personalised_ads": true, "analytics": true}})
	require.NoError(t, err)
	kb, p = fill(nil)
	require.NotNil(t, kb.User)
	require.Equal(t, userKey, kb.User.Key)
	require.True(t, *kb.Consent.GDPR)
	require.Equal(t, userKey, p.ViewerKey)
	require.False(t, p.NoViewerAnalytics)
	rec, ok := fake.User(userKey)
	require.True(t, ok, "UserDB was told of the consent")
	require.Equal(t, map[string]any{"gdpr": true}, rec["consent"])
	require.Equal(t, false, rec["optOut"])

	// Sec-GPC: 1 on a fill: no key, recorded, and UserDB opted out.
	kb, p = fill(http.Header{"Sec-Gpc": {"1"}})
	require.Nil(t, kb.User)
	require.Empty(t, p.ViewerKey)
	hist, err := app.Auth().ConsentHistory(ctx, principal, viewer.ID)
	require.NoError(t, err)
	require.Len(t, hist, 2)
	require.True(t, hist[1].GPC)
	require.Equal(t, auth.ConsentSourceGPC, hist[1].Source)
	require.Eventually(t, func() bool {
		rec, _ := fake.User(userKey)
		return rec["optOut"] == true
	}, 5*time.Second, 10*time.Millisecond, "UserDB was told of the opt-out")
	// And it holds without the signal (another device of theirs).
	kb, _ = fill(nil)
	require.Nil(t, kb.User)
	_ = uuid.Nil
}
