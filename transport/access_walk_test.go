package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pb33f/libopenapi"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/transport/realtime"
)

// walkRole is who calls a route in the access walk.
type walkRole int

const (
	asAnon walkRole = iota
	asUser
	asAdvertiser
	asModerator
	asAdmin
	walkRoles
)

func (r walkRole) String() string {
	return [...]string{"anonymous", "another user", "an advertiser", "a moderator", "an admin"}[r]
}

// outcome is what a role may get from a route.
type outcome int

const (
	// allowed: the route serves the caller (any answer but 401, 403 or a
	// 5xx; on a route given another's id, not a 404 either).
	allowed outcome = iota
	// unauthenticated: 401.
	unauthenticated
	// refused: 403, or 404 for another's id (which hides that it exists).
	refused
)

func (o outcome) String() string {
	return [...]string{"allowed", "unauthenticated (401)", "refused (403 or 404)"}[o]
}

// access is a row of the walk's table: what each role may do with one
// operation, and how to call it.
type access struct {
	op string // "METHOD /path" as the OpenAPI document names it
	// may is the outcome for each role.
	may [walkRoles]outcome
	// foreign says the call names another user's resource (an id, or a
	// query for another user's data): allowed then excludes 404, and an
	// allowed role may read the victims' data in the answer.
	foreign bool
	// call builds the request for a role; the token is set by the walk.
	call func(f *walkFixture, r walkRole) request
	// dial: the operation is a WebSocket handshake, made with a client.
	dial bool
	// fresh: the call ends or changes the caller's sessions, so it is
	// made on a session signed in for it.
	fresh bool
	// own: the call ends the caller's account (erasure), so it is made
	// by a throwaway account of the caller's role, made for it.
	own bool
}

// Outcome tables for the usual shapes.
var (
	// public: anyone, signed in or not.
	public = [walkRoles]outcome{allowed, allowed, allowed, allowed, allowed}
	// signedIn: any account, on its own data.
	signedIn = [walkRoles]outcome{unauthenticated, allowed, allowed, allowed, allowed}
	// nobody: no one but the resource's owner, not even an admin.
	nobody = [walkRoles]outcome{unauthenticated, refused, refused, refused, refused}
	// nobodyAtAll: 401 whoever asks (a credential that is not one).
	nobodyAtAll = [walkRoles]outcome{unauthenticated, unauthenticated, unauthenticated, unauthenticated, unauthenticated}
)

// from: signed in with role min or above (roles are cumulative).
func from(min walkRole) [walkRoles]outcome {
	out := [walkRoles]outcome{unauthenticated}
	for r := asUser; r < walkRoles; r++ {
		out[r] = refused
		if r >= min {
			out[r] = allowed
		}
	}
	return out
}

// walkFixture is the walk's world: the callers (one per role) and two
// victims whose ids the callers use: an owner (a plain user with earnings,
// a payout, a hold and a session) and an advertiser (with content waiting
// for review and a top-up waiting for confirmation).
type walkFixture struct {
	b       *billingBundle
	callers [walkRoles]tokenJSON
	owner   tokenJSON
	adv     tokenJSON
	// The victims' resources.
	content, topUp, payout, hold uuid.UUID
	// export is the owner's export; erasure an erasure an admin made.
	export, erasure uuid.UUID
	ownerSession    uuid.UUID
	tier            string
	// secrets are values of the victims that no answer to another caller
	// may hold: emails, display names, their content's title, their
	// address.
	secrets []string
}

// victimPeer is the address the victims sign up from.
const victimPeer = "203.0.113.77:4242"

