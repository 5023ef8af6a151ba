package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
)

type tokenBundle struct {
	key    ed25519.PrivateKey
	keys   *auth.KeySet
	tokens *auth.Tokens
	now    time.Time
}

func newTokenBundle(t *testing.T) *tokenBundle {
	t.Helper()
	key, err := auth.GenerateSigningKey()
	require.NoError(t, err)
	keys, err := auth.NewKeySet(key)
	require.NoError(t, err)
	b := &tokenBundle{key: key, keys: keys, now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	b.tokens, err = auth.NewTokens(keys, auth.TokenConfig{Issuer: "https://api.adshare.test", Now: func() time.Time { return b.now }})
	require.NoError(t, err)
	return b
}

// validClaims are the claims of a good token; attacks change them.
func (b *tokenBundle) validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "https://api.adshare.test", "aud": []string{auth.DefaultAudience},
		"sub": uuid.NewString(), "sid": uuid.NewString(), "role": "user", "jti": "abc",
		"iat": b.now.Unix(), "nbf": b.now.Unix(), "exp": b.now.Add(10 * time.Minute).Unix(),
		"iat_us": b.now.UnixMicro(),
	}
}

// sign signs claims with EdDSA and the given header changes.
func (b *tokenBundle) sign(t *testing.T, key ed25519.PrivateKey, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = auth.KeyID(key.Public().(ed25519.PublicKey))
	tok.Header["typ"] = "at+jwt"
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func b64(v any) string {
	raw, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	b := newTokenBundle(t)
	user, sid := uuid.New(), uuid.New()
	raw, claims, err := b.tokens.Issue(user, sid, auth.RoleModerator)
	require.NoError(t, err)
	require.Equal(t, b.keys.SigningKeyID(), mustHeader(t, raw)["kid"])
	require.Equal(t, "at+jwt", mustHeader(t, raw)["typ"])
	require.Equal(t, "EdDSA", mustHeader(t, raw)["alg"])
	p, err := b.tokens.Verify(raw)
	require.NoError(t, err)
	require.Equal(t, user, p.UserID)
	require.Equal(t, sid, p.SessionID)
	require.Equal(t, auth.RoleModerator, p.Role)
	require.Equal(t, claims.ID, p.TokenID)
	require.Equal(t, b.now.Add(auth.DefaultAccessTokenTTL), p.ExpiresAt)
	// No personal data in the payload.
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	require.NotContains(t, string(payload), "@")
}

func mustHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(h, &m))
	return m
}

