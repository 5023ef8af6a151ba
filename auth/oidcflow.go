package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// OIDCAuthorization starts the web authorization-code flow: send the
// browser to URL; the provider returns it to the redirect URI with code and
// state, which the client posts to CompleteOIDC.
type OIDCAuthorization struct {
	URL       string
	State     string
	ExpiresAt time.Time
}

// oidcTransaction is what BeginOIDC keeps under the state until the
// callback, single use.
type oidcTransaction struct {
	Provider    string    `json:"provider"`
	RedirectURI string    `json:"redirect_uri"`
	Nonce       string    `json:"nonce"`
	Verifier    string    `json:"verifier"`
	LinkUser    uuid.UUID `json:"link_user"`
}

// randomString returns 256 random bits, base64url: valid as OAuth state,
// OIDC nonce and PKCE verifier (43 characters).
func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// pkceChallenge is the S256 code challenge of a verifier (RFC 7636).
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s *Service) provider(name string) (IdentityProvider, error) {
	p, ok := s.providers[name]
	if !ok {
		return nil, ErrProviderNotFound
	}
	return p, nil
}

// BeginOIDC starts a sign-in (linkTo is uuid.Nil) or a link of a provider
// to the account linkTo, through the web authorization-code flow with PKCE
// (S256 only). The redirect URI must be registered for the provider,
// compared exactly. State, nonce and verifier are bound to the transaction,
// which expires after Config.OIDCTransactionTTL and can be completed once.
func (s *Service) BeginOIDC(ctx context.Context, provider, redirectURI string, linkTo uuid.UUID) (OIDCAuthorization, error) {
	p, err := s.provider(provider)
	if err != nil {
		return OIDCAuthorization{}, err
	}
	if !p.RedirectURIAllowed(redirectURI) {
		return OIDCAuthorization{}, ErrInvalidRedirectURI
	}
	tx := oidcTransaction{Provider: provider, RedirectURI: redirectURI, Nonce: randomString(), Verifier: randomString(), LinkUser: linkTo}
	state := randomString()
	raw, _ := json.Marshal(tx)
	ttl := s.cfg.OIDCTransactionTTL
	if err := s.onetime.PutOnce(ctx, "oidc:tx:"+state, raw, ttl); err != nil {
		return OIDCAuthorization{}, fmt.Errorf("auth: keep OIDC transaction: %w", err)
	}
	return OIDCAuthorization{
		URL:       p.AuthCodeURL(state, tx.Nonce, pkceChallenge(tx.Verifier), redirectURI),
		State:     state,
		ExpiresAt: s.now().Add(ttl),
	}, nil
}

// OIDCResult is the outcome of a provider sign-in or link.
type OIDCResult struct {
	User User
	// Tokens are set for a sign-in, empty for a link.
	Tokens TokenPair
	// Created is true when the sign-in created the account.
	Created bool
	// Linked is true when the identity was linked to an existing account.
	Linked bool
}

// CompleteOIDC finishes the web flow with the code and state the provider
// returned. The state must name a live transaction for this provider (it is
// consumed, so a replayed callback fails), the code is exchanged with the
// transaction's PKCE verifier and redirect URI, and the ID token's nonce
// must equal the transaction's. Failures return an error matching
// ErrOIDCFailed (or ErrProviderUnavailable) and are audited.
func (s *Service) CompleteOIDC(ctx context.Context, provider, state, code string) (OIDCResult, error) {
	p, err := s.provider(provider)
	if err != nil {
		return OIDCResult{}, err
	}
	if len(state) > 128 || len(code) > 2048 || state == "" || code == "" {
		return OIDCResult{}, s.oidcFailure(ctx, provider, "malformed_callback", ErrOIDCFailed)
	}
	raw, ok, err := s.onetime.Take(ctx, "oidc:tx:"+state)
	if err != nil {
		return OIDCResult{}, err
	}
	var tx oidcTransaction
	if !ok || json.Unmarshal(raw, &tx) != nil || tx.Provider != provider {
		return OIDCResult{}, s.oidcFailure(ctx, provider, "unknown_state", ErrOIDCFailed.WithMessage("the sign-in expired or was already completed; start again"))
	}
	claims, err := p.Exchange(ctx, code, tx.Verifier, tx.RedirectURI)
	if err != nil {
		return OIDCResult{}, s.oidcFailure(ctx, provider, "exchange_failed", err)
	}
	if subtle.ConstantTimeCompare([]byte(claims.Nonce), []byte(tx.Nonce)) != 1 {
		return OIDCResult{}, s.oidcFailure(ctx, provider, "nonce_mismatch", ErrOIDCFailed)
	}
	return s.signInWithIdentity(ctx, p, claims, tx.LinkUser)
}