func (f *walkFixture) path(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// accessTable is what each role may do with each operation of the API.
// Every operation of the OpenAPI document has a row (the walk fails
// otherwise); rows are walked in this order, the ones that end the
// callers' sessions last.
var accessTable = []access{
	{op: "GET /healthz", may: public, call: get("/healthz")},
	{op: "GET /readyz", may: public, call: get("/readyz")},
	{op: "GET /openapi.json", may: public, call: get("/openapi.json")},
	{op: "GET /docs", may: public, call: get("/docs")},
	{op: "GET /docs/{asset}", may: public, call: get("/docs/redoc.standalone.js")},
	{op: "GET /.well-known/jwks.json", may: public, call: get("/.well-known/jwks.json")},
	// The realtime channel is dialled (see dialStatus): a native app's
	// token is checked before the upgrade, a browser authenticates after it.
	{op: "GET /ws", may: public, dial: true, call: get("/ws")},
	{op: "POST /auth/register", may: public, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/auth/register",
			body: map[string]string{"email": fmt.Sprintf("walk.new.%d@example.com", r), "password": testPassword}}
	}},
	{op: "POST /auth/login", may: nobodyAtAll, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/auth/login",
			body: map[string]string{"email": f.owner.User.Email, "password": "not the owner's passphrase"}}
	}},
	{op: "POST /auth/refresh", may: nobodyAtAll, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/auth/refresh", body: map[string]string{"refresh_token": "walk-not-a-token"}}
	}},
	{op: "GET /auth/sessions", may: signedIn, call: get("/auth/sessions")},
	{op: "DELETE /auth/sessions/{id}", may: nobody, foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodDelete, path: "/auth/sessions/" + f.ownerSession.String()}
	}},
	{op: "GET /auth/providers", may: public, call: get("/auth/providers")},
	{op: "POST /auth/oidc/{provider}/authorize", may: public, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/auth/oidc/mock/authorize", body: map[string]string{"redirect_uri": testOIDCRedirect}}
	}},
	{op: "POST /auth/oidc/{provider}/callback", may: public, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/auth/oidc/mock/callback", body: map[string]string{"code": "c", "state": "s"}}
	}},
	{op: "POST /auth/oidc/{provider}/nonce", may: public, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/auth/oidc/mock/nonce", body: map[string]string{}}
	}},
	{op: "POST /auth/oidc/{provider}/id-token", may: public, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/auth/oidc/mock/id-token", body: map[string]string{"id_token": "x.y.z"}}
	}},
	{op: "GET /users/me", may: signedIn, call: get("/users/me")},
	{op: "PATCH /users/me", may: signedIn, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPatch, path: "/users/me", body: map[string]any{"display_name": "Walker"}}
	}},
	{op: "GET /users/me/consent", may: signedIn, call: get("/users/me/consent")},
	{op: "PUT /users/me/consent", may: signedIn, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPut, path: "/users/me/consent", body: map[string]any{
			"policy_version": auth.DefaultConsentPolicy, "purposes": map[string]bool{"analytics": true}}}
	}},
	{op: "GET /users/{id}", may: from(asModerator), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodGet, path: "/users/" + f.owner.User.ID.String()}
	}},
	{op: "PUT /users/{id}/tier", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPut, path: "/users/" + f.owner.User.ID.String() + "/tier", body: map[string]string{"tier": f.tier}}
	}},
	{op: "PUT /users/{id}/role", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPut, path: "/users/" + f.owner.User.ID.String() + "/role", body: map[string]string{"role": "user"}}
	}},
	{op: "GET /tiers", may: public, call: get("/tiers")},
	{op: "GET /audit-events", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodGet, path: "/audit-events?actor_id=" + f.owner.User.ID.String()}
	}},
	{op: "GET /ad-space/{userId}", may: public, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodGet, path: "/ad-space/" + f.owner.User.ID.String()}
	}},
	{op: "GET /ad-space/settings", may: signedIn, call: get("/ad-space/settings")},
	{op: "PUT /ad-space/settings", may: signedIn, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPut, path: "/ad-space/settings", body: defaultSettingsBody()}
	}},
	{op: "POST /ad-space/content", may: from(asAdvertiser), call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/ad-space/content", body: contentBody(fmt.Sprintf("Walker %d", r))}
	}},
	{op: "GET /ad-space/content", may: from(asAdvertiser), call: get("/ad-space/content")},
	{op: "GET /ad-space/content/{id}", may: nobody, foreign: true, call: onContent(http.MethodGet, "")},
	{op: "PUT /ad-space/content/{id}", may: nobody, foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPut, path: "/ad-space/content/" + f.content.String(), body: with(contentBody("Taken over"), map[string]any{"version": 2})}
	}},
	{op: "POST /ad-space/content/{id}/submit", may: nobody, foreign: true, call: onContent(http.MethodPost, "/submit")},
	{op: "POST /ad-space/content/{id}/pause", may: nobody, foreign: true, call: onContent(http.MethodPost, "/pause")},
	{op: "POST /ad-space/content/{id}/resume", may: nobody, foreign: true, call: onContent(http.MethodPost, "/resume")},
	{op: "POST /ad-space/content/{id}/archive", may: nobody, foreign: true, call: onContent(http.MethodPost, "/archive")},
	{op: "GET /moderation/queue", may: from(asModerator), foreign: true, call: get("/moderation/queue")},
	{op: "POST /moderation/content/{id}/reject", may: from(asModerator), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/moderation/content/" + f.content.String() + "/reject", body: map[string]string{"reason": "walk"}}
	}},
	{op: "POST /moderation/content/{id}/approve", may: from(asModerator), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/moderation/content/" + f.content.String() + "/approve"}
	}},
	{op: "POST /events", may: public, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/events", body: map[string]any{"events": []map[string]any{
			{"type": "impression", "token": "walk-not-a-token", "occurred_at": "2026-01-01T00:00:00Z"}}}}
	}},
	{op: "GET /c/{token}", may: public, call: get("/c/walk-not-a-token")},
	{op: "GET /analytics/performance", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodGet, path: "/analytics/performance?scope=all&owner_id=" + f.owner.User.ID.String()}
	}},
	{op: "GET /analytics/revenue", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodGet, path: "/analytics/revenue?scope=all&owner_id=" + f.owner.User.ID.String()}
	}},
	{op: "GET /analytics/users", may: from(asAdmin), foreign: true, call: get("/analytics/users")},
	{op: "POST /billing/topups", may: from(asAdvertiser), call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/billing/topups", body: map[string]any{"amount": 1_000, "currency": "usd"},
			header: http.Header{"Idempotency-Key": {uuid.NewString()}}}
	}},
	{op: "GET /billing/topups/{id}", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodGet, path: "/billing/topups/" + f.topUp.String()}
	}},
	{op: "POST /billing/topups/{id}/confirm", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/billing/topups/" + f.topUp.String() + "/confirm"}
	}},
	{op: "GET /billing/balance", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodGet, path: "/billing/balance?user=" + f.owner.User.ID.String()}
	}},
	{op: "GET /billing/transactions", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodGet, path: "/billing/transactions?user=" + f.owner.User.ID.String()}
	}},
	{op: "GET /billing/payouts", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodGet, path: "/billing/payouts?user=" + f.owner.User.ID.String()}
	}},
	{op: "POST /billing/payouts", may: signedIn, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/billing/payouts", body: map[string]any{}}
	}},
	{op: "GET /billing/payouts/{id}", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodGet, path: "/billing/payouts/" + f.payout.String()}
	}},
	// The owner has a payout on its way: an admin's erasure is refused
	// with 409 payout_pending, which changes nothing (before
	// the payout is recorded below).
	{op: "POST /admin/users/{id}/erase", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/admin/users/" + f.owner.User.ID.String() + "/erase"}
	}},
	{op: "POST /billing/payouts/{id}/record", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/billing/payouts/" + f.payout.String() + "/record", body: map[string]any{"paid": true}}
	}},
	{op: "POST /billing/payee", may: signedIn, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/billing/payee", body: map[string]any{"country": "us"}}
	}},
	{op: "GET /billing/payee", may: signedIn, call: get("/billing/payee")},
	{op: "GET /billing/holds", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodGet, path: "/billing/holds?user=" + f.owner.User.ID.String()}
	}},
	{op: "POST /billing/holds", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/billing/holds", body: map[string]any{"owner_id": f.owner.User.ID, "note": "walk"}}
	}},
	{op: "POST /billing/holds/{id}/release", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/billing/holds/" + f.hold.String() + "/release", body: map[string]any{"owner_id": f.owner.User.ID}}
	}},
	{op: "POST /admin/announcements", may: from(asAdmin), call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/admin/announcements", body: map[string]string{"message": "walk"}}
	}},
	{op: "GET /users/me/export", may: signedIn, call: get("/users/me/export")},
	{op: "POST /admin/users/{id}/export", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/admin/users/" + f.owner.User.ID.String() + "/export"}
	}},
	{op: "GET /exports/{id}", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodGet, path: "/exports/" + f.export.String()}
	}},
	// A token is the capability: anyone may try one; a forged one is a 404.
	{op: "GET /exports/download/{token}", may: public, call: get("/exports/download/walk-not-a-token")},
	{op: "GET /admin/erasures/{id}", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodGet, path: "/admin/erasures/" + f.erasure.String()}
	}},
	{op: "DELETE /users/me", may: signedIn, own: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodDelete, path: "/users/me", body: map[string]string{"password": testPassword}}
	}},
	{op: "GET /admin/billing/reconciliation", may: from(asAdmin), foreign: true, call: get("/admin/billing/reconciliation?day=2026-01-01")},
	{op: "POST " + stripeWebhookPath, may: public, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: stripeWebhookPath, body: `{"id":"evt_walk"}`,
			header: http.Header{"Stripe-Signature": {"t=1,v1=00"}}}
	}},
	{op: "DELETE /users/{id}/sessions", may: from(asAdmin), foreign: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodDelete, path: "/users/" + f.owner.User.ID.String() + "/sessions"}
	}},
	// These change the callers' own accounts and sessions: last, each on a
	// session of its own (fresh).
	{op: "POST /users/me/advertiser", may: signedIn, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPost, path: "/users/me/advertiser", body: map[string]string{"terms_version": auth.DefaultAdvertiserTerms}}
	}},
	{op: "DELETE /auth/sessions", may: signedIn, fresh: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodDelete, path: "/auth/sessions"}
	}},
	{op: "POST /auth/logout", may: [walkRoles]outcome{unauthenticated, allowed, allowed, allowed, allowed}, fresh: true,
		call: func(f *walkFixture, r walkRole) request {
			if r == asAnon { // with a refresh token that is none
				return request{method: http.MethodPost, path: "/auth/logout", body: map[string]string{"refresh_token": "walk-not-a-token"}}
			}
			return request{method: http.MethodPost, path: "/auth/logout"}
		}},
	{op: "PUT /auth/password", may: signedIn, fresh: true, call: func(f *walkFixture, r walkRole) request {
		return request{method: http.MethodPut, path: "/auth/password",
			body: map[string]string{"current_password": testPassword, "new_password": "walked " + testPassword}}
	}},
}

