package auth

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Defaults of TokenConfig.
const (
	// DefaultAccessTokenTTL is the lifetime of an access token.
	DefaultAccessTokenTTL = 15 * time.Minute
	// DefaultTokenLeeway tolerates clock skew between instances.
	DefaultTokenLeeway = 30 * time.Second
	// DefaultAudience is the aud claim when TokenConfig.Audience is empty.
	DefaultAudience = "adshare-api"
	// accessTokenType is the JWT typ header of access tokens (RFC 9068), so
	// that no other JWT from the same issuer can pass as one.
	accessTokenType = "at+jwt"
)

// TokenConfig configures NewTokens.
type TokenConfig struct {
	// Issuer is the iss claim, usually the API's base URL. Required.
	Issuer string
	// Audience is the aud claim required of every access token. Defaults to
	// DefaultAudience.
	Audience string
	// AccessTokenTTL is how long an access token lives. Defaults to
	// DefaultAccessTokenTTL; at most an hour.
	AccessTokenTTL time.Duration
	// Leeway tolerates clock skew when checking exp, nbf and iat. Defaults to
	// DefaultTokenLeeway; at most a minute.
	Leeway time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// VerifiedCacheSize bounds the cache of tokens already verified (see
	// Tokens.Verify). Defaults to DefaultVerifiedCacheSize; negative
	// disables the cache.
	VerifiedCacheSize int
}

// DefaultVerifiedCacheSize is how many verified tokens are remembered.
const DefaultVerifiedCacheSize = 100_000

// AccessClaims are the claims of an adshare access token. It carries no
// personal data: the payload is only base64.
type AccessClaims struct {
	jwt.RegisteredClaims
	// SessionID is the sid claim: the session that issued the token.
	SessionID string `json:"sid"`
	// Role is the user's role when the token was issued.
	Role Role `json:"role"`
	// IssuedAtMicros is iat to the microsecond (iat itself has whole
	// seconds), so that "refuse this user's tokens issued before now" (a
	// role change) needs no one-second blind spot.
	IssuedAtMicros int64 `json:"iat_us"`
}

// Validate implements jwt.ClaimsValidator: checks that run after the
// standard ones.
func (c AccessClaims) Validate() error {
	if _, err := uuid.Parse(c.Subject); err != nil {
		return errors.New("sub is not a user id")
	}
	if _, err := uuid.Parse(c.SessionID); err != nil {
		return errors.New("sid is not a session id")
	}
	if !c.Role.Valid() {
		return errors.New("role is not a known role")
	}
	if c.ID == "" {
		return errors.New("jti is missing")
	}
	if c.IssuedAt == nil {
		return errors.New("iat is missing")
	}
	if c.IssuedAtMicros/1_000_000 != c.IssuedAt.Unix() {
		return errors.New("iat_us does not match iat")
	}
	return nil
}

// Tokens issues and verifies access tokens. It is safe for concurrent use.
type Tokens struct {
	cfg    TokenConfig
	keys   atomic.Pointer[KeySet]
	parser *jwt.Parser

	// verified remembers tokens whose signature and claims checked out,
	// keyed by the SHA-256 of the whole token, so an app that sends the same
	// token for its whole life pays for one signature check. Time-based
	// checks still run on every hit; a key change empties it.
	mu       sync.RWMutex
	verified map[[32]byte]Principal
}

// NewTokens returns an issuer and verifier of access tokens signed with keys.
func NewTokens(keys *KeySet, cfg TokenConfig) (*Tokens, error) {
	if keys == nil {
		return nil, errors.New("auth: NewTokens needs a KeySet (see NewKeySet and GenerateSigningKey)")
	}
	if cfg.Issuer == "" {
		return nil, errors.New("auth: TokenConfig.Issuer is required, e.g. the API's base URL")
	}
	cfg.Audience = cmp.Or(cfg.Audience, DefaultAudience)
	cfg.AccessTokenTTL = cmp.Or(cfg.AccessTokenTTL, DefaultAccessTokenTTL)
	cfg.Leeway = cmp.Or(cfg.Leeway, DefaultTokenLeeway)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AccessTokenTTL < 0 || cfg.AccessTokenTTL > time.Hour {
		return nil, errors.New("auth: TokenConfig.AccessTokenTTL must be at most an hour (short-lived tokens limit what a leak costs)")
	}
	if cfg.Leeway < 0 || cfg.Leeway > time.Minute {
		return nil, errors.New("auth: TokenConfig.Leeway must be at most a minute")
	}
	if cfg.VerifiedCacheSize == 0 {
		cfg.VerifiedCacheSize = DefaultVerifiedCacheSize
	}
	t := &Tokens{cfg: cfg, verified: map[[32]byte]Principal{}}
	t.keys.Store(keys)
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(cfg.Now),
	)
	return t, nil
}

