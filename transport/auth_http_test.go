package transport

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
)

// Scenario 1: register, sign in, read the account, refresh, sign out; and
// sign out with only a refresh token.
func TestAuthLifecycleOverHTTP(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *authBundle) {
		reg := b.do(t, http.MethodPost, "/auth/register", "", map[string]string{
			"email": " Ada@Example.com ", "password": testPassword, "display_name": "  Ada  Lovelace ",
		})
		require.Equal(t, "/users/me", reg.header.Get("Location"))
		registered := reg.tokens(t, http.StatusCreated)
		require.True(t, registered.Created)
		require.Equal(t, "ada@example.com", registered.User.Email)
		require.Equal(t, "Ada Lovelace", registered.User.DisplayName)
		require.Equal(t, auth.RoleUser, registered.User.Role)
		require.Equal(t, "free", registered.User.Tier)
		require.Equal(t, []auth.Permission{auth.PermAdSpace, auth.PermProfile}, registered.User.Permissions)

		login := b.do(t, http.MethodPost, "/auth/login", "", map[string]string{"email": "ADA@example.com", "password": testPassword}).
			tokens(t, http.StatusOK)
		require.False(t, login.Created)
		require.Equal(t, registered.User.ID, login.User.ID)
		require.NotEqual(t, registered.SessionID, login.SessionID, "each sign-in is a new session")

		me := b.me(t, login.AccessToken)
		require.Equal(t, registered.User.ID, me.ID)
		require.Equal(t, "ada@example.com", me.Email)

		b.clock.Advance(time.Minute)
		refreshed := b.refresh(t, login.RefreshToken)
		require.Nil(t, refreshed.User, "a refresh carries no user")
		require.Equal(t, login.SessionID, refreshed.SessionID)
		require.NotEqual(t, login.RefreshToken, refreshed.RefreshToken)
		require.NotEqual(t, login.AccessToken, refreshed.AccessToken)
		b.me(t, refreshed.AccessToken)

		b.do(t, http.MethodPost, "/auth/logout", refreshed.AccessToken, nil).requireStatus(t, http.StatusNoContent)
		b.do(t, http.MethodGet, "/users/me", refreshed.AccessToken, nil).problem(t, http.StatusUnauthorized, "token_revoked")
		b.do(t, http.MethodGet, "/users/me", login.AccessToken, nil).problem(t, http.StatusUnauthorized, "token_revoked")
		b.do(t, http.MethodPost, "/auth/refresh", "", map[string]string{"refresh_token": refreshed.RefreshToken}).
			problem(t, http.StatusUnauthorized, "invalid_grant")

		// The registration's session is untouched; a client whose access
		// token is gone signs out with the refresh token alone.
		b.me(t, registered.AccessToken)
		b.do(t, http.MethodPost, "/auth/logout", "", map[string]string{"refresh_token": registered.RefreshToken}).
			requireStatus(t, http.StatusNoContent)
		b.do(t, http.MethodGet, "/users/me", registered.AccessToken, nil).problem(t, http.StatusUnauthorized, "token_revoked")
		b.do(t, http.MethodPost, "/auth/refresh", "", map[string]string{"refresh_token": registered.RefreshToken}).
			problem(t, http.StatusUnauthorized, "invalid_grant")

		// Logout needs one or the other, and a bad one is refused.
		b.do(t, http.MethodPost, "/auth/logout", "", nil).problem(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
		b.do(t, http.MethodPost, "/auth/logout", "", map[string]string{}).problem(t, http.StatusUnprocessableEntity, "invalid_body")
		b.do(t, http.MethodPost, "/auth/logout", "", map[string]string{"refresh_token": "nope"}).
			problem(t, http.StatusUnauthorized, "invalid_grant")
		b.do(t, http.MethodPost, "/auth/logout", "not.a.token", nil).problem(t, http.StatusUnauthorized, "invalid_token")
		b.do(t, http.MethodGet, "/users/me", "", nil).problem(t, http.StatusUnauthorized, "invalid_token")

		var actions []string
		for _, e := range b.events(t, auth.AuditFilter{ActorID: registered.User.ID}) {
			actions = append(actions, e.Action)
		}
		slices.Reverse(actions)
		require.Equal(t, []string{
			auth.AuditRegister, auth.AuditLoginSuccess, auth.AuditRefresh, auth.AuditLogout,
			auth.AuditTokenRejected, auth.AuditTokenRejected, auth.AuditRefreshFailure,
			auth.AuditLogout, auth.AuditTokenRejected, auth.AuditRefreshFailure,
		}, actions)
	})
}

