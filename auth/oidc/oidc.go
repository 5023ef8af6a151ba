package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/adshare/adshare/auth"
)

// signingAlgs is the allowlist of ID token signature algorithms: asymmetric
// only, so a provider's public key can never double as an HMAC secret, and
// never "none". The verifier uses the subset the provider advertises.
var signingAlgs = []string{
	gooidc.RS256, gooidc.RS384, gooidc.RS512,
	gooidc.PS256, gooidc.PS384, gooidc.PS512,
	gooidc.ES256, gooidc.ES384, gooidc.ES512,
	gooidc.EdDSA,
}

// Provider is one OpenID Connect provider, discovered at construction. It
// implements [auth.IdentityProvider] and is safe for concurrent use.
type Provider struct {
	name         string
	issuer       string
	clientID     string
	clientSecret string
	redirectURIs []string
	audiences    []string // ClientID, then NativeClientIDs
	timeout      time.Duration
	client       *http.Client

	oauth       *oauth2.Config
	webVerifier *gooidc.IDTokenVerifier // audience must contain ClientID
	anyVerifier *gooidc.IDTokenVerifier // audience checked by checkAudience
}

var _ auth.IdentityProvider = (*Provider)(nil)

// discovery holds the fields of the discovery document that go-oidc does
// not check for us.
type discovery struct {
	AuthURL                       string   `json:"authorization_endpoint"`
	TokenURL                      string   `json:"token_endpoint"`
	JWKSURL                       string   `json:"jwks_uri"`
	SigningAlgs                   []string `json:"id_token_signing_alg_values_supported"`
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported"`
}

// New validates cfg and runs OpenID Connect discovery at cfg.IssuerURL.
//
// It returns a plain error describing the fix when cfg is misconfigured; an
// error matching auth.ErrProviderUnavailable when the provider cannot be
// reached, times out or answers 5xx; and an error matching
// auth.ErrOIDCFailed when the discovery document is unusable: its issuer
// differs from cfg.IssuerURL (the cause is a *oidc.IssuerMismatchError from
// go-oidc), it lacks an endpoint, or it lists PKCE methods without S256.
// ctx bounds discovery only; keys are fetched later, when first needed.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}

	p := &Provider{
		name:         cfg.Name,
		issuer:       cfg.IssuerURL,
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		redirectURIs: cfg.RedirectURIs,
		audiences:    append([]string{cfg.ClientID}, cfg.NativeClientIDs...),
		timeout:      cfg.Timeout,
		client:       wrapClient(cfg.HTTPClient),
	}

	ctx, cancel := context.WithTimeout(p.clientContext(ctx), p.timeout)
	defer cancel()
	discovered, err := gooidc.NewProvider(ctx, cfg.IssuerURL)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery for provider %q at %s: %w", p.name, cfg.IssuerURL, translate(err, p.clientSecret))
	}
	var doc discovery
	if err := discovered.Claims(&doc); err != nil {
		return nil, fmt.Errorf("oidc: discovery for provider %q: %w", p.name, translate(err, p.clientSecret))
	}
	if err := doc.check(); err != nil {
		return nil, fmt.Errorf("oidc: discovery for provider %q at %s: %w", p.name, cfg.IssuerURL, translate(err))
	}

	endpoint := discovered.Endpoint()
	switch {
	case cfg.ClientSecret == "":
		// A public client: client_id in the body, no secret.
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	case cfg.TokenAuthMethod == TokenAuthClientSecretBasic:
		endpoint.AuthStyle = oauth2.AuthStyleInHeader
	case cfg.TokenAuthMethod == TokenAuthClientSecretPost:
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	default:
		endpoint.AuthStyle = oauth2.AuthStyleAutoDetect
	}
	p.oauth = &oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint:     endpoint,
		Scopes:       cfg.Scopes,
		// RedirectURL stays empty: each call passes its own, checked
		// against the allowlist.
	}

	// One key set, shared by both verifiers, fetched with our client. Its
	// context only carries the client (go-oidc ignores its cancellation).
	keys := &recordingKeySet{inner: gooidc.NewRemoteKeySet(p.clientContext(context.Background()), doc.JWKSURL)}
	algs := doc.signingAlgs()
	p.webVerifier = gooidc.NewVerifier(cfg.IssuerURL, keys, &gooidc.Config{
		ClientID:             cfg.ClientID,
		SupportedSigningAlgs: algs,
		Now:                  cfg.Now,
	})
	p.anyVerifier = gooidc.NewVerifier(cfg.IssuerURL, keys, &gooidc.Config{
		// The audience is checked against ClientID and NativeClientIDs
		// by checkAudience: go-oidc accepts a single client id only.
		SkipClientIDCheck:    true,
		SupportedSigningAlgs: algs,
		Now:                  cfg.Now,
	})
	return p, nil
}

