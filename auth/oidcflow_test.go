package auth_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/auth/oidc/oidctest"
	"github.com/adshare/adshare/internal/errs"
)

const oidcRedirect = "https://dashboard.adshare.test/oidc/callback"

// oidcBundle is a service with one provider, "mock", backed by a real
// OpenID Connect server (mockoidc) running in-process.
type oidcBundle struct {
	*testBundle
	idp *oidctest.Server
}

func setupOIDC(t *testing.T, mutate ...func(*auth.Config)) *oidcBundle {
	t.Helper()
	idp := oidctest.Start(t)
	p := idp.Provider(t, "mock", oidcRedirect)
	b := setup(t, append([]func(*auth.Config){func(c *auth.Config) { c.Providers = []auth.IdentityProvider{p} }}, mutate...)...)
	return &oidcBundle{testBundle: b, idp: idp}
}

// browse plays the browser at the provider and returns the code and state
// it sends back.
func browse(t *testing.T, authURL string) (code, state string) {
	t.Helper()
	_, code, state = oidctest.Browse(t, authURL)
	return code, state
}

func (b *oidcBundle) queueUser(subject, email string, verified bool) {
	b.idp.QueueUser(subject, email, verified)
}

func TestOIDCWebFlow(t *testing.T) {
	t.Parallel()

	t.Run("first sign-in creates the account; the next signs in", func(t *testing.T) {
		t.Parallel()
		b := setupOIDC(t)
		ctx := client("203.0.113.80")
		b.queueUser("sub-ada", "Ada@Example.com", true)
		a, err := b.svc.BeginOIDC(ctx, "mock", oidcRedirect, [16]byte{})
		require.NoError(t, err)
		u, err := url.Parse(a.URL)
		require.NoError(t, err)
		q := u.Query()
		require.Equal(t, "S256", q.Get("code_challenge_method"))
		require.NotEmpty(t, q.Get("code_challenge"))
		require.NotEmpty(t, q.Get("nonce"))
		require.Equal(t, a.State, q.Get("state"))
		require.Equal(t, oidcRedirect, q.Get("redirect_uri"))

		code, state := browse(t, a.URL)
		res, err := b.svc.CompleteOIDC(ctx, "mock", state, code)
		require.NoError(t, err)
		require.True(t, res.Created)
		require.Equal(t, "ada@example.com", res.User.Email)
		require.NotEmpty(t, res.Tokens.AccessToken)
		b.principal(t, res.Tokens)

		// Replaying the callback (same state and code) fails.
		_, err = b.svc.CompleteOIDC(ctx, "mock", state, code)
		require.ErrorIs(t, err, auth.ErrOIDCFailed)

		// A second sign-in finds the same account by issuer and subject.
		b.queueUser("sub-ada", "ada.new.address@example.com", true)
		a2, err := b.svc.BeginOIDC(ctx, "mock", oidcRedirect, [16]byte{})
		require.NoError(t, err)
		code2, state2 := browse(t, a2.URL)
		res2, err := b.svc.CompleteOIDC(ctx, "mock", state2, code2)
		require.NoError(t, err)
		require.False(t, res2.Created)
		require.Equal(t, res.User.ID, res2.User.ID, "identities are keyed by issuer and subject, not email")

		events := actions(b.audit(t, auth.AuditFilter{ActorID: res.User.ID}))
		require.Contains(t, events, auth.AuditRegister)
		require.Contains(t, events, auth.AuditOIDCLogin)
		require.Len(t, b.audit(t, auth.AuditFilter{Action: auth.AuditOIDCFailure}), 1)
	})

	t.Run("redirect URIs match exactly", func(t *testing.T) {
		t.Parallel()
		b := setupOIDC(t)
		for _, uri := range []string{oidcRedirect + "/", strings.ToUpper(oidcRedirect), oidcRedirect + "?x=1", "https://evil.example/oidc/callback"} {
			_, err := b.svc.BeginOIDC(context.Background(), "mock", uri, [16]byte{})
			require.ErrorIs(t, err, auth.ErrInvalidRedirectURI, uri)
		}
		_, err := b.svc.BeginOIDC(context.Background(), "nope", oidcRedirect, [16]byte{})
		require.ErrorIs(t, err, auth.ErrProviderNotFound)
	})

	t.Run("a forged or expired state is refused", func(t *testing.T) {
		t.Parallel()
		b := setupOIDC(t)
		ctx := client("203.0.113.81")
		a, err := b.svc.BeginOIDC(ctx, "mock", oidcRedirect, [16]byte{})
		require.NoError(t, err)
		code, _ := browse(t, a.URL)
		_, err = b.svc.CompleteOIDC(ctx, "mock", "forged-state", code)
		require.ErrorIs(t, err, auth.ErrOIDCFailed)

		a, err = b.svc.BeginOIDC(ctx, "mock", oidcRedirect, [16]byte{})
		require.NoError(t, err)
		code, state := browse(t, a.URL)
		b.clock.Advance(11 * time.Minute)
		_, err = b.svc.CompleteOIDC(ctx, "mock", state, code)
		require.ErrorIs(t, err, auth.ErrOIDCFailed)
	})

	t.Run("a code bound to another transaction's verifier is refused (PKCE)", func(t *testing.T) {
		t.Parallel()
		b := setupOIDC(t)
		ctx := client("203.0.113.82")
		// The attacker obtains a code in their own flow and injects it into the victim's callback.
		attacker, err := b.svc.BeginOIDC(ctx, "mock", oidcRedirect, [16]byte{})
		require.NoError(t, err)
		stolenCode, _ := browse(t, attacker.URL)
		victim, err := b.svc.BeginOIDC(ctx, "mock", oidcRedirect, [16]byte{})
		require.NoError(t, err)
		_, err = b.svc.CompleteOIDC(ctx, "mock", victim.State, stolenCode)
		require.ErrorIs(t, err, auth.ErrOIDCFailed)
		require.Equal(t, "exchange_failed", b.audit(t, auth.AuditFilter{Action: auth.AuditOIDCFailure})[0].Reason)
	})

	t.Run("no verified email: no account", func(t *testing.T) {
		t.Parallel()
		b := setupOIDC(t)
		ctx := client("203.0.113.83")
		b.queueUser("sub-unverified", "someone@example.com", false)
		a, err := b.svc.BeginOIDC(ctx, "mock", oidcRedirect, [16]byte{})
		require.NoError(t, err)
		code, state := browse(t, a.URL)
		_, err = b.svc.CompleteOIDC(ctx, "mock", state, code)
		require.ErrorIs(t, err, auth.ErrOIDCFailed)
		_, err = b.store.UserByEmail(ctx, "someone@example.com")
		require.ErrorIs(t, err, auth.ErrUserNotFound)
	})

	t.Run("an existing email needs an explicit link, then the identity signs in", func(t *testing.T) {
		t.Parallel()
		b := setupOIDC(t)
		ctx := client("203.0.113.84")
		owner, ownerPair := b.register(t, "grace@example.com")

		b.queueUser("sub-grace", "grace@example.com", true)
		a, err := b.svc.BeginOIDC(ctx, "mock", oidcRedirect, [16]byte{})
		require.NoError(t, err)
		code, state := browse(t, a.URL)
		_, err = b.svc.CompleteOIDC(ctx, "mock", state, code)
		require.ErrorIs(t, err, auth.ErrLinkRequired, "never linked by email alone")

		// Signed in with her password, Grace links the provider.
		b.queueUser("sub-grace", "grace@example.com", true)
		a, err = b.svc.BeginOIDC(ctx, "mock", oidcRedirect, b.principal(t, ownerPair).UserID)
		require.NoError(t, err)
		code, state = browse(t, a.URL)
		res, err := b.svc.CompleteOIDC(ctx, "mock", state, code)
		require.NoError(t, err)
		require.True(t, res.Linked)
		require.Empty(t, res.Tokens.AccessToken)

		b.queueUser("sub-grace", "grace@example.com", true)
		a, err = b.svc.BeginOIDC(ctx, "mock", oidcRedirect, [16]byte{})
		require.NoError(t, err)
		code, state = browse(t, a.URL)
		res, err = b.svc.CompleteOIDC(ctx, "mock", state, code)
		require.NoError(t, err)
		require.Equal(t, owner.ID, res.User.ID)
		require.Len(t, b.audit(t, auth.AuditFilter{Action: auth.AuditIdentityLinked}), 1)
	})

	t.Run("provider down: unavailable, not a failure of the user", func(t *testing.T) {
		t.Parallel()
		b := setupOIDC(t)
		ctx := client("203.0.113.85")
		a, err := b.svc.BeginOIDC(ctx, "mock", oidcRedirect, [16]byte{})
		require.NoError(t, err)
		code, state := browse(t, a.URL)
		b.idp.QueueError(&mockoidc.ServerError{Code: http.StatusInternalServerError, Error: mockoidc.InternalServerError, Description: "boom"})
		_, err = b.svc.CompleteOIDC(ctx, "mock", state, code)
		require.ErrorIs(t, err, auth.ErrProviderUnavailable)
		require.Equal(t, errs.Unavailable, errs.KindOf(err))
	})
}

