package oidc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/auth/oidc"
)

const redirectURI = "https://app.example.com/auth/oidc/mock/callback"

// testBundle is one test's provider: a fresh mockoidc server and a Config
// pointing at it.
type testBundle struct {
	m   *mockoidc.MockOIDC
	cfg oidc.Config
}

// setup starts a fresh mockoidc server for t and returns a Config for it.
// mockoidc wants the client secret in the form body, although its
// discovery document also advertises client_secret_basic.
func setup(t *testing.T) *testBundle {
	t.Helper()
	m, err := mockoidc.Run()
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Shutdown() })
	return &testBundle{
		m: m,
		cfg: oidc.Config{
			Name:            "mock",
			IssuerURL:       m.Issuer(),
			ClientID:        m.ClientID,
			ClientSecret:    m.ClientSecret,
			RedirectURIs:    []string{redirectURI},
			TokenAuthMethod: oidc.TokenAuthClientSecretPost,
		},
	}
}

// provider runs discovery against the bundle's server with b.cfg.
func (b *testBundle) provider(t *testing.T) *oidc.Provider {
	t.Helper()
	p, err := oidc.New(t.Context(), b.cfg)
	require.NoError(t, err)
	return p
}

// flow is a started authorization-code flow: what the auth service keeps,
// and the code the browser brought back.
type flow struct {
	state, nonce, verifier, code string
}

// startFlow builds the authorization URL with p, lets mockoidc "sign the
// user in" and returns the code from the redirect.
func startFlow(t *testing.T, p *oidc.Provider) flow {
	t.Helper()
	f := flow{state: randomString(t), nonce: randomString(t), verifier: oauth2.GenerateVerifier()}
	authURL := p.AuthCodeURL(f.state, f.nonce, oauth2.S256ChallengeFromVerifier(f.verifier), redirectURI)
	var state string
	f.code, state = authorize(t, authURL)
	require.Equal(t, f.state, state, "mockoidc echoes state")
	return f
}

// authorize GETs authURL without following the redirect and returns the
// code and state from the Location header.
func authorize(t *testing.T, authURL string) (code, state string) {
	t.Helper()
	client := &http.Client{
		Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, authURL, nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode, "authorize answered %s", resp.Status)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(loc.String(), redirectURI+"?"), "redirected to %s", loc)
	code = loc.Query().Get("code")
	require.NotEmpty(t, code)
	return code, loc.Query().Get("state")
}

func randomString(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(tb, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

// namedUser is a mockoidc user whose ID token also carries "name", which
// mockoidc.MockUser does not set.
type namedUser struct {
	*mockoidc.MockUser
	Name string
}

func (u *namedUser) Claims(scopes []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	c, err := u.MockUser.Claims(scopes, base)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var m jwt.MapClaims
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	m["name"] = u.Name
	return m, nil
}

// nativeIDToken plays a native app: it signs in at mockoidc with its own
// PKCE flow and returns the raw ID token (audience m.ClientID).
func nativeIDToken(t *testing.T, m *mockoidc.MockOIDC, nonce string) string {
	t.Helper()
	conf := &oauth2.Config{
		ClientID:     m.ClientID,
		ClientSecret: m.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   m.AuthorizationEndpoint(),
			TokenURL:  m.TokenEndpoint(),
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: redirectURI,
		Scopes:      []string{"openid", "email"},
	}
	verifier := oauth2.GenerateVerifier()
	code, _ := authorize(t, conf.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce)))
	tok, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	raw, _ := tok.Extra("id_token").(string)
	require.NotEmpty(t, raw)
	return raw
}

// claims returns ID token claims that verify against m, except for what the
// test overrides.
func claims(m *mockoidc.MockOIDC, aud ...string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss":   m.Issuer(),
		"sub":   "forged-subject",
		"aud":   aud,
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(10 * time.Minute).Unix(),
		"nonce": "n",
	}
}

// requireOIDCFailed asserts err matches auth.ErrOIDCFailed and not the
// unavailable class, and that its text holds none of the secrets.
func requireOIDCFailed(t *testing.T, err error, secrets ...string) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, auth.ErrOIDCFailed)
	require.NotErrorIs(t, err, auth.ErrProviderUnavailable)
	for _, s := range secrets {
		require.NotContains(t, err.Error(), s)
	}
}