// Scenario 2: a user's sessions.
func TestSessionsOverHTTP(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *authBundle) {
		first := b.register(t, "grace@example.com")
		second := b.login(t, "grace@example.com")
		third := b.login(t, "grace@example.com")
		other := b.register(t, "mallory@example.com")

		list := func(token string) []sessionJSON {
			t.Helper()
			var body struct {
				Sessions []sessionJSON `json:"sessions"`
			}
			b.do(t, http.MethodGet, "/auth/sessions", token, nil).requireStatus(t, http.StatusOK).decode(t, &body)
			return body.Sessions
		}
		ids := func(ss []sessionJSON) []uuid.UUID {
			out := make([]uuid.UUID, 0, len(ss))
			for _, s := range ss {
				out = append(out, s.ID)
			}
			return out
		}

		sessions := list(third.AccessToken)
		require.ElementsMatch(t, []uuid.UUID{first.SessionID, second.SessionID, third.SessionID}, ids(sessions))
		for _, s := range sessions {
			require.Equal(t, s.ID == third.SessionID, s.Current, "only the caller's session is current")
			require.Equal(t, "password", s.Method)
			require.Equal(t, "127.0.0.1", s.IP)
			require.Equal(t, "Go-http-client/1.1", s.UserAgent)
			require.True(t, s.ExpiresAt.After(s.CreatedAt))
		}
		for _, s := range list(first.AccessToken) {
			require.Equal(t, s.ID == first.SessionID, s.Current)
		}

		// Another user's session id is not found, and stays alive.
		b.do(t, http.MethodDelete, "/auth/sessions/"+second.SessionID.String(), other.AccessToken, nil).
			problem(t, http.StatusNotFound, "session_not_found")
		b.me(t, second.AccessToken)
		denied := b.lastEvent(t, auth.AuditAccessDenied)
		require.Equal(t, other.User.ID, denied.ActorID)
		require.Equal(t, second.SessionID.String(), denied.TargetID)
		require.Equal(t, "not_owner", denied.Reason)
		b.do(t, http.MethodDelete, "/auth/sessions/"+uuid.NewString(), other.AccessToken, nil).
			problem(t, http.StatusNotFound, "session_not_found")
		b.do(t, http.MethodDelete, "/auth/sessions/not-a-uuid", other.AccessToken, nil).
			problem(t, http.StatusNotFound, "session_not_found")

		// Revoke one by id.
		b.do(t, http.MethodDelete, "/auth/sessions/"+first.SessionID.String(), third.AccessToken, nil).
			requireStatus(t, http.StatusNoContent)
		b.do(t, http.MethodGet, "/users/me", first.AccessToken, nil).problem(t, http.StatusUnauthorized, "token_revoked")
		b.do(t, http.MethodPost, "/auth/refresh", "", map[string]string{"refresh_token": first.RefreshToken}).
			problem(t, http.StatusUnauthorized, "invalid_grant")
		require.ElementsMatch(t, []uuid.UUID{second.SessionID, third.SessionID}, ids(list(third.AccessToken)))

		// Revoke all but the current one.
		b.do(t, http.MethodDelete, "/auth/sessions?keep_current=maybe", third.AccessToken, nil).
			problem(t, http.StatusUnprocessableEntity, "invalid_query")
		var revoked struct {
			Revoked int `json:"revoked"`
		}
		b.do(t, http.MethodDelete, "/auth/sessions?keep_current=true", third.AccessToken, nil).
			requireStatus(t, http.StatusOK).decode(t, &revoked)
		require.Equal(t, 1, revoked.Revoked)
		b.do(t, http.MethodGet, "/users/me", second.AccessToken, nil).problem(t, http.StatusUnauthorized, "token_revoked")
		b.me(t, third.AccessToken)
		require.Equal(t, []uuid.UUID{third.SessionID}, ids(list(third.AccessToken)))
		require.Len(t, list(other.AccessToken), 1, "the other user's sessions are untouched")

		// And then all, the current one included.
		b.do(t, http.MethodDelete, "/auth/sessions", third.AccessToken, nil).requireStatus(t, http.StatusOK).decode(t, &revoked)
		require.Equal(t, 1, revoked.Revoked)
		b.do(t, http.MethodGet, "/auth/sessions", third.AccessToken, nil).problem(t, http.StatusUnauthorized, "token_revoked")
	})
}

