package oidc

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DefaultTimeout bounds each call to the provider (discovery, token
// exchange, key fetch) when [Config.Timeout] is zero.
const DefaultTimeout = 10 * time.Second

// Token endpoint client authentication methods for [Config.TokenAuthMethod],
// named as in OpenID Connect Discovery's token_endpoint_auth_methods_supported.
const (
	// TokenAuthAuto lets golang.org/x/oauth2 find the method: it tries
	// client_secret_basic, then client_secret_post if the first attempt
	// fails, and remembers which worked for the token URL and client id.
	// With an empty ClientSecret (a public client) it sends only client_id
	// in the form body.
	TokenAuthAuto = ""
	// TokenAuthClientSecretBasic sends client id and secret in an HTTP
	// Basic Authorization header.
	TokenAuthClientSecretBasic = "client_secret_basic"
	// TokenAuthClientSecretPost sends client id and secret in the form body.
	TokenAuthClientSecretPost = "client_secret_post"
)

// maxNameLen bounds [Config.Name], which appears in URLs.
const maxNameLen = 63

// DefaultScopes returns the scopes requested when [Config.Scopes] is empty:
// openid, email and profile. It returns a new slice on every call.
func DefaultScopes() []string { return []string{"openid", "email", "profile"} }

// Config configures one OpenID Connect provider. The zero value of an
// optional field means its documented default. The package never reads
// environment variables or files: the host fills this in.
type Config struct {
	// Name is the provider's name in URLs, e.g. "google" in
	// /auth/oidc/google/start. Required: lower-case ASCII letters, digits
	// and '-', starting with a letter or digit, at most 63 characters.
	Name string

	// IssuerURL is the provider's issuer identifier, e.g.
	// "https://accounts.google.com". Required. Discovery fetches
	// IssuerURL + "/.well-known/openid-configuration" and refuses the
	// provider unless the document's "issuer" equals IssuerURL exactly,
	// trailing slash included. It must use https (http is accepted for
	// loopback hosts only, for tests) and carry no query or fragment.
	IssuerURL string

	// ClientID is the OAuth client id of the web (backend) client. Required.
	// ID tokens from Exchange must carry exactly this audience.
	ClientID string

	// ClientSecret is the web client's secret. Empty for a public client,
	// which then authenticates with client_id and PKCE only. It never
	// appears in errors.
	ClientSecret string

	// RedirectURIs lists the redirect URIs registered at the provider for
	// the web flow. RedirectURIAllowed and Exchange accept a URI only if it
	// equals one of these exactly (no normalisation of case, trailing
	// slash, port or query). Each must be an absolute URI without a
	// fragment; http is accepted for loopback hosts only. Optional: with
	// none, the web flow is disabled and only VerifyIDToken is useful.
	RedirectURIs []string

	// NativeClientIDs lists extra audiences that VerifyIDToken accepts,
	// typically the client ids of the iOS and Android apps that sign in
	// with the provider's SDK. ClientID is always accepted there too.
	// Optional.
	NativeClientIDs []string

	// Scopes are requested in the authorization URL. If empty, defaults to
	// openid, email and profile (see DefaultScopes). Must include "openid".
	Scopes []string

	// TokenAuthMethod is how the client authenticates at the token
	// endpoint: TokenAuthClientSecretBasic, TokenAuthClientSecretPost or
	// TokenAuthAuto (the default, ""). The explicit methods need a
	// ClientSecret.
	TokenAuthMethod string

	// HTTPClient makes every request to the provider. If nil, defaults to
	// a client whose Timeout is Timeout. A client you pass should have its
	// own Timeout: go-oidc fetches signing keys in the background, where
	// only the client's timeout applies.
	HTTPClient *http.Client

	// Timeout bounds each call to the provider (discovery in New, the
	// token request in Exchange, a key fetch in Exchange or
	// VerifyIDToken). If zero, defaults to 10 seconds (DefaultTimeout).
	Timeout time.Duration

	// Now returns the current time, for the expiry check of ID tokens. If
	// nil, defaults to time.Now. Tests set it.
	Now func() time.Time
}

// withDefaults returns a copy of c with documented defaults applied. Slices
// are copied so that the caller may reuse its Config.
func (c Config) withDefaults() Config {
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	if len(c.Scopes) == 0 {
		c.Scopes = DefaultScopes()
	} else {
		c.Scopes = slices.Clone(c.Scopes)
	}
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.NativeClientIDs = slices.Clone(c.NativeClientIDs)
	if c.HTTPClient == nil && c.Timeout > 0 {
		c.HTTPClient = &http.Client{Timeout: c.Timeout}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate reports every misuse in c at once, each saying how to fix it.
func (c Config) validate() error {
	var problems []error
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf("oidc: "+format, args...))
	}

	if msg := checkName(c.Name); msg != "" {
		add("Config.Name %q %s; use a short lower-case name such as \"google\" (letters a-z, digits, '-')", c.Name, msg)
	}
	if c.IssuerURL == "" {
		add("Config.IssuerURL is required; set it to the provider's issuer exactly as its discovery document states, e.g. \"https://accounts.google.com\"")
	} else if msg := checkIssuer(c.IssuerURL); msg != "" {
		add("Config.IssuerURL %q %s", c.IssuerURL, msg)
	}
	if c.ClientID == "" {
		add("Config.ClientID is required; set it to the web client's id registered at the provider")
	}
	for i, id := range c.NativeClientIDs {
		if strings.TrimSpace(id) == "" {
			add("Config.NativeClientIDs[%d] is empty; remove it or set the app's client id", i)
		}
	}
	for i, uri := range c.RedirectURIs {
		if msg := checkRedirectURI(uri); msg != "" {
			add("Config.RedirectURIs[%d] %q %s", i, uri, msg)
		}
	}
	if !slices.Contains(c.Scopes, "openid") {
		add("Config.Scopes %q lacks \"openid\"; add it, or leave Scopes empty for openid, email, profile", c.Scopes)
	}
	for i, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			add("Config.Scopes[%d] %q is not a scope token; use one scope per element, without spaces or quotes", i, s)
		}
	}
	switch c.TokenAuthMethod {
	case TokenAuthAuto:
	case TokenAuthClientSecretBasic, TokenAuthClientSecretPost:
		if c.ClientSecret == "" {
			add("Config.TokenAuthMethod %q needs a ClientSecret; set the secret, or leave TokenAuthMethod empty for a public client", c.TokenAuthMethod)
		}
	default:
		add("Config.TokenAuthMethod %q is unknown; use %q, %q or leave it empty to auto-detect",
			c.TokenAuthMethod, TokenAuthClientSecretBasic, TokenAuthClientSecretPost)
	}
	if c.Timeout < 0 {
		add("Config.Timeout %v is negative; use a positive duration, or zero for %v", c.Timeout, DefaultTimeout)
	}
	return errors.Join(problems...)
}

