package transport

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
)

func TestConsentAPI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *authBundle) {
		tok := b.register(t, "consent.api@example.com")
		get := func() consentResponse {
			var c consentResponse
			b.do(t, http.MethodGet, "/users/me/consent", tok.AccessToken, nil).requireStatus(t, http.StatusOK).decode(t, &c)
			return c
		}

		// Nothing recorded: nothing granted, consent never assumed.
		c := get()
		require.Nil(t, c.RecordedAt)
		require.Equal(t, map[string]bool{"analytics": false, "personalised_ads": false}, c.Purposes)
		require.Equal(t, []string{auth.DefaultConsentPolicy}, c.Policies)
		require.Empty(t, c.History)

		// Unknown purposes and versions: 422 naming the field, nothing stored.
		p := b.do(t, http.MethodPut, "/users/me/consent", tok.AccessToken, map[string]any{
			"policy_version": auth.DefaultConsentPolicy, "purposes": map[string]bool{"analytics": true, "location": true},
		}).problem(t, http.StatusUnprocessableEntity, "invalid_consent")
		require.Equal(t, []string{"#/purposes/location"}, pointers(p))
		p = b.do(t, http.MethodPut, "/users/me/consent", tok.AccessToken, map[string]any{
			"policy_version": "1999-01", "purposes": map[string]bool{"analytics": true},
		}).problem(t, http.StatusUnprocessableEntity, "invalid_consent")
		require.Equal(t, []string{"#/policy_version"}, pointers(p))
		b.do(t, http.MethodPut, "/users/me/consent", tok.AccessToken, map[string]any{
			"policy_version": auth.DefaultConsentPolicy, "purposes": map[string]bool{}, "extra": 1,
		}).requireStatus(t, http.StatusUnprocessableEntity)
		require.Empty(t, get().History)
		require.False(t, b.me(t, tok.AccessToken).Settings.PersonalizedAds)

		// Granted: recorded, the profile in step, audited.
		var set consentResponse
		b.do(t, http.MethodPut, "/users/me/consent", tok.AccessToken, map[string]any{
			"policy_version": auth.DefaultConsentPolicy, "purposes": map[string]bool{"analytics": true, "personalised_ads": true},
		}).requireStatus(t, http.StatusOK).decode(t, &set)
		require.Equal(t, map[string]bool{"analytics": true, "personalised_ads": true}, set.Purposes)
		require.NotNil(t, set.RecordedAt)
		require.Equal(t, auth.ConsentSourceAPI, set.Source)
		require.Len(t, set.History, 1)
		require.True(t, b.me(t, tok.AccessToken).Settings.PersonalizedAds)
		ev := b.lastEvent(t, auth.AuditConsentChanged)
		require.Equal(t, tok.User.ID, ev.ActorID)
		require.Equal(t, auth.DefaultConsentPolicy, ev.Details["policy_version"])

		// Sec-GPC: 1 is an opt-out of sale and sharing, recorded as such.
		b.send(t, request{method: http.MethodGet, path: "/users/me/consent", token: tok.AccessToken, header: http.Header{"Sec-GPC": {"1"}}}).
			requireStatus(t, http.StatusOK).decode(t, &c)
		require.True(t, c.DoNotSell)
		require.True(t, c.GPC)
		require.Equal(t, auth.ConsentSourceGPC, c.Source)
		require.True(t, c.Purposes["analytics"], "other choices stay")
		require.Len(t, c.History, 2)
		require.True(t, b.me(t, tok.AccessToken).Settings.DoNotSell)
		// Said again, it adds nothing.
		b.send(t, request{method: http.MethodGet, path: "/users/me/consent", token: tok.AccessToken, header: http.Header{"Sec-GPC": {"1"}}}).
			requireStatus(t, http.StatusOK).decode(t, &c)
		require.Len(t, c.History, 2)

		// A profile change of personalized_ads is in the history too.
		b.do(t, http.MethodPatch, "/users/me", tok.AccessToken, map[string]any{"settings": map[string]any{"do_not_sell": false, "personalized_ads": false}}).
			requireStatus(t, http.StatusOK)
		c = get()
		require.Len(t, c.History, 3)
		require.Equal(t, auth.ConsentSourceProfile, c.Source)
		require.False(t, c.DoNotSell)
		require.False(t, c.Purposes["personalised_ads"])
		require.True(t, c.Purposes["analytics"])
		require.Equal(t, []string{"api", "gpc", "profile"}, []string{c.History[0].Source, c.History[1].Source, c.History[2].Source})
	})
}