// SetKeys replaces the key set, for rotation (see KeySet).
func (t *Tokens) SetKeys(keys *KeySet) {
	if keys == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys.Store(keys)
	clear(t.verified) // a retired key's tokens must verify again, and fail
}

// Keys returns the current key set.
func (t *Tokens) Keys() *KeySet { return t.keys.Load() }

// TTL returns the access-token lifetime.
func (t *Tokens) TTL() time.Duration { return t.cfg.AccessTokenTTL }

// Leeway returns the tolerated clock skew.
func (t *Tokens) Leeway() time.Duration { return t.cfg.Leeway }

// Issue signs an access token for the user's session with the given role.
func (t *Tokens) Issue(user, session uuid.UUID, role Role) (string, AccessClaims, error) {
	precise := t.cfg.Now().UTC()
	now := precise.Truncate(time.Second)
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	claims := AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.cfg.Issuer,
			Subject:   user.String(),
			Audience:  jwt.ClaimStrings{t.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(t.cfg.AccessTokenTTL)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        base64.RawURLEncoding.EncodeToString(jti),
		},
		SessionID:      session.String(),
		Role:           role,
		IssuedAtMicros: precise.UnixMicro(),
	}
	keys := t.keys.Load()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = keys.signingID
	tok.Header["typ"] = accessTokenType
	signed, err := tok.SignedString(keys.signing)
	if err != nil {
		return "", AccessClaims{}, fmt.Errorf("auth: sign access token: %w", err)
	}
	return signed, claims, nil
}

// Verify checks an access token's signature (EdDSA only, key chosen by kid
// among the key set), type, issuer, audience, expiry, not-before and issue
// time, and returns its principal. Errors match ErrUnauthenticated and wrap
// the reason. It does not consult the revocation list (see
// Service.Authenticate).
//
// A token seen before is found in a bounded cache by the hash of its whole
// text (so any change to it misses), and only its times are checked again.
func (t *Tokens) Verify(token string) (Principal, error) {
	if len(token) > 4096 {
		return Principal{}, ErrUnauthenticated.WithCause(errors.New("token too long"))
	}
	if t.cfg.VerifiedCacheSize < 0 {
		return t.verify(token)
	}
	sum := sha256.Sum256([]byte(token))
	t.mu.RLock()
	p, ok := t.verified[sum]
	t.mu.RUnlock()
	if ok {
		now := t.cfg.Now()
		switch {
		case !now.Before(p.ExpiresAt.Add(t.cfg.Leeway)):
			return Principal{}, ErrUnauthenticated.WithCause(jwt.ErrTokenExpired)
		case now.Add(t.cfg.Leeway).Before(p.IssuedAt):
			return Principal{}, ErrUnauthenticated.WithCause(jwt.ErrTokenUsedBeforeIssued)
		}
		return p, nil
	}
	p, err := t.verify(token)
	if err != nil {
		return Principal{}, err
	}
	t.mu.Lock()
	if len(t.verified) >= t.cfg.VerifiedCacheSize {
		for k := range t.verified { // evict an arbitrary entry
			delete(t.verified, k)
			break
		}
	}
	t.verified[sum] = p
	t.mu.Unlock()
	return p, nil
}

// verify does the full check.
func (t *Tokens) verify(token string) (Principal, error) {
	keys := t.keys.Load()
	var claims AccessClaims
	_, err := t.parser.ParseWithClaims(token, &claims, func(tok *jwt.Token) (any, error) {
		if typ, _ := tok.Header["typ"].(string); typ != accessTokenType {
			return nil, errors.New("token type is not at+jwt")
		}
		for _, h := range []string{"jku", "jwk", "x5u", "x5c", "crit"} {
			if _, ok := tok.Header[h]; ok {
				return nil, fmt.Errorf("token header %q is not accepted", h)
			}
		}
		kid, _ := tok.Header["kid"].(string)
		key, ok := keys.publicKey(kid)
		if !ok {
			return nil, errors.New("unknown kid")
		}
		return key, nil
	})
	if err != nil {
		return Principal{}, ErrUnauthenticated.WithCause(err)
	}
	return Principal{
		UserID:    uuid.MustParse(claims.Subject),
		SessionID: uuid.MustParse(claims.SessionID),
		Role:      claims.Role,
		TokenID:   claims.ID,
		IssuedAt:  time.UnixMicro(claims.IssuedAtMicros).UTC(),
		ExpiresAt: claims.ExpiresAt.UTC(),
	}, nil
}