// check reports a discovery document this package cannot work with.
func (d discovery) check() error {
	switch {
	case d.AuthURL == "":
		return errors.New("oidc: discovery document has no authorization_endpoint")
	case d.TokenURL == "":
		return errors.New("oidc: discovery document has no token_endpoint")
	case d.JWKSURL == "":
		return errors.New("oidc: discovery document has no jwks_uri")
	case len(d.CodeChallengeMethodsSupported) > 0 && !slices.Contains(d.CodeChallengeMethodsSupported, "S256"):
		return fmt.Errorf("oidc: provider supports PKCE methods %q but not S256, which adshare requires", d.CodeChallengeMethodsSupported)
	}
	return nil
}

// signingAlgs returns the algorithms to accept: those the provider
// advertises that are in the asymmetric allowlist, or the whole allowlist if
// it advertises none of them.
func (d discovery) signingAlgs() []string {
	var algs []string
	for _, a := range d.SigningAlgs {
		if slices.Contains(signingAlgs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		return slices.Clone(signingAlgs)
	}
	return algs
}

// clientContext returns ctx carrying p's HTTP client for go-oidc and oauth2.
func (p *Provider) clientContext(ctx context.Context) context.Context {
	return gooidc.ClientContext(ctx, p.client)
}

// Name returns the provider's name in URLs, [Config.Name].
func (p *Provider) Name() string { return p.name }

// RedirectURIAllowed reports whether uri equals one of [Config.RedirectURIs]
// byte for byte. There is no normalisation: a different case, a trailing
// slash, an added query or port all make it false.
func (p *Provider) RedirectURIAllowed(uri string) bool {
	return uri != "" && slices.Contains(p.redirectURIs, uri)
}

// AuthCodeURL returns the provider's authorization URL for the
// authorization-code flow with response_type=code, the configured scopes,
// state, nonce, redirect_uri and the PKCE challenge with
// code_challenge_method=S256. codeChallenge must be
// base64url(sha256(verifier)) without padding, as
// oauth2.S256ChallengeFromVerifier computes it; the plain method is never
// used. The caller checks redirectURI with RedirectURIAllowed first: this
// method cannot return an error, and Exchange refuses a URI that is not
// allowed.
func (p *Provider) AuthCodeURL(state, nonce, codeChallenge, redirectURI string) string {
	return p.oauth.AuthCodeURL(state,
		gooidc.Nonce(nonce),
		oauth2.SetAuthURLParam("redirect_uri", redirectURI),
		// What oauth2.S256ChallengeOption sets, from a challenge instead
		// of the verifier: the service keeps the verifier.
		oauth2.SetAuthURLParam("code_challenge", codeChallenge),
		oauth2.SetAuthURLParam("code_challenge_method", "S256"),
	)
}

// Exchange redeems code at the token endpoint, sending codeVerifier and
// redirectURI, then verifies the ID token in the response: signature with a
// key from the provider's JWKS and an asymmetric algorithm, issuer equal to
// [Config.IssuerURL], audience equal to [Config.ClientID] (and no other),
// expiry. It returns the token's claims, nonce included; the caller checks
// the nonce.
//
// It returns auth.ErrInvalidRedirectURI when redirectURI is not allowed
// (without contacting the provider); an error matching auth.ErrOIDCFailed
// when the code or verifier is missing or malformed, the provider refuses
// them (unknown, used or expired code, wrong verifier, wrong redirect URI),
// the response has no ID token, or the ID token does not verify; and an
// error matching auth.ErrProviderUnavailable when the provider cannot be
// reached, times out or answers 5xx or 429.
func (p *Provider) Exchange(ctx context.Context, code, codeVerifier, redirectURI string) (auth.IDClaims, error) {
	if !p.RedirectURIAllowed(redirectURI) {
		return auth.IDClaims{}, auth.ErrInvalidRedirectURI
	}
	claims, rawIDToken, err := p.exchange(ctx, code, codeVerifier, redirectURI)
	return claims, translate(err, p.clientSecret, code, codeVerifier, rawIDToken)
}

// exchange does Exchange's work; its errors are translated by the caller.
func (p *Provider) exchange(ctx context.Context, code, codeVerifier, redirectURI string) (claims auth.IDClaims, rawIDToken string, err error) {
	if code == "" {
		return auth.IDClaims{}, "", errors.New("oidc: the authorization code is empty")
	}
	if err := checkVerifier(codeVerifier); err != nil {
		return auth.IDClaims{}, "", err
	}

	ctx, cancel := context.WithTimeout(p.clientContext(ctx), p.timeout)
	defer cancel()
	token, err := p.oauth.Exchange(ctx, code,
		oauth2.VerifierOption(codeVerifier),
		oauth2.SetAuthURLParam("redirect_uri", redirectURI),
	)
	if err != nil {
		return auth.IDClaims{}, "", fmt.Errorf("oidc: token request: %w", err)
	}
	rawIDToken, _ = token.Extra("id_token").(string)
	if rawIDToken == "" {
		return auth.IDClaims{}, "", errors.New("oidc: the token response has no id_token; is the \"openid\" scope granted?")
	}
	claims, err = p.verify(ctx, p.webVerifier, rawIDToken, []string{p.clientID})
	return claims, rawIDToken, err
}

// VerifyIDToken verifies an ID token that a native app obtained with the
// provider's SDK: signature with a key from the provider's JWKS and an
// asymmetric algorithm, issuer equal to [Config.IssuerURL], expiry, and
// audience. Every audience in the token must be [Config.ClientID] or one of
// [Config.NativeClientIDs], and so must its authorized party (azp) when
// present. It returns the token's claims, nonce included; the caller checks
// the nonce.
//
// It returns an error matching auth.ErrOIDCFailed when the token does not
// verify, and one matching auth.ErrProviderUnavailable when the provider's
// keys cannot be fetched (unreachable, timeout, 5xx or 429).
func (p *Provider) VerifyIDToken(ctx context.Context, rawIDToken string) (auth.IDClaims, error) {
	ctx, cancel := context.WithTimeout(p.clientContext(ctx), p.timeout)
	defer cancel()
	claims, err := p.verify(ctx, p.anyVerifier, rawIDToken, p.audiences)
	return claims, translate(err, p.clientSecret, rawIDToken)
}

// idClaims are the claims read from a verified ID token beyond those go-oidc
// parses itself.
type idClaims struct {
	Email         string       `json:"email"`
	EmailVerified flexibleBool `json:"email_verified"`
	Name          string       `json:"name"`
	AuthorizedBy  string       `json:"azp"`
}

// verify checks rawIDToken with v, then its audience against allowed, and
// returns its claims. Errors are not translated.
func (p *Provider) verify(ctx context.Context, v *gooidc.IDTokenVerifier, rawIDToken string, allowed []string) (auth.IDClaims, error) {
	if rawIDToken == "" {
		return auth.IDClaims{}, errors.New("oidc: the ID token is empty")
	}
	rec := &keyErr{}
	tok, err := v.Verify(context.WithValue(ctx, keyErrKey{}, rec), rawIDToken)
	if err != nil {
		if rec.err != nil {
			// go-oidc flattens key-set errors with %v; this keeps the
			// chain, so a failed key fetch reads as unavailability.
			return auth.IDClaims{}, fmt.Errorf("oidc: verify ID token signature: %w", rec.err)
		}
		return auth.IDClaims{}, fmt.Errorf("oidc: verify ID token: %w", err)
	}
	var extra idClaims
	if err := tok.Claims(&extra); err != nil {
		return auth.IDClaims{}, fmt.Errorf("oidc: read ID token claims: %w", err)
	}
	if tok.Subject == "" {
		return auth.IDClaims{}, errors.New("oidc: the ID token has no subject")
	}
	if err := checkAudience(tok.Audience, extra.AuthorizedBy, allowed); err != nil {
		return auth.IDClaims{}, err
	}
	return auth.IDClaims{
		Issuer:        tok.Issuer,
		Subject:       tok.Subject,
		Audience:      slices.Clone(tok.Audience),
		Email:         extra.Email,
		EmailVerified: bool(extra.EmailVerified),
		Name:          extra.Name,
		Nonce:         tok.Nonce,
		IssuedAt:      tok.IssuedAt,
		ExpiresAt:     tok.Expiry,
	}, nil
}

// checkAudience applies OpenID Connect Core 3.1.3.7 items 3 to 5 to an ID
// token: it must name at least one audience, every audience must be one of
// allowed ("reject … if it contains additional audiences not trusted by the
// Client"), and the authorized party, when present, must be one of allowed
// too.
func checkAudience(aud []string, azp string, allowed []string) error {
	if len(aud) == 0 {
		return errors.New("oidc: the ID token has no audience")
	}
	for _, a := range aud {
		if !slices.Contains(allowed, a) {
			return fmt.Errorf("oidc: the ID token's audience %q is not an accepted client id", a)
		}
	}
	if azp != "" && !slices.Contains(allowed, azp) {
		return fmt.Errorf("oidc: the ID token's authorized party %q is not an accepted client id", azp)
	}
	return nil
}

// checkVerifier checks the PKCE code verifier's syntax (RFC 7636 section
// 4.1): 43 to 128 characters from [A-Za-z0-9-._~]. Never sending a weak or
// empty verifier also keeps a provider that does not enforce PKCE from
// silently skipping it.
func checkVerifier(v string) error {
	if len(v) < 43 || len(v) > 128 {
		return fmt.Errorf("oidc: the PKCE code verifier has %d characters; RFC 7636 requires 43 to 128", len(v))
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return errors.New("oidc: the PKCE code verifier has a character outside [A-Za-z0-9-._~]")
		}
	}
	return nil
}

// flexibleBool decodes a JSON boolean, or the strings "true" and "false"
// that some providers send for email_verified.
type flexibleBool bool

func (b *flexibleBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*b = flexibleBool(v)
	case string:
		parsed, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("oidc: email_verified %q is not a boolean", v)
		}
		*b = flexibleBool(parsed)
	case nil:
		*b = false
	default:
		return fmt.Errorf("oidc: email_verified is a %T, not a boolean", v)
	}
	return nil
}

// keyErrKey is the context key under which verify passes a keyErr to
// recordingKeySet.
type keyErrKey struct{}

// keyErr receives the key set's error during one Verify call. Verify calls
// the key set synchronously, so no locking is needed.
type keyErr struct{ err error }

// recordingKeySet wraps go-oidc's remote key set and records its error for
// the calling verify, because go-oidc wraps it with %v and so loses whether
// the keys could not be fetched (unavailable) or the signature is bad.
type recordingKeySet struct {
	inner gooidc.KeySet
}

func (k *recordingKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.inner.VerifySignature(ctx, jwt)
	if err != nil {
		if rec, ok := ctx.Value(keyErrKey{}).(*keyErr); ok {
			rec.err = err
		}
	}
	return payload, err
}