// get is a GET of path for every role.
func get(path string) func(*walkFixture, walkRole) request {
	return func(*walkFixture, walkRole) request { return request{method: http.MethodGet, path: path} }
}

// onContent is a call on the victim advertiser's content.
func onContent(method, suffix string) func(*walkFixture, walkRole) request {
	return func(f *walkFixture, _ walkRole) request {
		return request{method: method, path: "/ad-space/content/" + f.content.String() + suffix}
	}
}

// TestAccessWalk calls every operation of the OpenAPI document as
// anonymous, as another user, as an advertiser, as a moderator and as an
// admin, with the ids of two other users' resources, and holds each answer
// to accessTable: the outcome the role may have, no answer to a caller
// that may not read the victims' data holding any of it, and no change to
// the victims' data after an attempt that was refused.
func TestAccessWalk(t *testing.T) {
	t.Parallel()
	requireEveryOperationInTable(t)
	f := newWalkFixture(t)
	for _, row := range accessTable {
		for r := asAnon; r < walkRoles; r++ {
			req := row.call(f, r)
			switch {
			case r == asAnon:
			case row.fresh:
				req.token = f.b.login(t, f.callers[r].User.Email).AccessToken
			case row.own:
				req.token = f.throwaway(t, r).AccessToken
			default:
				req.token = f.callers[r].AccessToken
			}
			want := row.may[r]
			var before string
			if want != allowed {
				before = f.snapshot(t)
			}
			var got reply
			if row.dial {
				got = f.dial(t, req.token)
			} else {
				got = f.b.send(t, req)
			}
			if o, ok := outcomeOf(got.status, row.foreign); !ok || o != want {
				t.Errorf("%s as %s: answered %d, want %s: %s", row.op, r, got.status, want, got.body)
			}
			if want != allowed {
				if after := f.snapshot(t); after != before {
					t.Errorf("%s as %s was refused but changed the victims' data:\nbefore %s\nafter  %s", row.op, r, before, after)
				}
			}
			if !(row.foreign && want == allowed) {
				for _, s := range f.secrets {
					if strings.Contains(strings.ToLower(string(got.body)), strings.ToLower(s)) {
						t.Errorf("%s as %s: the answer holds another user's %q: %s", row.op, r, s, got.body)
					}
				}
			}
		}
	}
}

