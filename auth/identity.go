package auth

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Identity links an account to a subject at an OpenID Connect provider.
// It is keyed by issuer and subject, never by email: emails change hands,
// and providers differ in how they verify them.
type Identity struct {
	Issuer    string
	Subject   string
	UserID    uuid.UUID
	Provider  string // the configured provider's name, e.g. "google"
	Email     string // as the provider reported it when linked; informative only
	CreatedAt time.Time
}

// IdentityStore keeps linked identities.
type IdentityStore interface {
	// IdentityBySubject returns the identity for issuer and subject, or
	// ErrIdentityNotFound.
	IdentityBySubject(ctx context.Context, issuer, subject string) (Identity, error)

	// LinkIdentity stores id. It returns ErrIdentityLinked when the issuer
	// and subject are linked already (to anyone) and ErrUserNotFound when
	// the user does not exist.
	LinkIdentity(ctx context.Context, id Identity) error

	// UserIdentities returns the user's identities, oldest first.
	UserIdentities(ctx context.Context, user uuid.UUID) ([]Identity, error)
}

// IDClaims are the verified claims of an OpenID Connect ID token.
type IDClaims struct {
	Issuer        string
	Subject       string
	Audience      []string
	Email         string
	EmailVerified bool
	Name          string
	Nonce         string
	IssuedAt      time.Time
	ExpiresAt     time.Time
}

// IdentityProvider is one OpenID Connect provider, as the service needs it.
// The implementation (auth/oidc, on coreos/go-oidc) speaks the protocol; the
// service keeps state, nonce and PKCE verifier, and decides what an identity
// may do.
type IdentityProvider interface {
	// Name is the provider's name in URLs, e.g. "google".
	Name() string

	// RedirectURIAllowed reports whether uri is registered for the web flow,
	// by exact string comparison.
	RedirectURIAllowed(uri string) bool

	// AuthCodeURL returns the URL to send the browser to for the
	// authorization-code flow, carrying state, nonce and the PKCE S256
	// challenge of the verifier.
	AuthCodeURL(state, nonce, codeChallenge, redirectURI string) string

	// Exchange redeems an authorization code at the provider's token
	// endpoint with the PKCE verifier, verifies the ID token that comes back
	// (signature, issuer, audience equal to the client id, expiry) and
	// returns its claims. The caller checks the nonce. It returns an error
	// matching ErrOIDCFailed when the provider refuses the code or the token
	// does not verify, ErrProviderUnavailable when the provider cannot be
	// reached or answers 5xx or 429, and ErrInvalidRedirectURI (without a
	// call) when redirectURI is not registered.
	Exchange(ctx context.Context, code, codeVerifier, redirectURI string) (IDClaims, error)

	// VerifyIDToken verifies an ID token that a native app obtained itself
	// (signature, issuer, expiry, and an audience among the provider's
	// native client ids) and returns its claims. The caller checks the
	// nonce. Errors as for Exchange.
	VerifyIDToken(ctx context.Context, rawIDToken string) (IDClaims, error)
}