// OIDCNonce issues a nonce for the native flow: the app passes it to the
// provider's SDK, which puts it in the ID token; SignInWithIDToken accepts
// each issued nonce once, within Config.OIDCTransactionTTL.
func (s *Service) OIDCNonce(ctx context.Context, provider string) (string, time.Time, error) {
	if _, err := s.provider(provider); err != nil {
		return "", time.Time{}, err
	}
	nonce := randomString()
	ttl := s.cfg.OIDCTransactionTTL
	if err := s.onetime.PutOnce(ctx, nonceKey(provider, nonce), []byte{1}, ttl); err != nil {
		return "", time.Time{}, fmt.Errorf("auth: keep OIDC nonce: %w", err)
	}
	return nonce, s.now().Add(ttl), nil
}

func nonceKey(provider, nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return "oidc:nonce:" + provider + ":" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// SignInWithIDToken is the native flow: the app signed in with the
// provider's SDK and posts the ID token. The token is verified (signature,
// issuer, audience among the provider's client ids, expiry) and its nonce
// must be one OIDCNonce issued and not yet used. linkTo links instead of
// signing in, as in BeginOIDC.
func (s *Service) SignInWithIDToken(ctx context.Context, provider, idToken string, linkTo uuid.UUID) (OIDCResult, error) {
	p, err := s.provider(provider)
	if err != nil {
		return OIDCResult{}, err
	}
	if idToken == "" || len(idToken) > 16<<10 {
		return OIDCResult{}, s.oidcFailure(ctx, provider, "malformed_token", ErrOIDCFailed)
	}
	claims, err := p.VerifyIDToken(ctx, idToken)
	if err != nil {
		return OIDCResult{}, s.oidcFailure(ctx, provider, "token_invalid", err)
	}
	if claims.Nonce == "" {
		return OIDCResult{}, s.oidcFailure(ctx, provider, "nonce_missing", ErrOIDCFailed)
	}
	if _, ok, err := s.onetime.Take(ctx, nonceKey(provider, claims.Nonce)); err != nil {
		return OIDCResult{}, err
	} else if !ok {
		return OIDCResult{}, s.oidcFailure(ctx, provider, "nonce_unknown_or_used", ErrOIDCFailed.WithMessage("the ID token's nonce was not issued here or was already used"))
	}
	return s.signInWithIdentity(ctx, p, claims, linkTo)
}

// signInWithIdentity signs in the account linked to the verified identity,
// links it to linkTo, or creates an account for it. It never links by
// email: an identity whose verified email belongs to an existing account
// gets ErrLinkRequired.
func (s *Service) signInWithIdentity(ctx context.Context, p IdentityProvider, c IDClaims, linkTo uuid.UUID) (OIDCResult, error) {
	method := "oidc:" + p.Name()
	ident, err := s.idents.IdentityBySubject(ctx, c.Issuer, c.Subject)
	switch {
	case err == nil:
		if linkTo != uuid.Nil {
			if ident.UserID == linkTo {
				u, err := s.users.UserByID(ctx, linkTo)
				return OIDCResult{User: u, Linked: true}, err
			}
			return OIDCResult{}, s.oidcFailure(ctx, p.Name(), "identity_linked_elsewhere", ErrIdentityLinked)
		}
		u, err := s.users.UserByID(ctx, ident.UserID)
		if err != nil {
			return OIDCResult{}, err
		}
		pair, _, err := s.startSession(ctx, u, method)
		if err != nil {
			return OIDCResult{}, err
		}
		s.record(ctx, AuditEvent{ActorID: u.ID, Action: AuditOIDCLogin, TargetType: "user", TargetID: u.ID.String(),
			Details: map[string]string{"provider": p.Name(), "session": pair.SessionID.String()}})
		return OIDCResult{User: u, Tokens: pair}, nil
	case !errors.Is(err, ErrIdentityNotFound):
		return OIDCResult{}, err
	}

	now := s.now().UTC().Truncate(time.Microsecond)
	newIdent := Identity{Issuer: c.Issuer, Subject: c.Subject, Provider: p.Name(), Email: c.Email, CreatedAt: now}
	if linkTo != uuid.Nil {
		newIdent.UserID = linkTo
		if err := s.idents.LinkIdentity(ctx, newIdent); err != nil {
			return OIDCResult{}, err
		}
		u, err := s.users.UserByID(ctx, linkTo)
		if err != nil {
			return OIDCResult{}, err
		}
		s.record(ctx, AuditEvent{ActorID: linkTo, Action: AuditIdentityLinked, TargetType: "user", TargetID: linkTo.String(),
			Details: map[string]string{"provider": p.Name()}})
		return OIDCResult{User: u, Linked: true}, nil
	}

	if !c.EmailVerified || c.Email == "" {
		return OIDCResult{}, s.oidcFailure(ctx, p.Name(), "no_verified_email",
			ErrOIDCFailed.WithMessage("the identity provider did not share a verified email address"))
	}
	email, err := NormalizeEmail(c.Email)
	if err != nil {
		return OIDCResult{}, s.oidcFailure(ctx, p.Name(), "bad_email", ErrOIDCFailed.WithMessage("the identity provider's email address is not usable"))
	}
	if _, err := s.users.UserByEmail(ctx, email); err == nil {
		return OIDCResult{}, s.oidcFailure(ctx, p.Name(), "link_required", ErrLinkRequired)
	} else if !errors.Is(err, ErrUserNotFound) {
		return OIDCResult{}, err
	}
	if !boolOr(s.cfg.AllowOIDCSignUp, true) {
		return OIDCResult{}, s.oidcFailure(ctx, p.Name(), "sign_up_closed", errRegistrationClosed)
	}
	u, err := NewUser(email, RoleUser, DefaultTier, now)
	if err != nil {
		return OIDCResult{}, err
	}
	if name, problem := normalizeDisplayName(c.Name); problem == "" {
		u.Profile.DisplayName = name
	}
	newIdent.UserID = u.ID
	if err := s.users.CreateAccount(ctx, NewAccount{User: u, Identity: &newIdent}); err != nil {
		if errors.Is(err, ErrEmailTaken) {
			return OIDCResult{}, ErrLinkRequired
		}
		return OIDCResult{}, err
	}
	s.accountCreated(ctx, u)
	pair, _, err := s.startSession(ctx, u, method)
	if err != nil {
		return OIDCResult{}, err
	}
	s.record(ctx, AuditEvent{ActorID: u.ID, Action: AuditRegister, TargetType: "user", TargetID: u.ID.String(),
		Details: map[string]string{"method": method, "session": pair.SessionID.String()}})
	return OIDCResult{User: u, Tokens: pair, Created: true}, nil
}

// oidcFailure audits a failed provider sign-in and returns err.
func (s *Service) oidcFailure(ctx context.Context, provider, reason string, err error) error {
	s.record(ctx, AuditEvent{Action: AuditOIDCFailure, TargetType: "provider", TargetID: provider,
		Outcome: OutcomeFailure, Reason: reason})
	return err
}