func (b *oidcBundle) nativeToken(t *testing.T, nonce string) string {
	t.Helper()
	return b.idp.NativeIDToken(t, nonce)
}

func TestOIDCNativeFlow(t *testing.T) {
	t.Parallel()

	t.Run("server-issued nonce, single use", func(t *testing.T) {
		t.Parallel()
		b := setupOIDC(t)
		ctx := client("203.0.113.90")
		nonce, _, err := b.svc.OIDCNonce(ctx, "mock")
		require.NoError(t, err)
		b.queueUser("sub-native", "native@example.com", true)
		idToken := b.nativeToken(t, nonce)
		res, err := b.svc.SignInWithIDToken(ctx, "mock", idToken, [16]byte{})
		require.NoError(t, err)
		require.True(t, res.Created)
		b.principal(t, res.Tokens)

		// The same ID token again: its nonce is spent.
		_, err = b.svc.SignInWithIDToken(ctx, "mock", idToken, [16]byte{})
		require.ErrorIs(t, err, auth.ErrOIDCFailed)
	})

	t.Run("a nonce the server never issued is refused", func(t *testing.T) {
		t.Parallel()
		b := setupOIDC(t)
		ctx := client("203.0.113.91")
		b.queueUser("sub-x", "x@example.com", true)
		_, err := b.svc.SignInWithIDToken(ctx, "mock", b.nativeToken(t, "made-up-by-the-client"), [16]byte{})
		require.ErrorIs(t, err, auth.ErrOIDCFailed)
		require.Equal(t, "nonce_unknown_or_used", b.audit(t, auth.AuditFilter{Action: auth.AuditOIDCFailure})[0].Reason)
	})

	t.Run("an ID token for another audience is refused", func(t *testing.T) {
		t.Parallel()
		b := setupOIDC(t)
		ctx := client("203.0.113.92")
		nonce, _, err := b.svc.OIDCNonce(ctx, "mock")
		require.NoError(t, err)
		forged := b.idp.SignIDToken(t, b.idp.IDTokenClaims("sub-y", "y@example.com", nonce, "some-other-app"))
		_, err = b.svc.SignInWithIDToken(ctx, "mock", forged, [16]byte{})
		require.ErrorIs(t, err, auth.ErrOIDCFailed)
		require.Equal(t, "token_invalid", b.audit(t, auth.AuditFilter{Action: auth.AuditOIDCFailure})[0].Reason)

		// The same token for the iOS client id, which is configured, passes.
		ok := b.idp.SignIDToken(t, b.idp.IDTokenClaims("sub-y", "y@example.com", nonce, oidctest.NativeClientID))
		_, err = b.svc.SignInWithIDToken(ctx, "mock", ok, [16]byte{})
		require.NoError(t, err)
	})
}