// Scenario 3: PATCH /users/me.
func TestPatchMeOverHTTP(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *authBundle) {
		tok := b.register(t, "lin@example.com")
		require.Equal(t, "system", tok.User.Preferences.Theme)
		require.Equal(t, "USD", tok.User.Settings.PayoutCurrency)

		var patched userJSON
		b.do(t, http.MethodPatch, "/users/me", tok.AccessToken, map[string]any{
			"display_name": "  Lin   Yu ",
			"preferences": map[string]any{
				"locale": "pt-br", "time_zone": "Europe/Berlin", "theme": "dark",
				"notifications": map[string]any{"push": true, "weekly_report": true, "email": false},
			},
			"settings": map[string]any{"personalized_ads": true, "payout_currency": "eur"},
		}).requireStatus(t, http.StatusOK).decode(t, &patched)
		require.Equal(t, "Lin Yu", patched.DisplayName)
		require.Equal(t, auth.Preferences{Locale: "pt-BR", TimeZone: "Europe/Berlin", Theme: "dark",
			Notifications: auth.Notifications{Email: false, Push: true, WeeklyReport: true, Payouts: true}}, patched.Preferences)
		require.Equal(t, auth.Settings{PersonalizedAds: true, DoNotSell: false, PayoutCurrency: "EUR"}, patched.Settings)

		// Merge-patch: absent and null fields stay as they are.
		b.send(t, request{method: http.MethodPatch, path: "/users/me", token: tok.AccessToken,
			header: http.Header{"Content-Type": {"application/merge-patch+json"}},
			body:   `{"display_name":null,"preferences":{"theme":"light","notifications":{"payouts":false}},"settings":{"do_not_sell":true}}`,
		}).requireStatus(t, http.StatusOK).decode(t, &patched)
		require.Equal(t, "Lin Yu", patched.DisplayName)
		require.Equal(t, "light", patched.Preferences.Theme)
		require.Equal(t, "Europe/Berlin", patched.Preferences.TimeZone)
		require.Equal(t, auth.Notifications{Push: true, WeeklyReport: true}, patched.Preferences.Notifications)
		require.Equal(t, auth.Settings{PersonalizedAds: true, DoNotSell: true, PayoutCurrency: "EUR"}, patched.Settings)
		want := b.me(t, tok.AccessToken)
		require.Equal(t, patched, want)

		tests := []struct {
			description string
			body        string
			wantCode    string
			wantPointer string
		}{
			{"unknown time zone", `{"preferences":{"time_zone":"Mars/Olympus_Mons"}}`, "invalid_profile", "#/preferences/time_zone"},
			{"path in the time zone", `{"preferences":{"time_zone":"../../etc/passwd"}}`, "invalid_profile", "#/preferences/time_zone"},
			{"Local is not a zone", `{"preferences":{"time_zone":"Local"}}`, "invalid_profile", "#/preferences/time_zone"},
			{"unknown currency", `{"settings":{"payout_currency":"BTC"}}`, "invalid_profile", "#/settings/payout_currency"},
			{"empty currency", `{"settings":{"payout_currency":""}}`, "invalid_profile", "#/settings/payout_currency"},
			{"unknown theme", `{"preferences":{"theme":"neon"}}`, "invalid_profile", "#/preferences/theme"},
			{"bad locale", `{"preferences":{"locale":"not a locale!"}}`, "invalid_profile", "#/preferences/locale"},
			{"display name too long", `{"display_name":"` + strings.Repeat("x", 65) + `"}`, "invalid_profile", "#/display_name"},
			{"display name with bidi override", `{"display_name":"evil\u202egnp.exe"}`, "invalid_profile", "#/display_name"},
			{"display name with a control character", `{"display_name":"a\u0007b"}`, "invalid_profile", "#/display_name"},
			{"wrong type", `{"preferences":{"notifications":{"push":"yes"}}}`, "invalid_body", "#/preferences/notifications/push"},
			{"object expected", `{"settings":"EUR"}`, "invalid_body", "#/settings"},
			{"unknown top-level field", `{"role":"admin"}`, "invalid_body", "#/role"},
			{"unknown nested field", `{"preferences":{"colour":"red"}}`, "invalid_body", "#/preferences/colour"},
			{"unknown deeply nested field", `{"preferences":{"notifications":{"sms":true}}}`, "invalid_body", "#/preferences/notifications/sms"},
			{"one good, one bad field", `{"display_name":"Changed","settings":{"payout_currency":"XXX"}}`, "invalid_profile", "#/settings/payout_currency"},
		}
		for _, tt := range tests {
			p := b.send(t, request{method: http.MethodPatch, path: "/users/me", token: tok.AccessToken, body: tt.body}).
				problem(t, http.StatusUnprocessableEntity, tt.wantCode)
			require.Equal(t, []string{tt.wantPointer}, pointers(p), tt.description)
		}
		p := b.send(t, request{method: http.MethodPatch, path: "/users/me", token: tok.AccessToken,
			body: `{"preferences":{"time_zone":"Nowhere/Special","theme":"neon"},"settings":{"payout_currency":"BTC"}}`}).
			problem(t, http.StatusUnprocessableEntity, "invalid_profile")
		require.Equal(t, []string{"#/preferences/theme", "#/preferences/time_zone", "#/settings/payout_currency"}, pointers(p),
			"every bad field is reported at once")
		b.send(t, request{method: http.MethodPatch, path: "/users/me", token: tok.AccessToken, body: `{"display_name":"x"}`,
			header: http.Header{"Content-Type": {"text/plain"}}}).problem(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
		b.send(t, request{method: http.MethodPatch, path: "/users/me", body: `{"display_name":"x"}`}).
			problem(t, http.StatusUnauthorized, "invalid_token")

		require.Equal(t, want, b.me(t, tok.AccessToken), "failed patches change nothing")
		require.Len(t, b.events(t, auth.AuditFilter{Action: auth.AuditProfileUpdated}), 2)
	})
}