// The attack table of the issue: each forged or stale token is refused.
func TestTokenAttacksAreRefused(t *testing.T) {
	t.Parallel()
	b := newTokenBundle(t)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	pub := b.key.Public().(ed25519.PublicKey)
	good := b.sign(t, b.key, b.validClaims(), nil)
	parts := strings.Split(good, ".")

	with := func(k string, v any) jwt.MapClaims {
		c := b.validClaims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	hmacWithPublicKey := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, b.validClaims())
		tok.Header["kid"] = b.keys.SigningKeyID()
		tok.Header["typ"] = "at+jwt"
		s, err := tok.SignedString([]byte(pub))
		require.NoError(t, err)
		return s
	}
	tampered := func() string {
		c := b.validClaims()
		c["role"] = "admin"
		return parts[0] + "." + b64(c) + "." + parts[2]
	}

	tests := []struct {
		description string
		token       string
		wantReason  string // a substring of the wrapped cause
	}{
		{"alg none", b64(map[string]any{"alg": "none", "typ": "at+jwt", "kid": b.keys.SigningKeyID()}) + "." + parts[1] + ".", "signing method"},
		{"HMAC signed with the public key", hmacWithPublicKey(), "signing method"},
		{"wrong kid", b.sign(t, b.key, b.validClaims(), map[string]any{"kid": "not-a-key"}), "unknown kid"},
		{"signed by another key under our kid", b.sign(t, otherKey, b.validClaims(), map[string]any{"kid": b.keys.SigningKeyID()}), "signature"},
		{"injected kid", b.sign(t, b.key, b.validClaims(), map[string]any{"kid": "../../etc/passwd' OR 1=1"}), "unknown kid"},
		{"jku header", b.sign(t, b.key, b.validClaims(), map[string]any{"jku": "https://evil.example/jwks"}), "jku"},
		{"embedded jwk", b.sign(t, b.key, b.validClaims(), map[string]any{"jwk": map[string]string{"kty": "OKP"}}), "jwk"},
		{"wrong typ (an ID token)", b.sign(t, b.key, b.validClaims(), map[string]any{"typ": "JWT"}), "type"},
		{"no typ", b.sign(t, b.key, b.validClaims(), map[string]any{"typ": nil}), "type"},
		{"expired", b.sign(t, b.key, with("exp", b.now.Add(-time.Minute).Unix()), nil), "expired"},
		{"no exp", b.sign(t, b.key, with("exp", nil), nil), "exp"},
		{"not yet valid", b.sign(t, b.key, with("nbf", b.now.Add(5*time.Minute).Unix()), nil), "not valid yet"},
		{"issued in the future", b.sign(t, b.key, with("iat", b.now.Add(5*time.Minute).Unix()), nil), "used before issued"},
		{"wrong issuer", b.sign(t, b.key, with("iss", "https://evil.example"), nil), "issuer"},
		{"no issuer", b.sign(t, b.key, with("iss", nil), nil), "iss claim is required"},
		{"wrong audience", b.sign(t, b.key, with("aud", []string{"dashboard-api"}), nil), "audience"},
		{"no audience", b.sign(t, b.key, with("aud", nil), nil), "aud claim is required"},
		{"tampered payload", tampered(), "signature"},
		{"sub not a user id", b.sign(t, b.key, with("sub", "admin"), nil), "sub"},
		{"no sid", b.sign(t, b.key, with("sid", nil), nil), "sid"},
		{"unknown role", b.sign(t, b.key, with("role", "root"), nil), "role"},
		{"no iat", b.sign(t, b.key, with("iat", nil), nil), "iat"},
		{"no jti", b.sign(t, b.key, with("jti", nil), nil), "jti"},
		{"iat_us far from iat", b.sign(t, b.key, with("iat_us", b.now.Add(-time.Hour).UnixMicro()), nil), "iat_us"},
		{"non-canonical base64 signature", parts[0] + "." + parts[1] + "." + parts[2] + "=", "malformed"},
		{"garbage", "not.a.token", "malformed"},
		{"empty", "", "malformed"},
		{"oversized", strings.Repeat("a", 5000), "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			_, err := b.tokens.Verify(tt.token)
			require.ErrorIs(t, err, auth.ErrUnauthenticated)
			require.Contains(t, err.Error(), tt.wantReason)
		})
	}
	_, err := b.tokens.Verify(good)
	require.NoError(t, err, "the untampered token verifies")
}

func TestTokensWithinLeewayPass(t *testing.T) {
	t.Parallel()
	b := newTokenBundle(t)
	raw, _, err := b.tokens.Issue(uuid.New(), uuid.New(), auth.RoleUser)
	require.NoError(t, err)
	b.now = b.now.Add(auth.DefaultAccessTokenTTL + auth.DefaultTokenLeeway - time.Second)
	_, err = b.tokens.Verify(raw)
	require.NoError(t, err)
	b.now = b.now.Add(2 * time.Second)
	_, err = b.tokens.Verify(raw)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
}