// throwaway signs up an account of role r's role for a call that ends it.
func (f *walkFixture) throwaway(t *testing.T, r walkRole) tokenJSON {
	t.Helper()
	tok := f.b.register(t, fmt.Sprintf("walk.erase.%d.%s@example.com", r, uuid.NewString()[:8]))
	if role := [walkRoles]auth.Role{asAdvertiser: auth.RoleAdvertiser, asModerator: auth.RoleModerator, asAdmin: auth.RoleAdmin}[r]; role != "" {
		tok = f.b.promote(t, tok, role)
	}
	return tok
}

// dial opens the realtime channel with token ("" for none) and returns
// the handshake's status (101 when it upgraded).
func (f *walkFixture) dial(t *testing.T, token string) reply {
	t.Helper()
	var h http.Header
	if token != "" {
		h = bearer(token)
	}
	c, resp, err := f.b.tryDialWS(t, "", h)
	if err == nil {
		_ = c.c.CloseNow()
	}
	require.NotNil(t, resp, "dial: %v", err)
	return reply{status: resp.StatusCode, header: resp.Header}
}

// outcomeOf classifies a status: ok is false for a 5xx (never right).
func outcomeOf(status int, foreign bool) (outcome, bool) {
	switch {
	case status >= 500:
		return 0, false
	case status == http.StatusUnauthorized:
		return unauthenticated, true
	case status == http.StatusForbidden, foreign && status == http.StatusNotFound:
		return refused, true
	default:
		return allowed, true
	}
}