// auditPage is the body of GET /audit-events.
type auditPage struct {
	Events       []auditEventJSON `json:"events"`
	NextBeforeID *int64           `json:"next_before_id"`
}

// A user becomes an advertiser themselves.
func TestAUserBecomesAnAdvertiserByAcceptingTheTerms(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *authBundle) {
		user := b.register(t, "maker@example.com")
		userID := user.User.ID.String()
		require.NotContains(t, b.me(t, user.AccessToken).Permissions, auth.PermContentCreate)

		// Other terms than the ones in force, or none: 422, nothing changes.
		p := b.do(t, http.MethodPost, "/users/me/advertiser", user.AccessToken, map[string]string{"terms_version": "2020-01-01"}).
			problem(t, http.StatusUnprocessableEntity, "invalid_terms_version")
		require.Equal(t, []string{"#/terms_version"}, pointers(p))
		require.Contains(t, p.Errors[0].Detail, auth.DefaultAdvertiserTerms, "the answer names the terms in force")
		b.do(t, http.MethodPost, "/users/me/advertiser", user.AccessToken, map[string]string{}).
			problem(t, http.StatusUnprocessableEntity, "invalid_body")
		b.do(t, http.MethodPost, "/users/me/advertiser", "", map[string]string{"terms_version": auth.DefaultAdvertiserTerms}).
			problem(t, http.StatusUnauthorized, "invalid_token")
		require.Equal(t, auth.RoleUser, b.me(t, user.AccessToken).Role)

		b.clock.Advance(2 * time.Second) // token times have one-second resolution
		var got userJSON
		b.do(t, http.MethodPost, "/users/me/advertiser", user.AccessToken, map[string]string{"terms_version": auth.DefaultAdvertiserTerms}).
			requireStatus(t, http.StatusOK).decode(t, &got)
		require.Equal(t, auth.RoleAdvertiser, got.Role)
		require.Contains(t, got.Permissions, auth.PermContentCreate)
		b.do(t, http.MethodGet, "/users/me", user.AccessToken, nil).problem(t, http.StatusUnauthorized, "token_revoked")
		refreshed := b.refresh(t, user.RefreshToken)
		require.Equal(t, auth.RoleAdvertiser, b.me(t, refreshed.AccessToken).Role)

		// Accepting again keeps the role; an admin's acceptance keeps theirs.
		b.do(t, http.MethodPost, "/users/me/advertiser", refreshed.AccessToken, map[string]string{"terms_version": auth.DefaultAdvertiserTerms}).
			requireStatus(t, http.StatusOK).decode(t, &got)
		require.Equal(t, auth.RoleAdvertiser, got.Role)
		admin := b.promote(t, b.register(t, "boss@example.com"), auth.RoleAdmin)
		b.do(t, http.MethodPost, "/users/me/advertiser", admin.AccessToken, map[string]string{"terms_version": auth.DefaultAdvertiserTerms}).
			requireStatus(t, http.StatusOK).decode(t, &got)
		require.Equal(t, auth.RoleAdmin, got.Role)

		accepted := b.events(t, auth.AuditFilter{Action: auth.AuditAdvertiserTermsAccepted})
		require.Len(t, accepted, 1, "the acceptance is audited once")
		require.Equal(t, userID, accepted[0].TargetID)
		require.Equal(t, auth.DefaultAdvertiserTerms, accepted[0].Details["terms_version"])
	})
}

