package oidc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/oauth2-proxy/mockoidc"
	"golang.org/x/oauth2"

	"github.com/adshare/adshare/auth/oidc"
)

// The web flow against a provider (here mockoidc on loopback, standing in
// for Google or Keycloak): discovery at start-up, the authorization URL
// with PKCE S256, then the code exchanged for verified claims. The auth
// service does this for /auth/oidc/{provider}/start and /callback, keeping
// state, nonce and verifier server-side.
func Example() {
	m, err := mockoidc.Run()
	if err != nil {
		panic(err)
	}
	defer m.Shutdown()
	const redirect = "https://app.example.com/auth/oidc/mock/callback"

	ctx := context.Background()
	p, err := oidc.New(ctx, oidc.Config{
		Name: "mock", IssuerURL: m.Issuer(), ClientID: m.ClientID, ClientSecret: m.ClientSecret,
		RedirectURIs:    []string{redirect},
		TokenAuthMethod: oidc.TokenAuthClientSecretPost, // what mockoidc expects
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Name(), p.RedirectURIAllowed(redirect), p.RedirectURIAllowed(redirect+"/"))

	verifier := oauth2.GenerateVerifier()
	authURL := p.AuthCodeURL("the-state", "the-nonce", oauth2.S256ChallengeFromVerifier(verifier), redirect)
	u, err := url.Parse(authURL)
	if err != nil {
		panic(err)
	}
	fmt.Println(u.Query().Get("code_challenge_method"), u.Query().Get("state"))

	// The browser signs in and comes back to the redirect URI with a code.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(authURL)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		panic(err)
	}
	claims, err := p.Exchange(ctx, back.Query().Get("code"), verifier, redirect)
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.Issuer == m.Issuer(), claims.Subject != "", claims.Nonce)
	// Output:
	// mock true false
	// S256 the-state
	// true true the-nonce
}