// requireEveryOperationInTable fails the walk when an operation of the
// OpenAPI document has no row in accessTable (a new route must say who may
// call it), or a row names no operation.
func requireEveryOperationInTable(t *testing.T) {
	t.Helper()
	doc, err := libopenapi.NewDocument(openAPIDocument)
	require.NoError(t, err)
	model, err := doc.BuildV3Model()
	require.NoError(t, err)
	var documented, table []string
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, row := range accessTable {
		table = append(table, row.op)
	}
	var missing, extra []string
	for _, op := range documented {
		if !slices.Contains(table, op) {
			missing = append(missing, op)
		}
	}
	for _, op := range table {
		if !slices.Contains(documented, op) {
			extra = append(extra, op)
		}
	}
	require.Empty(t, missing, "operations of the OpenAPI document with no row in accessTable (say who may call them)")
	require.Empty(t, extra, "rows of accessTable that the OpenAPI document does not have")
	slices.Sort(table)
	require.Equal(t, len(table), len(slices.Compact(table)), "an operation has two rows in accessTable")
}

// newWalkFixture builds every part of the API on the memory stores (manual
// billing: admins confirm top-ups and record payouts), the callers and the
// victims with their resources.
func newWalkFixture(t *testing.T) *walkFixture {
	t.Helper()
	b := newBillingBundle(t, backendMemory, billingOpts{manual: true, spaces: true, privacy: true, api: func(cfg *Config) {
		broker := memory.NewBroker(nil)
		hub, err := realtime.NewHub(realtime.HubConfig{Broker: broker, Auth: cfg.Auth})
		require.NoError(t, err)
		require.NoError(t, hub.Start(context.Background()))
		t.Cleanup(func() { _ = hub.Stop(context.Background()) })
		cfg.Realtime = hub
		cfg.Announcer, err = realtime.NewAnnouncer(realtime.NewPublisher(broker, nil), cfg.Auth, auth.AuditLog(memory.New()))
		require.NoError(t, err)
	}})
	f := &walkFixture{b: b}
	roles := [walkRoles]auth.Role{asUser: auth.RoleUser, asAdvertiser: auth.RoleAdvertiser, asModerator: auth.RoleModerator, asAdmin: auth.RoleAdmin}
	for r := asUser; r < walkRoles; r++ {
		tok := b.register(t, fmt.Sprintf("walk.caller.%d@example.com", r))
		if roles[r] != auth.RoleUser {
			tok = b.promote(t, tok, roles[r])
		}
		f.callers[r] = tok
	}
	admin := f.callers[asAdmin].AccessToken

	// The victims sign up from an address of their own and name themselves.
	victim := func(email, name string, role auth.Role) tokenJSON {
		tok := b.send(t, request{method: http.MethodPost, path: "/auth/register", header: http.Header{testPeerHeader: {victimPeer}},
			body: map[string]string{"email": email, "password": testPassword}}).tokens(t, http.StatusCreated)
		if role != auth.RoleUser {
			tok = b.promote(t, tok, role)
		}
		b.do(t, http.MethodPatch, "/users/me", tok.AccessToken, map[string]any{"display_name": name}).requireStatus(t, http.StatusOK)
		return tok
	}
	f.owner = victim("victim.owner@example.com", "Olivia Victim", auth.RoleUser)
	f.adv = victim("victim.adv@example.com", "Victor Advertiser", auth.RoleAdvertiser)
	f.ownerSession = f.owner.SessionID
	f.secrets = []string{f.owner.User.Email, "Olivia Victim", f.adv.User.Email, "Victor Advertiser", "Secret Beans Of Victor", "203.0.113.77"}

	// The advertiser funds a budget (confirmed) and waits on a second
	// top-up; their content waits for review.
	funded := b.topUp(t, f.adv.AccessToken, loopTopUp)
	b.do(t, http.MethodPost, "/billing/topups/"+funded.ID.String()+"/confirm", admin, nil).requireStatus(t, http.StatusOK)
	f.topUp = b.topUp(t, f.adv.AccessToken, 2_000).ID
	var c contentJSON
	b.do(t, http.MethodPost, "/ad-space/content", f.adv.AccessToken, contentBody("Secret Beans Of Victor")).
		requireStatus(t, http.StatusCreated).decode(t, &c)
	b.do(t, http.MethodPost, "/ad-space/content/"+c.ID.String()+"/submit", f.adv.AccessToken, nil).requireStatus(t, http.StatusOK)
	f.content = c.ID

	// The owner earns, asks for a payout (manual: it waits for an admin)
	// and has a hold placed.
	b.serve(t, f.owner.User.ID, f.adv.User.ID, loopN, loopCPM, loopShareBP)
	b.settleAndRelease(t)
	f.payout = b.requestPayout(t, f.owner.AccessToken, map[string]any{}).ID
	var h holdJSON
	b.do(t, http.MethodPost, "/billing/holds", admin, map[string]any{"owner_id": f.owner.User.ID, "note": "victim's hold"}).
		requireStatus(t, http.StatusCreated).decode(t, &h)
	f.hold = h.ID

	// The owner exports their data; an admin erased a user who left.
	var ex exportJSON
	b.do(t, http.MethodGet, "/users/me/export", f.owner.AccessToken, nil).requireStatus(t, http.StatusAccepted).decode(t, &ex)
	f.export = ex.ID
	leaver := b.register(t, "walk.leaver@example.com")
	var er erasureJSON
	b.do(t, http.MethodPost, "/admin/users/"+leaver.User.ID.String()+"/erase", admin, nil).
		requireStatus(t, http.StatusAccepted).decode(t, &er)
	f.erasure = er.ID
	u, err := b.users.UserByID(t.Context(), f.owner.User.ID)
	require.NoError(t, err)
	f.tier = u.Tier
	return f
}