func requireUnavailable(t *testing.T, err error, secrets ...string) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, auth.ErrProviderUnavailable)
	require.NotErrorIs(t, err, auth.ErrOIDCFailed)
	for _, s := range secrets {
		require.NotContains(t, err.Error(), s)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	valid := oidc.Config{
		Name:         "google",
		IssuerURL:    "https://accounts.example.com",
		ClientID:     "web-client",
		ClientSecret: "s3cr3t-value-xyz",
		RedirectURIs: []string{redirectURI},
	}
	tests := []struct {
		description string
		change      func(*oidc.Config)
		wantErr     string
	}{
		{"name missing", func(c *oidc.Config) { c.Name = "" }, "Config.Name"},
		{"name upper case", func(c *oidc.Config) { c.Name = "Google" }, "Config.Name"},
		{"name with slash", func(c *oidc.Config) { c.Name = "a/b" }, "Config.Name"},
		{"name with leading dash", func(c *oidc.Config) { c.Name = "-x" }, "Config.Name"},
		{"name too long", func(c *oidc.Config) { c.Name = strings.Repeat("a", 64) }, "Config.Name"},
		{"issuer missing", func(c *oidc.Config) { c.IssuerURL = "" }, "Config.IssuerURL is required"},
		{"issuer over http", func(c *oidc.Config) { c.IssuerURL = "http://accounts.example.com" }, "https"},
		{"issuer relative", func(c *oidc.Config) { c.IssuerURL = "accounts.example.com" }, "absolute"},
		{"issuer with query", func(c *oidc.Config) { c.IssuerURL = "https://a.example.com/?x=1" }, "query or fragment"},
		{"client id missing", func(c *oidc.Config) { c.ClientID = "" }, "Config.ClientID"},
		{"empty native client id", func(c *oidc.Config) { c.NativeClientIDs = []string{"ios", ""} }, "NativeClientIDs[1]"},
		{"redirect relative", func(c *oidc.Config) { c.RedirectURIs = []string{"/callback"} }, "not absolute"},
		{"redirect with fragment", func(c *oidc.Config) { c.RedirectURIs = []string{redirectURI + "#x"} }, "fragment"},
		{"redirect over http", func(c *oidc.Config) { c.RedirectURIs = []string{"http://app.example.com/cb"} }, "https"},
		{"scopes without openid", func(c *oidc.Config) { c.Scopes = []string{"email"} }, "openid"},
		{"scope with space", func(c *oidc.Config) { c.Scopes = []string{"openid email"} }, "Scopes[0]"},
		{"unknown auth method", func(c *oidc.Config) { c.TokenAuthMethod = "private_key_jwt" }, "TokenAuthMethod"},
		{"basic without secret", func(c *oidc.Config) {
			c.ClientSecret = ""
			c.TokenAuthMethod = oidc.TokenAuthClientSecretBasic
		}, "needs a ClientSecret"},
		{"negative timeout", func(c *oidc.Config) { c.Timeout = -time.Second }, "Config.Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			tt.change(&cfg)
			p, err := oidc.New(t.Context(), cfg)
			require.Nil(t, p)
			require.ErrorContains(t, err, tt.wantErr)
			// Misuse is not a provider failure.
			require.NotErrorIs(t, err, auth.ErrOIDCFailed)
			require.NotErrorIs(t, err, auth.ErrProviderUnavailable)
			require.NotContains(t, err.Error(), "s3cr3t-value-xyz")
		})
	}

	t.Run("loopback http accepted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.cfg.RedirectURIs = []string{"http://127.0.0.1:8080/cb", "http://localhost/cb", "com.example.app:/oauth"}
		p := b.provider(t)
		require.Equal(t, "mock", p.Name())
	})
}

func TestNewRefusesWrongIssuer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		description string
		issuer      func(m *mockoidc.MockOIDC) string
	}{
		{"trailing slash", func(m *mockoidc.MockOIDC) string { return m.Issuer() + "/" }},
		{"other host name for the same server", func(m *mockoidc.MockOIDC) string {
			return strings.Replace(m.Issuer(), "127.0.0.1", "localhost", 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.cfg.IssuerURL = tt.issuer(b.m)
			p, err := oidc.New(t.Context(), b.cfg)
			require.Nil(t, p)
			requireOIDCFailed(t, err, b.m.ClientSecret)
			var mismatch *gooidc.IssuerMismatchError
			require.ErrorAs(t, err, &mismatch)
			require.Equal(t, b.m.Issuer(), mismatch.Discovered)
		})
	}
}

