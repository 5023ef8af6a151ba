package auth

import "github.com/adshare/adshare/internal/errs"

// Errors returned by this package and by its store interfaces. Compare with
// errors.Is; copies carrying details still match.
var (
	// ErrUserNotFound: no user has the given id or email.
	ErrUserNotFound = errs.New(errs.NotFound, "user_not_found", "user not found")
	// ErrEmailTaken: another account already uses this email.
	ErrEmailTaken = errs.New(errs.Conflict, "email_taken", "an account with this email already exists")
	// ErrUserExists: a user with this id already exists.
	ErrUserExists = errs.New(errs.Conflict, "user_exists", "user already exists")
	// ErrInvalidUser: the user's fields break a rule; the error carries field messages.
	ErrInvalidUser = errs.New(errs.Invalid, "invalid_user", "the user is not valid")
	// ErrInvalidProfile: a profile change breaks a rule; the error carries field messages.
	ErrInvalidProfile = errs.New(errs.Invalid, "invalid_profile", "the profile is not valid")
	// ErrWeakPassword: the new password breaks the password rules.
	ErrWeakPassword = errs.New(errs.Invalid, "weak_password", "the password does not meet the rules")

	// ErrInvalidCredentials: unknown email or wrong password; deliberately
	// the same error for both, so that answers do not reveal accounts.
	ErrInvalidCredentials = errs.New(errs.Unauthenticated, "invalid_credentials", "the email or password is wrong")
	// ErrNoPassword: the account signs in through an identity provider only.
	// Login returns ErrInvalidCredentials instead, to reveal nothing.
	ErrNoPassword = errs.New(errs.NotFound, "no_password", "the account has no password")
	// ErrTooManyAttempts: too many login attempts for this account or client; RetryAfter says when to retry.
	ErrTooManyAttempts = errs.New(errs.RateLimited, "too_many_attempts", "too many attempts; try again later")
	// ErrBusy: the server is at its limit of concurrent password hashes.
	ErrBusy = errs.New(errs.Unavailable, "busy", "the server is busy; try again shortly")
	// ErrLimiterUnavailable: the rate limiter cannot answer, and login fails closed.
	ErrLimiterUnavailable = errs.New(errs.Unavailable, "limiter_unavailable", "sign-in is temporarily unavailable; try again shortly")

	// ErrUnauthenticated: no access token, or one that is malformed, forged
	// or expired. The cause (kept for logs) says which.
	ErrUnauthenticated = errs.New(errs.Unauthenticated, "invalid_token", "a valid access token is required")
	// ErrAuthUnavailable: the revocation list cannot answer; requests fail closed.
	ErrAuthUnavailable = errs.New(errs.Unavailable, "auth_unavailable", "authentication is temporarily unavailable; try again shortly")
	// ErrTokenRevoked: the token's session was revoked (logout) or the
	// user's tokens were invalidated; refresh or sign in again.
	ErrTokenRevoked = errs.New(errs.Unauthenticated, "token_revoked", "the access token was revoked; refresh it or sign in again")
	// ErrForbidden: authenticated, but the role lacks the permission or the
	// resource is not the caller's.
	ErrForbidden = errs.New(errs.Forbidden, "forbidden", "you are not allowed to do this")

	// ErrInvalidGrant: the refresh token is unknown, used, expired or its
	// session revoked (OAuth 2.0's invalid_grant). The client must sign in.
	ErrInvalidGrant = errs.New(errs.Unauthenticated, "invalid_grant", "the refresh token is not valid; sign in again")
	// ErrSessionNotFound: no such session (or not the caller's).
	ErrSessionNotFound = errs.New(errs.NotFound, "session_not_found", "session not found")
	// ErrSessionRevoked: the session was revoked.
	ErrSessionRevoked = errs.New(errs.Unauthenticated, "session_revoked", "the session was revoked")
	// ErrSessionExpired: the session passed its idle or absolute lifetime.
	ErrSessionExpired = errs.New(errs.Unauthenticated, "session_expired", "the session expired")
	// ErrRefreshTokenUnknown: no refresh token has this hash.
	ErrRefreshTokenUnknown = errs.New(errs.Unauthenticated, "refresh_token_unknown", "unknown refresh token")
	// ErrSessionExists: a session with this id, or a refresh token with this hash, exists.
	ErrSessionExists = errs.New(errs.Conflict, "session_exists", "session already exists")

	// ErrTierNotFound: no tier has this name.
	ErrTierNotFound = errs.New(errs.NotFound, "tier_not_found", "no such tier")
	// ErrInvalidTiers: a host-supplied tier table breaks a rule.
	ErrInvalidTiers = errs.New(errs.Invalid, "invalid_tiers", "the tier table is not valid")
	// ErrInvalidTerms: the terms accepted are not the version in force.
	ErrInvalidTerms = errs.New(errs.Invalid, "invalid_terms_version", "these are not the terms in force")
	// ErrInvalidRole: no role has this name.
	ErrInvalidRole = errs.New(errs.Invalid, "invalid_role", "no such role")

	// ErrIdentityNotFound: no account is linked to this issuer and subject.
	ErrIdentityNotFound = errs.New(errs.NotFound, "identity_not_found", "identity not linked")
	// ErrIdentityLinked: the identity already belongs to an account.
	ErrIdentityLinked = errs.New(errs.Conflict, "identity_linked", "this identity is already linked to an account")
	// ErrLinkRequired: an account with the identity's email exists; sign in
	// to it and link the identity explicitly.
	ErrLinkRequired = errs.New(errs.Conflict, "link_required", "an account with this email exists; sign in and link this provider to it")
	// ErrProviderNotFound: no identity provider has this name.
	ErrProviderNotFound = errs.New(errs.NotFound, "provider_not_found", "no such identity provider")
	// ErrOIDCFailed: the provider's answer could not be verified (state,
	// code, PKCE verifier, nonce, ID token). The cause says which.
	ErrOIDCFailed = errs.New(errs.Unauthenticated, "oidc_failed", "sign-in with the identity provider failed")
	// ErrProviderUnavailable: the identity provider did not answer properly.
	ErrProviderUnavailable = errs.New(errs.Unavailable, "provider_unavailable", "the identity provider is not reachable; try again later")
	// ErrInvalidRedirectURI: the redirect URI is not registered for the provider.
	ErrInvalidRedirectURI = errs.New(errs.Invalid, "invalid_redirect_uri", "the redirect URI is not registered")

	// ErrOneTimeKeyExists: a one-time key is already held.
	ErrOneTimeKeyExists = errs.New(errs.Conflict, "one_time_key_exists", "the key is already in use")
)