// Scenario 4: roles and permissions.
func TestRolesAndPermissionsOverHTTP(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *authBundle) {
		admin := b.register(t, "root@example.com")
		admin = b.promote(t, admin, auth.RoleAdmin)
		require.Equal(t, auth.RoleAdmin, b.me(t, admin.AccessToken).Role)
		registered := b.register(t, "user@example.com")
		userID, adminID := registered.User.ID.String(), admin.User.ID.String()
		b.do(t, http.MethodPost, "/auth/login", "", map[string]string{"email": "user@example.com", "password": "wrong password!"}).
			problem(t, http.StatusUnauthorized, "invalid_credentials")
		user := b.login(t, "user@example.com")

		// A plain user: 403 on admin endpoints, 404 for others' accounts.
		for _, r := range []request{
			{method: http.MethodPut, path: "/users/" + adminID + "/tier", body: map[string]string{"tier": "premium"}},
			{method: http.MethodPut, path: "/users/" + userID + "/tier", body: map[string]string{"tier": "premium"}},
			{method: http.MethodPut, path: "/users/" + adminID + "/role", body: map[string]string{"role": "user"}},
			{method: http.MethodPut, path: "/users/" + userID + "/role", body: map[string]string{"role": "admin"}},
			{method: http.MethodGet, path: "/audit-events"},
			{method: http.MethodDelete, path: "/users/" + adminID + "/sessions"},
		} {
			r.token = user.AccessToken
			b.send(t, r).problem(t, http.StatusForbidden, "forbidden")
		}
		for _, id := range []string{adminID, uuid.NewString(), "not-a-uuid"} {
			b.do(t, http.MethodGet, "/users/"+id, user.AccessToken, nil).problem(t, http.StatusNotFound, "user_not_found")
		}
		var got userJSON
		b.do(t, http.MethodGet, "/users/"+userID, user.AccessToken, nil).requireStatus(t, http.StatusOK).decode(t, &got)
		require.Equal(t, user.User.ID, got.ID)
		b.me(t, admin.AccessToken) // the admin's sessions survived

		// The admin can.
		b.do(t, http.MethodGet, "/users/"+userID, admin.AccessToken, nil).requireStatus(t, http.StatusOK).decode(t, &got)
		require.Equal(t, "user@example.com", got.Email)
		b.do(t, http.MethodPut, "/users/"+userID+"/tier", admin.AccessToken, map[string]string{"tier": "pro"}).
			requireStatus(t, http.StatusOK).decode(t, &got)
		require.Equal(t, "pro", got.Tier)
		p := b.do(t, http.MethodPut, "/users/"+userID+"/tier", admin.AccessToken, map[string]string{"tier": "gold"}).
			problem(t, http.StatusUnprocessableEntity, "invalid_tier")
		require.Equal(t, []string{"#/tier"}, pointers(p))
		p = b.do(t, http.MethodPut, "/users/"+userID+"/role", admin.AccessToken, map[string]string{"role": "root"}).
			problem(t, http.StatusUnprocessableEntity, "invalid_body")
		require.Equal(t, []string{"#/role"}, pointers(p))
		b.do(t, http.MethodPut, "/users/"+uuid.NewString()+"/role", admin.AccessToken, map[string]string{"role": "moderator"}).
			problem(t, http.StatusNotFound, "user_not_found")
		b.do(t, http.MethodPut, "/users/"+adminID+"/role", admin.AccessToken, map[string]string{"role": "user"}).
			problem(t, http.StatusForbidden, "forbidden")

		// A role change refuses the user's older access tokens; a refresh
		// carries the new role. (Token times have one-second resolution.)
		b.clock.Advance(2 * time.Second)
		b.do(t, http.MethodPut, "/users/"+userID+"/role", admin.AccessToken, map[string]string{"role": "advertiser"}).
			requireStatus(t, http.StatusOK).decode(t, &got)
		require.Equal(t, auth.RoleAdvertiser, got.Role)
		require.Contains(t, got.Permissions, auth.PermContentCreate)
		b.do(t, http.MethodGet, "/users/me", user.AccessToken, nil).problem(t, http.StatusUnauthorized, "token_revoked")
		promoted := b.refresh(t, user.RefreshToken)
		me := b.me(t, promoted.AccessToken)
		require.Equal(t, auth.RoleAdvertiser, me.Role)
		require.Equal(t, "pro", me.Tier)
		b.do(t, http.MethodGet, "/audit-events", promoted.AccessToken, nil).problem(t, http.StatusForbidden, "forbidden")

		// Ending another user's sessions.
		var revoked struct {
			Revoked int `json:"revoked"`
		}
		b.do(t, http.MethodDelete, "/users/"+userID+"/sessions", admin.AccessToken, nil).requireStatus(t, http.StatusOK).decode(t, &revoked)
		require.Equal(t, 2, revoked.Revoked, "the registration's session and the sign-in's")
		b.do(t, http.MethodGet, "/users/me", promoted.AccessToken, nil).problem(t, http.StatusUnauthorized, "token_revoked")
		b.do(t, http.MethodGet, "/users/me", registered.AccessToken, nil).problem(t, http.StatusUnauthorized, "token_revoked")
		b.do(t, http.MethodDelete, "/users/"+uuid.NewString()+"/sessions", admin.AccessToken, nil).
			problem(t, http.StatusNotFound, "user_not_found")

		// The audit log.
		audit := func(query string) auditPage {
			t.Helper()
			var page auditPage
			b.do(t, http.MethodGet, "/audit-events"+query, admin.AccessToken, nil).requireStatus(t, http.StatusOK).decode(t, &page)
			return page
		}
		all := audit("?limit=1000").Events
		require.Greater(t, len(all), 10)
		for i := 1; i < len(all); i++ {
			require.Greater(t, all[i-1].ID, all[i].ID, "newest first")
		}
		find := func(events []auditEventJSON, match func(auditEventJSON) bool) auditEventJSON {
			t.Helper()
			i := slices.IndexFunc(events, match)
			require.GreaterOrEqual(t, i, 0)
			return events[i]
		}
		reg := find(all, func(e auditEventJSON) bool { return e.Action == auth.AuditRegister && e.TargetID == userID })
		require.Equal(t, user.User.ID, *reg.ActorID)
		require.Equal(t, auth.OutcomeSuccess, reg.Outcome)
		require.Equal(t, "127.0.0.1", reg.IP)
		require.Equal(t, "password", reg.Details["method"])
		login := find(all, func(e auditEventJSON) bool { return e.Action == auth.AuditLoginSuccess })
		require.Equal(t, userID, login.TargetID)
		require.Equal(t, user.SessionID.String(), login.Details["session"])
		failed := find(all, func(e auditEventJSON) bool { return e.Action == auth.AuditLoginFailure })
		require.Nil(t, failed.ActorID, "a failed sign-in names no actor")
		require.Equal(t, userID, failed.TargetID)
		require.Equal(t, "wrong_password", failed.Reason)
		require.Equal(t, auth.OutcomeFailure, failed.Outcome)
		var deniedByUser int
		for _, e := range all {
			if e.Action == auth.AuditAccessDenied && e.ActorID != nil && *e.ActorID == user.User.ID {
				deniedByUser++
				require.Equal(t, auth.OutcomeDenied, e.Outcome)
				require.Equal(t, "missing_permission", e.Reason)
			}
		}
		require.Equal(t, 9, deniedByUser, "six admin calls, two reads of other accounts, one audit read as advertiser")

		tierChanges := audit("?action=" + auth.AuditTierChanged).Events
		require.Len(t, tierChanges, 1)
		require.Equal(t, map[string]string{"from": "free", "to": "pro"}, tierChanges[0].Details)
		require.Equal(t, admin.User.ID, *tierChanges[0].ActorID)
		require.Equal(t, userID, tierChanges[0].TargetID)
		roleChanges := audit("?action=" + auth.AuditRoleChanged + "&target_id=" + userID).Events
		require.Len(t, roleChanges, 1)
		require.Equal(t, map[string]string{"from": "user", "to": "advertiser"}, roleChanges[0].Details)

		byUser := audit("?actor_id=" + userID).Events
		require.NotEmpty(t, byUser)
		for _, e := range byUser {
			require.Equal(t, user.User.ID, *e.ActorID)
		}
		for _, e := range audit("?target_id=" + userID).Events {
			require.Equal(t, userID, e.TargetID)
		}
		require.Empty(t, audit("?since="+b.clock.Now().Add(time.Hour).Format(time.RFC3339)).Events)
		require.Equal(t, all, audit("?until="+b.clock.Now().Add(time.Hour).Format(time.RFC3339)+"&limit=1000").Events,
			"reading the log is not itself audited")

		// Paging backwards with limit and before_id covers the log exactly.
		var paged []auditEventJSON
		page := audit("?limit=7")
		for len(page.Events) > 0 {
			require.LessOrEqual(t, len(page.Events), 7)
			require.NotNil(t, page.NextBeforeID)
			require.Equal(t, page.Events[len(page.Events)-1].ID, *page.NextBeforeID)
			paged = append(paged, page.Events...)
			page = audit("?limit=7&before_id=" + strconv.FormatInt(*page.NextBeforeID, 10))
		}
		require.Nil(t, page.NextBeforeID, "an empty page has no next_before_id")
		require.Equal(t, all, paged)

		for _, tt := range []struct{ query, pointer string }{
			{"?limit=0", "#/query/limit"},
			{"?limit=1001", "#/query/limit"},
			{"?limit=abc", "#/query/limit"},
			{"?limit=1&limit=2", "#/query/limit"},
			{"?before_id=-1", "#/query/before_id"},
			{"?actor_id=nope", "#/query/actor_id"},
			{"?since=yesterday", "#/query/since"},
			{"?until=2026-13-01T00:00:00Z", "#/query/until"},
			{"?action=" + strings.Repeat("a", 65), "#/query/action"},
		} {
			p := b.do(t, http.MethodGet, "/audit-events"+tt.query, admin.AccessToken, nil).
				problem(t, http.StatusUnprocessableEntity, "invalid_query")
			require.Equal(t, []string{tt.pointer}, pointers(p), tt.query)
		}
		p = b.do(t, http.MethodGet, "/audit-events?limit=0&actor_id=nope&since=yesterday", admin.AccessToken, nil).
			problem(t, http.StatusUnprocessableEntity, "invalid_query")
		require.Equal(t, []string{"#/query/actor_id", "#/query/limit", "#/query/since"}, pointers(p))
	})
}