func TestNewRefusesProviderWithoutS256(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.m.CodeChallengeMethodsSupported = []string{"plain"}
	p, err := oidc.New(t.Context(), b.cfg)
	require.Nil(t, p)
	requireOIDCFailed(t, err)
	require.ErrorContains(t, err, "S256")
}

func TestNewProviderUnavailable(t *testing.T) {
	t.Parallel()

	t.Run("discovery answers 500", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.m.QueueError(&mockoidc.ServerError{Code: http.StatusInternalServerError, Error: mockoidc.InternalServerError, Description: "boom"})
		_, err := oidc.New(t.Context(), b.cfg)
		requireUnavailable(t, err)
	})

	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		cfg := setup(t).cfg
		cfg.IssuerURL = "http://" + addr + "/oidc"
		_, err = oidc.New(t.Context(), cfg)
		requireUnavailable(t, err)
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		cfg := setup(t).cfg
		cfg.IssuerURL = srv.URL
		cfg.Timeout = 100 * time.Millisecond
		start := time.Now()
		_, err := oidc.New(t.Context(), cfg)
		requireUnavailable(t, err)
		require.Less(t, time.Since(start), 5*time.Second)
	})
}

func TestRedirectURIAllowed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cfg.RedirectURIs = []string{redirectURI, "http://127.0.0.1:8080/cb"}
	p := b.provider(t)

	tests := []struct {
		uri  string
		want bool
	}{
		{redirectURI, true},
		{"http://127.0.0.1:8080/cb", true},
		{redirectURI + "/", false},
		{strings.TrimSuffix(redirectURI, "/callback") + "/Callback", false},
		{"https://APP.example.com/auth/oidc/mock/callback", false},
		{"HTTPS://app.example.com/auth/oidc/mock/callback", false},
		{redirectURI + "?x=1", false},
		{redirectURI + "?", false},
		{redirectURI + "#", false},
		{"https://app.example.com:443/auth/oidc/mock/callback", false},
		{"http://app.example.com/auth/oidc/mock/callback", false},
		{"https://app.example.com/auth/oidc/mock/callback/../callback", false},
		{"https://app.example.com.evil.example/auth/oidc/mock/callback", false},
		{" " + redirectURI, false},
		{"http://localhost:8080/cb", false},
		{"", false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, p.RedirectURIAllowed(tt.uri), "%q", tt.uri)
	}
}

func TestAuthCodeURL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.provider(t)

	verifier := oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])

	got, err := url.Parse(p.AuthCodeURL("the-state", "the-nonce", challenge, redirectURI))
	require.NoError(t, err)
	require.Equal(t, b.m.AuthorizationEndpoint(), got.Scheme+"://"+got.Host+got.Path)
	q := got.Query()
	require.Equal(t, "code", q.Get("response_type"))
	require.Equal(t, b.m.ClientID, q.Get("client_id"))
	require.Equal(t, redirectURI, q.Get("redirect_uri"))
	require.Equal(t, "openid email profile", q.Get("scope"))
	require.Equal(t, "the-state", q.Get("state"))
	require.Equal(t, "the-nonce", q.Get("nonce"))
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Equal(t, challenge, q.Get("code_challenge"))
	require.Equal(t, oauth2.S256ChallengeFromVerifier(verifier), q.Get("code_challenge"))
	require.Len(t, q["code_challenge_method"], 1)
	require.NotContains(t, got.String(), verifier, "the verifier never leaves the server")
	require.NotContains(t, got.String(), b.m.ClientSecret)
}

