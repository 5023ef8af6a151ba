// Package oidc is the OpenID Connect adapter for adshare's auth service: it
// implements [auth.IdentityProvider] for one provider (Google, Apple,
// Microsoft, Keycloak, …) on top of github.com/coreos/go-oidc/v3 and
// golang.org/x/oauth2.
//
// # What it does
//
// [New] runs OIDC discovery once, at start-up. go-oidc requires the issuer in
// the discovery document to equal [Config.IssuerURL] exactly (no trailing
// slash games), and New refuses a provider that advertises PKCE methods but not
// S256.
//
// The web flow (pattern A, backend-mediated) is two calls:
//
//   - [Provider.AuthCodeURL] builds the authorization URL with state, nonce,
//     the PKCE S256 challenge (never "plain") and the redirect URI;
//   - [Provider.Exchange] redeems the code at the token endpoint with the
//     PKCE verifier and the same redirect URI, then verifies the returned ID
//     token: signature from the provider's JWKS with an asymmetric algorithm
//     only, issuer, audience equal to [Config.ClientID] (and no other
//     audience), expiry.
//
// The native flow (pattern B) is [Provider.VerifyIDToken]: the app obtained an
// ID token with the provider's SDK and posts it; it is verified like the
// web flow's token, except that its audience may be ClientID or any of
// [Config.NativeClientIDs].
//
// # What it leaves to the caller
//
// The auth service keeps state, nonce and PKCE verifier in a short-lived
// server-side record, checks state before calling Exchange, checks
// [auth.IDClaims.Nonce] afterwards, checks redirect URIs with
// [Provider.RedirectURIAllowed] before building the URL, and maps users by
// issuer and subject, never by email.
//
// # Errors
//
// Every error from Exchange and VerifyIDToken, and every error New gets from
// the provider, goes through one translation function: a refused code or
// verifier or a token that does not verify matches [auth.ErrOIDCFailed]; a
// network error, a timeout, or a provider answering 5xx or 429 matches
// [auth.ErrProviderUnavailable]. The cause is wrapped for logs; its text never
// contains the client secret, the code, the verifier or a token. Exchange
// also returns [auth.ErrInvalidRedirectURI] for a redirect URI that is not in
// [Config.RedirectURIs], before contacting the provider. Configuration
// mistakes are plain errors that say how to fix them.
//
// The package never reads environment variables or files: the host passes a
// [Config].
package oidc
