// Package oidctest runs a real OpenID Connect provider in-process
// (github.com/oauth2-proxy/mockoidc) and plays the browser and the mobile
// app against it, so that tests of sign-in with a provider run without a
// network. Host applications can use it in their own tests.
package oidctest

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
	"golang.org/x/oauth2"

	"github.com/adshare/adshare/auth/oidc"
)

// NativeClientID is an extra audience the provider's Config accepts for
// ID tokens obtained by a native app.
const NativeClientID = "ios-app"

// Server is a running provider. Its embedded MockOIDC gives access to the
// keys, the clock and error injection.
type Server struct {
	*mockoidc.MockOIDC
}

// Start runs a provider until tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		tb.Fatalf("oidctest: start mockoidc: %v", err)
	}
	tb.Cleanup(func() { _ = m.Shutdown() })
	return &Server{MockOIDC: m}
}

// Config returns an adapter configuration for this provider, named name,
// accepting the given redirect URIs for the web flow and NativeClientID for
// native ID tokens.
func (s *Server) Config(name string, redirectURIs ...string) oidc.Config {
	return oidc.Config{
		Name: name, IssuerURL: s.Issuer(), ClientID: s.ClientID, ClientSecret: s.ClientSecret,
		RedirectURIs: redirectURIs, NativeClientIDs: []string{NativeClientID},
		// mockoidc reads the client secret from the form body only.
		TokenAuthMethod: oidc.TokenAuthClientSecretPost,
	}
}

// Provider discovers the provider through the adapter with Config(name,
// redirectURIs...).
func (s *Server) Provider(tb testing.TB, name string, redirectURIs ...string) *oidc.Provider {
	tb.Helper()
	p, err := oidc.New(tb.Context(), s.Config(name, redirectURIs...))
	if err != nil {
		tb.Fatalf("oidctest: discover: %v", err)
	}
	return p
}

// QueueUser makes the next sign-in at the provider be this user.
func (s *Server) QueueUser(subject, email string, emailVerified bool) {
	s.MockOIDC.QueueUser(&mockoidc.MockUser{Subject: subject, Email: email, EmailVerified: emailVerified, PreferredUsername: subject})
}

// noRedirects is a client that stops at the provider's redirect.
var noRedirects = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Browse plays the browser: it opens an authorization URL, lets the
// provider sign the queued user in, and returns the redirect it answers
// with (redirect URI, code and state).
func Browse(tb testing.TB, authURL string) (redirect *url.URL, code, state string) {
	tb.Helper()
	resp, err := noRedirects.Get(authURL)
	if err != nil {
		tb.Fatalf("oidctest: authorize: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		tb.Fatalf("oidctest: authorize answered %s, want 302", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		tb.Fatalf("oidctest: redirect: %v", err)
	}
	return loc, loc.Query().Get("code"), loc.Query().Get("state")
}

// NativeIDToken plays the mobile app: it signs the queued user in with its
// own client and PKCE, passing nonce to the provider, and returns the raw ID
// token (audience: the provider's client id).
func (s *Server) NativeIDToken(tb testing.TB, nonce string) string {
	tb.Helper()
	conf := &oauth2.Config{
		ClientID: s.ClientID, ClientSecret: s.ClientSecret, RedirectURL: "com.adshare.app:/callback",
		Endpoint: oauth2.Endpoint{AuthURL: s.AuthorizationEndpoint(), TokenURL: s.TokenEndpoint(), AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   []string{"openid", "email"},
	}
	verifier := oauth2.GenerateVerifier()
	_, code, _ := Browse(tb, conf.AuthCodeURL("native", oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce)))
	tok, err := conf.Exchange(tb.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		tb.Fatalf("oidctest: exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		tb.Fatal("oidctest: the provider returned no id_token")
	}
	return raw
}

// IDTokenClaims returns the claims of a valid ID token from this provider
// for subject and audience, which tests then change (to forge one).
func (s *Server) IDTokenClaims(subject, email, nonce string, audience ...string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": s.Issuer(), "sub": subject, "aud": audience, "email": email, "email_verified": true,
		"nonce": nonce, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// SignIDToken signs claims with the provider's own key, as it would.
func (s *Server) SignIDToken(tb testing.TB, claims jwt.MapClaims) string {
	tb.Helper()
	raw, err := s.Keypair.SignJWT(claims)
	if err != nil {
		tb.Fatalf("oidctest: sign: %v", err)
	}
	return raw
}