func TestExchange(t *testing.T) {
	t.Parallel()

	t.Run("happy path returns the queued user's claims and the nonce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		b.m.QueueUser(&namedUser{
			MockUser: &mockoidc.MockUser{Subject: "user-42", Email: "ada@example.com", EmailVerified: true},
			Name:     "Ada Lovelace",
		})
		f := startFlow(t, p)
		before := time.Now().Add(-time.Second).Truncate(time.Second)

		got, err := p.Exchange(t.Context(), f.code, f.verifier, redirectURI)
		require.NoError(t, err)
		require.Equal(t, b.m.Issuer(), got.Issuer)
		require.Equal(t, "user-42", got.Subject)
		require.Equal(t, []string{b.m.ClientID}, got.Audience)
		require.Equal(t, "ada@example.com", got.Email)
		require.True(t, got.EmailVerified)
		require.Equal(t, "Ada Lovelace", got.Name)
		require.Equal(t, f.nonce, got.Nonce)
		require.False(t, got.IssuedAt.Before(before), "iat %v", got.IssuedAt)
		require.Equal(t, b.m.AccessTTL, got.ExpiresAt.Sub(got.IssuedAt))
	})

	t.Run("default user, auto-detected token auth method", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.cfg.TokenAuthMethod = oidc.TokenAuthAuto
		p := b.provider(t)
		f := startFlow(t, p)
		got, err := p.Exchange(t.Context(), f.code, f.verifier, redirectURI)
		require.NoError(t, err)
		def := mockoidc.DefaultUser()
		require.Equal(t, def.Subject, got.Subject)
		require.Equal(t, def.Email, got.Email)
		require.Equal(t, f.nonce, got.Nonce)
	})

	t.Run("wrong PKCE verifier refused, and it burns the code", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		f := startFlow(t, p)
		wrong := oauth2.GenerateVerifier()

		_, err := p.Exchange(t.Context(), f.code, wrong, redirectURI)
		requireOIDCFailed(t, err, f.code, wrong, b.m.ClientSecret)
		var rerr *oauth2.RetrieveError
		require.ErrorAs(t, err, &rerr)
		require.Equal(t, "invalid_grant", rerr.ErrorCode)
		require.ErrorContains(t, err, "Code challenge did not match")

		_, err = p.Exchange(t.Context(), f.code, f.verifier, redirectURI)
		requireOIDCFailed(t, err, f.code, f.verifier)
	})

	t.Run("missing or malformed verifier refused before the provider is asked", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		f := startFlow(t, p)
		for _, v := range []string{"", "short", strings.Repeat("a", 129), strings.Repeat("a", 42) + "+"} {
			_, err := p.Exchange(t.Context(), f.code, v, redirectURI)
			requireOIDCFailed(t, err, f.code)
			require.ErrorContains(t, err, "verifier")
		}
		// The code was never sent, so it still works.
		_, err := p.Exchange(t.Context(), f.code, f.verifier, redirectURI)
		require.NoError(t, err)
	})

	t.Run("code replay refused, code redacted from the error", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		f := startFlow(t, p)

		_, err := p.Exchange(t.Context(), f.code, f.verifier, redirectURI)
		require.NoError(t, err)

		_, err = p.Exchange(t.Context(), f.code, f.verifier, redirectURI)
		requireOIDCFailed(t, err, f.code, f.verifier, b.m.ClientSecret)
		// mockoidc answers `Invalid code: <code>`.
		require.ErrorContains(t, err, "Invalid code: [REDACTED]")
	})

	t.Run("unknown and empty code refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		verifier := oauth2.GenerateVerifier()
		_, err := p.Exchange(t.Context(), "made-up-code", verifier, redirectURI)
		requireOIDCFailed(t, err, "made-up-code")
		_, err = p.Exchange(t.Context(), "", verifier, redirectURI)
		requireOIDCFailed(t, err)
	})

	t.Run("redirect URI not registered", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		f := startFlow(t, p)
		_, err := p.Exchange(t.Context(), f.code, f.verifier, redirectURI+"/")
		require.ErrorIs(t, err, auth.ErrInvalidRedirectURI)
	})

	t.Run("wrong client secret refused, secret redacted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.cfg.ClientSecret = "not-the-mockoidc-secret"
		p := b.provider(t)
		f := startFlow(t, p)
		_, err := p.Exchange(t.Context(), f.code, f.verifier, redirectURI)
		// mockoidc answers `Invalid client secret: <secret>`.
		requireOIDCFailed(t, err, "not-the-mockoidc-secret", f.code, f.verifier)
	})

	t.Run("expired ID token refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		f := startFlow(t, p)
		// mockoidc mints with its clock: two hours ago, for ten minutes.
		b.m.FastForward(-2 * time.Hour)
		_, err := p.Exchange(t.Context(), f.code, f.verifier, redirectURI)
		requireOIDCFailed(t, err, f.code)
		var expired *gooidc.TokenExpiredError
		require.ErrorAs(t, err, &expired)
	})

	t.Run("no ID token in the response refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		verifier := oauth2.GenerateVerifier()
		authURL, err := url.Parse(p.AuthCodeURL("s", "n", oauth2.S256ChallengeFromVerifier(verifier), redirectURI))
		require.NoError(t, err)
		q := authURL.Query()
		q.Set("scope", "email profile") // a provider that ignores openid
		authURL.RawQuery = q.Encode()
		code, _ := authorize(t, authURL.String())

		_, err = p.Exchange(t.Context(), code, verifier, redirectURI)
		requireOIDCFailed(t, err, code)
		require.ErrorContains(t, err, "no id_token")
	})

	t.Run("provider answers 4xx with an OAuth error", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		f := startFlow(t, p)
		b.m.QueueError(&mockoidc.ServerError{Code: http.StatusBadRequest, Error: "invalid_grant", Description: "expired"})
		_, err := p.Exchange(t.Context(), f.code, f.verifier, redirectURI)
		requireOIDCFailed(t, err, f.code)
	})

	for _, status := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run("token endpoint answers "+http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			p := b.provider(t)
			f := startFlow(t, p)
			// The next request mockoidc serves is the token request.
			b.m.QueueError(&mockoidc.ServerError{Code: status, Error: mockoidc.InternalServerError, Description: "boom " + f.code})
			_, err := p.Exchange(t.Context(), f.code, f.verifier, redirectURI)
			requireUnavailable(t, err, f.code, f.verifier, b.m.ClientSecret)
		})
	}

	t.Run("provider down", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		f := startFlow(t, p)
		require.NoError(t, b.m.Shutdown())
		_, err := p.Exchange(t.Context(), f.code, f.verifier, redirectURI)
		requireUnavailable(t, err, f.code, f.verifier)
	})

	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		f := startFlow(t, p)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := p.Exchange(ctx, f.code, f.verifier, redirectURI)
		requireUnavailable(t, err)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestVerifyIDToken(t *testing.T) {
	t.Parallel()

	t.Run("other audience refused, accepted once it is a native client id", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		appToken := nativeIDToken(t, b.m, "app-nonce") // aud = mockoidc's client, playing the iOS app

		b.cfg.ClientID = "adshare-web"
		web := b.provider(t)
		_, err := web.VerifyIDToken(t.Context(), appToken)
		requireOIDCFailed(t, err, appToken)
		require.ErrorContains(t, err, "audience")

		b.cfg.NativeClientIDs = []string{"android-app", b.m.ClientID}
		withApp := b.provider(t)
		got, err := withApp.VerifyIDToken(t.Context(), appToken)
		require.NoError(t, err)
		require.Equal(t, b.m.Issuer(), got.Issuer)
		require.Equal(t, mockoidc.DefaultUser().Subject, got.Subject)
		require.Equal(t, []string{b.m.ClientID}, got.Audience)
		require.Equal(t, "app-nonce", got.Nonce)
		require.True(t, got.EmailVerified)
	})

	t.Run("web client id accepted too", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		got, err := p.VerifyIDToken(t.Context(), nativeIDToken(t, b.m, "n1"))
		require.NoError(t, err)
		require.Equal(t, "n1", got.Nonce)
	})

	t.Run("audiences and authorized party", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.cfg.ClientID = "web"
		b.cfg.NativeClientIDs = []string{"ios", "android"}
		p := b.provider(t)
		tests := []struct {
			description string
			aud         []string
			azp         string
			ok          bool
		}{
			{"web", []string{"web"}, "", true},
			{"ios", []string{"ios"}, "", true},
			{"web for android (Google style)", []string{"web"}, "android", true},
			{"two trusted audiences", []string{"web", "ios"}, "ios", true},
			{"untrusted extra audience", []string{"web", "someone-else"}, "web", false},
			{"untrusted only", []string{"someone-else"}, "", false},
			{"untrusted authorized party", []string{"web"}, "someone-else", false},
			{"no audience", []string{}, "", false},
			{"case differs", []string{"WEB"}, "", false},
		}
		for _, tt := range tests {
			c := claims(b.m, tt.aud...)
			if tt.azp != "" {
				c["azp"] = tt.azp
			}
			raw, err := b.m.Keypair.SignJWT(c)
			require.NoError(t, err)
			_, err = p.VerifyIDToken(t.Context(), raw)
			if tt.ok {
				require.NoError(t, err, tt.description)
			} else {
				requireOIDCFailed(t, err, raw)
			}
		}
	})

	t.Run("expired ID token refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.cfg.Now = b.m.Now
		p := b.provider(t)
		raw := nativeIDToken(t, b.m, "n")
		_, err := p.VerifyIDToken(t.Context(), raw)
		require.NoError(t, err)

		b.m.FastForward(2 * time.Hour) // past the ten-minute lifetime
		_, err = p.VerifyIDToken(t.Context(), raw)
		requireOIDCFailed(t, err, raw)
		var expired *gooidc.TokenExpiredError
		require.ErrorAs(t, err, &expired)
	})

	t.Run("wrong issuer refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		c := claims(b.m, b.m.ClientID)
		c["iss"] = "https://evil.example.com"
		raw, err := b.m.Keypair.SignJWT(c)
		require.NoError(t, err)
		_, err = p.VerifyIDToken(t.Context(), raw)
		requireOIDCFailed(t, err, raw)
		require.ErrorContains(t, err, "different provider")
	})

	t.Run("missing subject refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		c := claims(b.m, b.m.ClientID)
		delete(c, "sub")
		raw, err := b.m.Keypair.SignJWT(c)
		require.NoError(t, err)
		_, err = p.VerifyIDToken(t.Context(), raw)
		requireOIDCFailed(t, err, raw)
	})

	t.Run("signatures", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		kid, err := b.m.Keypair.KeyID()
		require.NoError(t, err)
		good := claims(b.m, b.m.ClientID)

		otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		otherEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		pubDER, err := x509.MarshalPKIXPublicKey(b.m.Keypair.PublicKey)
		require.NoError(t, err)

		sign := func(method jwt.SigningMethod, kid string, key any) string {
			tok := jwt.NewWithClaims(method, good)
			tok.Header["kid"] = kid
			raw, err := tok.SignedString(key)
			require.NoError(t, err)
			return raw
		}
		genuine := sign(jwt.SigningMethodRS256, kid, b.m.Keypair.PrivateKey)
		parts := strings.Split(genuine, ".")
		payload, err := json.Marshal(jwt.MapClaims{"iss": good["iss"], "sub": "someone-else", "aud": good["aud"], "exp": good["exp"]})
		require.NoError(t, err)

		tests := []struct {
			description string
			raw         string
		}{
			{"other RSA key, same kid", sign(jwt.SigningMethodRS256, kid, otherRSA)},
			{"other RSA key, unknown kid", sign(jwt.SigningMethodRS256, "other", otherRSA)},
			{"other EC key (ES256)", sign(jwt.SigningMethodES256, kid, otherEC)},
			{"HS256 keyed with the public key", sign(jwt.SigningMethodHS256, kid, pubDER)},
			{"alg none", sign(jwt.SigningMethodNone, kid, jwt.UnsafeAllowNoneSignatureType)},
			{"payload swapped", parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]},
			{"signature stripped", parts[0] + "." + parts[1] + "."},
			{"not a JWT", "not-a-jwt"},
			{"empty", ""},
		}
		for _, tt := range tests {
			_, err := p.VerifyIDToken(t.Context(), tt.raw)
			requireOIDCFailed(t, err)
			if tt.raw != "" {
				require.NotContains(t, err.Error(), tt.raw, tt.description)
			}
		}

		got, err := p.VerifyIDToken(t.Context(), genuine)
		require.NoError(t, err)
		require.Equal(t, "forged-subject", got.Subject)
	})

	t.Run("keys unavailable", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		raw, err := b.m.Keypair.SignJWT(claims(b.m, b.m.ClientID))
		require.NoError(t, err)
		// The first verification fetches the JWKS: make that answer 503.
		b.m.QueueError(&mockoidc.ServerError{Code: http.StatusServiceUnavailable, Error: "temporarily_unavailable"})
		_, err = p.VerifyIDToken(t.Context(), raw)
		requireUnavailable(t, err, raw)

		// Then the keys come back.
		_, err = p.VerifyIDToken(t.Context(), raw)
		require.NoError(t, err)
	})

	t.Run("keys unreachable", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.provider(t)
		raw, err := b.m.Keypair.SignJWT(claims(b.m, b.m.ClientID))
		require.NoError(t, err)
		require.NoError(t, b.m.Shutdown())
		_, err = p.VerifyIDToken(t.Context(), raw)
		requireUnavailable(t, err, raw)
	})
}

// TestErrorsKeepDomainKinds checks the translated errors stay comparable
// with errors.Is after ordinary wrapping by callers.
func TestErrorsKeepDomainKinds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.provider(t)
	_, err := p.VerifyIDToken(t.Context(), "x.y.z")
	wrapped := errors.Join(errors.New("login"), err)
	require.ErrorIs(t, wrapped, auth.ErrOIDCFailed)
}