// snapshot is everything of the victims' that a refused call must leave
// as it was: their accounts, sessions and spaces, the advertiser's
// content and top-ups, the owner's payout, holds and payee, and the
// ledger's totals.
func (f *walkFixture) snapshot(t *testing.T) string {
	t.Helper()
	ctx := t.Context()
	st := f.b.users.(*memory.Store)
	state := map[string]any{}
	put := func(k string, v any, err error) {
		if err != nil {
			v = "error: " + err.Error()
		}
		state[k] = v
	}
	for name, tok := range map[string]tokenJSON{"owner": f.owner, "advertiser": f.adv} {
		u, err := st.UserByID(ctx, tok.User.ID)
		put(name+".user", u, err)
		s, err := st.UserSessions(ctx, tok.User.ID, f.b.clock.Now())
		put(name+".sessions", s, err)
		sp, err := st.SpaceByOwner(ctx, tok.User.ID)
		put(name+".space", sp, err)
	}
	c, err := st.Content(ctx, f.content)
	put("content", c, err)
	tu, err := f.b.store.TopUp(ctx, f.topUp)
	put("topup", tu, err)
	po, err := f.b.store.Payout(ctx, f.payout)
	put("payout", po, err)
	holds, err := f.b.store.Holds(ctx, f.owner.User.ID)
	put("holds", holds, err)
	payee, err := f.b.store.Payee(ctx, f.owner.User.ID)
	put("payee", payee, err)
	totals, err := f.b.store.Totals(ctx)
	put("totals", totals, err)
	raw, err := json.Marshal(state)
	require.NoError(t, err)
	return string(raw)
}