// Publish, switch, retire: no token fails to verify until its key retires.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	b := newTokenBundle(t)
	oldKey := b.key
	oldToken, _, err := b.tokens.Issue(uuid.New(), uuid.New(), auth.RoleUser)
	require.NoError(t, err)

	newKey, err := auth.GenerateSigningKey()
	require.NoError(t, err)
	// 1. publish the new key.
	published, err := auth.NewKeySet(oldKey, newKey.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	b.tokens.SetKeys(published)
	var jwks struct {
		Keys []map[string]string `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(published.JWKS(), &jwks))
	require.Len(t, jwks.Keys, 2)
	require.Equal(t, auth.KeyID(oldKey.Public().(ed25519.PublicKey)), jwks.Keys[0]["kid"], "the signing key comes first")
	for _, k := range jwks.Keys {
		require.Equal(t, "OKP", k["kty"])
		require.Equal(t, "Ed25519", k["crv"])
		require.Empty(t, k["d"], "no private part is ever published")
	}

	// 2. switch: sign with the new key, keep the old one for verification.
	switched, err := auth.NewKeySet(newKey, oldKey.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	b.tokens.SetKeys(switched)
	newToken, _, err := b.tokens.Issue(uuid.New(), uuid.New(), auth.RoleUser)
	require.NoError(t, err)
	require.Equal(t, auth.KeyID(newKey.Public().(ed25519.PublicKey)), mustHeader(t, newToken)["kid"])
	_, err = b.tokens.Verify(oldToken)
	require.NoError(t, err)
	_, err = b.tokens.Verify(newToken)
	require.NoError(t, err)

	// 3. retire the old key.
	retired, err := auth.NewKeySet(newKey)
	require.NoError(t, err)
	b.tokens.SetKeys(retired)
	_, err = b.tokens.Verify(oldToken)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	_, err = b.tokens.Verify(newToken)
	require.NoError(t, err)
}

func TestKeyIDIsTheRFC7638Thumbprint(t *testing.T) {
	t.Parallel()
	// RFC 8037 appendix A.3 gives this key's thumbprint.
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	require.NoError(t, err)
	require.Equal(t, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", auth.KeyID(ed25519.PublicKey(x)))
}

// BenchmarkVerifyAccessToken is a first sight of a token: the full check.
func BenchmarkVerifyAccessToken(b *testing.B) {
	key, _ := auth.GenerateSigningKey()
	keys, _ := auth.NewKeySet(key)
	tokens, _ := auth.NewTokens(keys, auth.TokenConfig{Issuer: "https://api.adshare.test", VerifiedCacheSize: -1})
	raw, _, _ := tokens.Issue(uuid.New(), uuid.New(), auth.RoleUser)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokens.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519VerifyBaseline is the signature check alone, the floor
// under BenchmarkVerifyAccessToken.
func BenchmarkEd25519VerifyBaseline(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte(strings.Repeat("x", 300))
	sig := ed25519.Sign(key, msg)
	pub := key.Public().(ed25519.PublicKey)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad")
		}
	}
}

func BenchmarkIssueAccessToken(b *testing.B) {
	key, _ := auth.GenerateSigningKey()
	keys, _ := auth.NewKeySet(key)
	tokens, _ := auth.NewTokens(keys, auth.TokenConfig{Issuer: "https://api.adshare.test"})
	user, sid := uuid.New(), uuid.New()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tokens.Issue(user, sid, auth.RoleUser); err != nil {
			b.Fatal(err)
		}
	}
}

// A cached token still expires, and a tampered copy never hits the cache.
func TestVerifiedCacheKeepsTimeChecks(t *testing.T) {
	t.Parallel()
	b := newTokenBundle(t)
	raw, _, err := b.tokens.Issue(uuid.New(), uuid.New(), auth.RoleUser)
	require.NoError(t, err)
	_, err = b.tokens.Verify(raw) // now cached
	require.NoError(t, err)
	_, err = b.tokens.Verify(raw)
	require.NoError(t, err)
	// One signature character changed (to another: a fixed replacement
	// would sometimes be the same one).
	i := len(raw) - 10
	tampered := raw[:i] + map[bool]string{true: "B", false: "A"}[raw[i] == 'A'] + raw[i+1:]
	_, err = b.tokens.Verify(tampered)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	b.now = b.now.Add(auth.DefaultAccessTokenTTL + auth.DefaultTokenLeeway)
	_, err = b.tokens.Verify(raw)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
}

// BenchmarkVerifyAccessTokenCached is the request path's usual case: the
// app sends the same token many times.
func BenchmarkVerifyAccessTokenCached(b *testing.B) {
	key, _ := auth.GenerateSigningKey()
	keys, _ := auth.NewKeySet(key)
	tokens, _ := auth.NewTokens(keys, auth.TokenConfig{Issuer: "https://api.adshare.test"})
	raw, _, _ := tokens.Issue(uuid.New(), uuid.New(), auth.RoleUser)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokens.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
}