// Scenario 7: the public documents of the user system.
func TestJWKSTiersAndProvidersOverHTTP(t *testing.T) {
	t.Parallel()
	forEachBackendWith(t, bundleOpts{oidc: true}, func(t *testing.T, b *authBundle) {
		tok := b.register(t, "keys@example.com")

		r := b.do(t, http.MethodGet, "/.well-known/jwks.json", "", nil).requireStatus(t, http.StatusOK)
		require.Equal(t, "application/jwk-set+json", r.header.Get("Content-Type"))
		require.Equal(t, "public, max-age=300", r.header.Get("Cache-Control"))
		var jwks struct {
			Keys []map[string]string `json:"keys"`
		}
		require.NoError(t, jsonUnmarshalStrict(r.body, &jwks))
		require.Len(t, jwks.Keys, 1)
		k := jwks.Keys[0]
		require.Equal(t, map[string]string{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": k["kid"], "x": k["x"]}, k)
		header := jwtHeader(t, tok.AccessToken)
		require.Equal(t, k["kid"], header["kid"], "the token names the published key")
		require.Equal(t, "EdDSA", header["alg"])
		require.Equal(t, "at+jwt", header["typ"])
		x, err := base64.RawURLEncoding.DecodeString(k["x"])
		require.NoError(t, err)
		require.Equal(t, []byte(b.key.Public().(ed25519.PublicKey)), x)
		require.Equal(t, auth.KeyID(x), k["kid"])

		r = b.do(t, http.MethodGet, "/tiers", "", nil).requireStatus(t, http.StatusOK)
		require.Equal(t, "public, max-age=60", r.header.Get("Cache-Control"))
		var tiers struct {
			Tiers []auth.Tier `json:"tiers"`
		}
		r.decode(t, &tiers)
		require.Equal(t, auth.DefaultTiers(), tiers.Tiers)

		var providers struct {
			Providers []string `json:"providers"`
		}
		b.do(t, http.MethodGet, "/auth/providers", "", nil).requireStatus(t, http.StatusOK).decode(t, &providers)
		require.Equal(t, []string{"mock"}, providers.Providers)
	})

	t.Run("no providers configured", func(t *testing.T) {
		t.Parallel()
		b := newAuthBundle(t, backendMemory, bundleOpts{})
		var providers struct {
			Providers []string `json:"providers"`
		}
		b.do(t, http.MethodGet, "/auth/providers", "", nil).requireStatus(t, http.StatusOK).decode(t, &providers)
		require.Equal(t, []string{}, providers.Providers)
		b.do(t, http.MethodPost, "/auth/oidc/google/nonce", "", nil).problem(t, http.StatusNotFound, "provider_not_found")
	})
}

// rateLimitField parses an answer's RateLimit field ("ip";r=2;t=1) into
// the policy's name, the requests remaining and the seconds to reset.
func rateLimitField(t *testing.T, h http.Header) (name string, remaining, reset int) {
	t.Helper()
	v := h.Get("RateLimit")
	_, err := fmt.Sscanf(strings.NewReplacer(`"`, " ", ";r=", " ", ";t=", " ").Replace(v), "%s %d %d", &name, &remaining, &reset)
	require.NoError(t, err, "RateLimit: %q", v)
	return name, remaining, reset
}

// Scenario 8: the API-wide rate limits.
func TestAPIRateLimitsOverHTTP(t *testing.T) {
	t.Parallel()

	t.Run("per client address", func(t *testing.T) {
		t.Parallel()
		opts := bundleOpts{apiLimits: true, clientLimit: auth.Limit{Rate: 1, Period: time.Hour, Burst: 3}}
		forEachBackendWith(t, opts, func(t *testing.T, b *authBundle) {
			for i := range 3 {
				r := b.do(t, http.MethodGet, "/tiers", "", nil).requireStatus(t, http.StatusOK)
				require.Equal(t, `"ip";q=1;w=3600`, r.header.Get("RateLimit-Policy"))
				name, remaining, reset := rateLimitField(t, r.header)
				require.Equal(t, "ip", name)
				require.Equal(t, 2-i, remaining)
				require.Positive(t, reset)
				require.LessOrEqual(t, reset, 3*3600)
				require.Empty(t, r.header.Get("Retry-After"))
			}
			r := b.do(t, http.MethodGet, "/healthz", "", nil)
			r.problem(t, http.StatusTooManyRequests, "rate_limited")
			retry, err := strconv.Atoi(r.header.Get("Retry-After"))
			require.NoError(t, err)
			require.Positive(t, retry)
			require.LessOrEqual(t, retry, 3600)
			_, remaining, _ := rateLimitField(t, r.header)
			require.Zero(t, remaining)
			// Every route counts, unknown ones and sign-in included.
			b.do(t, http.MethodPost, "/auth/login", "", map[string]string{"email": "a@example.com", "password": testPassword}).
				problem(t, http.StatusTooManyRequests, "rate_limited")
			require.Empty(t, b.events(t, auth.AuditFilter{}), "refused before reaching the service")

			// Another client is unaffected.
			b.send(t, request{method: http.MethodGet, path: "/tiers", header: http.Header{testPeerHeader: {"198.51.100.20:4242"}}}).
				requireStatus(t, http.StatusOK)
		})
	})

	t.Run("per user", func(t *testing.T) {
		t.Parallel()
		opts := bundleOpts{apiLimits: true, userLimit: auth.Limit{Rate: 1, Period: time.Hour, Burst: 2}}
		forEachBackendWith(t, opts, func(t *testing.T, b *authBundle) {
			alice := b.register(t, "alice@example.com")
			bob := b.register(t, "bob@example.com")
			b.me(t, alice.AccessToken)
			b.do(t, http.MethodGet, "/auth/sessions", alice.AccessToken, nil).requireStatus(t, http.StatusOK)
			r := b.do(t, http.MethodGet, "/users/me", alice.AccessToken, nil)
			r.problem(t, http.StatusTooManyRequests, "rate_limited")
			retry, err := strconv.Atoi(r.header.Get("Retry-After"))
			require.NoError(t, err)
			require.Positive(t, retry)
			require.LessOrEqual(t, retry, 3600)
			require.Equal(t, `"user";q=1;w=3600`, r.header.Get("RateLimit-Policy"), "the user's budget binds a signed-in client")
			name, remaining, _ := rateLimitField(t, r.header)
			require.Equal(t, "user", name)
			require.Zero(t, remaining)
			b.do(t, http.MethodPatch, "/users/me", alice.AccessToken, map[string]string{"display_name": "A"}).
				problem(t, http.StatusTooManyRequests, "rate_limited")
			require.Equal(t, "", b.me(t, bob.AccessToken).DisplayName, "another user from the same address is unaffected")
			b.do(t, http.MethodGet, "/tiers", "", nil).requireStatus(t, http.StatusOK)
		})
	})
}