// checkName returns what is wrong with a provider name, or "".
func checkName(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > maxNameLen:
		return fmt.Sprintf("is longer than %d characters", maxNameLen)
	case name[0] == '-':
		return "starts with '-'"
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-') {
			return fmt.Sprintf("contains %q", r)
		}
	}
	return ""
}

// checkIssuer returns what is wrong with an issuer URL, or "".
func checkIssuer(issuer string) string {
	u, err := url.Parse(issuer)
	switch {
	case err != nil:
		return "is not a URL"
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return "is not an absolute https URL"
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return "uses http; issuers must use https (http is allowed for loopback test servers only)"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(issuer, "#"):
		return "has a query or fragment; an issuer has neither"
	case u.User != nil:
		return "carries user info; remove it"
	}
	return ""
}

// checkRedirectURI returns what is wrong with a registered redirect URI, or "".
func checkRedirectURI(uri string) string {
	u, err := url.Parse(uri)
	switch {
	case err != nil:
		return "is not a URI"
	case !u.IsAbs():
		return "is not absolute; register the full URI, e.g. \"https://app.example.com/auth/oidc/google/callback\""
	case u.Fragment != "" || strings.Contains(uri, "#"):
		return "has a fragment; redirect URIs must not (RFC 6749 section 3.1.2)"
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return "uses http; use https (http is allowed for loopback hosts only)"
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host == "":
		return "has no host"
	}
	return ""
}

// isLoopback reports whether host names the local machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
