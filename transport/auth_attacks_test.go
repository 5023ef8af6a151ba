package transport

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
)

// signAccessToken signs claims as an access token with key (EdDSA), with
// header changes (a nil value deletes the header).
func (b *authBundle) signAccessToken(t *testing.T, key ed25519.PrivateKey, claims jwt.MapClaims, header map[string]any) string {
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

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// Scenario 5, access tokens: each forged or stale token is refused with 401
// and audited with its reason.
func TestForgedAccessTokensAreRefusedAndAudited(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *authBundle) {
		tok := b.register(t, "victim@example.com")
		now := b.clock.Now()
		claims := func(changes map[string]any) jwt.MapClaims {
			c := jwt.MapClaims{
				"iss": testIssuer, "aud": []string{auth.DefaultAudience},
				"sub": tok.User.ID.String(), "sid": tok.SessionID.String(), "role": "user", "jti": "forged",
				"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "iat_us": now.UnixMicro(),
			}
			for k, v := range changes {
				c[k] = v
			}
			return c
		}
		// The signing helper makes tokens the API accepts: only the attack
		// in each row makes it fail.
		b.me(t, b.signAccessToken(t, b.key, claims(nil), nil))

		parts := strings.Split(tok.AccessToken, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		require.NoError(t, err)
		var real map[string]any
		require.NoError(t, json.Unmarshal(payload, &real))
		require.Equal(t, "user", real["role"])
		real["role"] = "admin"
		tampered := parts[0] + "." + b64JSON(t, real) + "." + parts[2]

		kid := b.keys.SigningKeyID()
		hs256WithPublicKey := func() string {
			hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
			hs.Header["kid"], hs.Header["typ"] = kid, "at+jwt"
			s, err := hs.SignedString([]byte(b.key.Public().(ed25519.PublicKey)))
			require.NoError(t, err)
			return s
		}
		_, otherKey, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)

		tests := []struct {
			description string
			token       string
			wantReason  string
		}{
			{"alg none", b64JSON(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}) + "." + b64JSON(t, claims(nil)) + ".", "bad_signature"},
			{"HS256 signed with the public key", hs256WithPublicKey(), "bad_signature"},
			{"wrong kid", b.signAccessToken(t, b.key, claims(nil), map[string]any{"kid": "not-a-key"}), "unverifiable"},
			{"another key under our kid", b.signAccessToken(t, otherKey, claims(nil), map[string]any{"kid": kid}), "bad_signature"},
			{"expired", b.signAccessToken(t, b.key, claims(map[string]any{
				"iat": now.Add(-time.Hour).Unix(), "nbf": now.Add(-time.Hour).Unix(), "exp": now.Add(-time.Minute).Unix(), "iat_us": now.Add(-time.Hour).UnixMicro(),
			}), nil), ""}, // expired tokens are routine: refused, not audited
			{"not yet valid", b.signAccessToken(t, b.key, claims(map[string]any{"nbf": now.Add(5 * time.Minute).Unix()}), nil), "not_yet_valid"},
			{"wrong issuer", b.signAccessToken(t, b.key, claims(map[string]any{"iss": "https://evil.example"}), nil), "wrong_issuer"},
			{"wrong audience", b.signAccessToken(t, b.key, claims(map[string]any{"aud": []string{"another-api"}}), nil), "wrong_audience"},
			{"tampered payload (role changed to admin)", tampered, "bad_signature"},
		}
		for i, tt := range tests {
			ua := "attack/" + strconv.Itoa(i)
			for _, path := range []string{"/users/me", "/audit-events"} {
				b.send(t, request{method: http.MethodGet, path: path, token: tt.token, header: http.Header{"User-Agent": {ua}}}).
					problem(t, http.StatusUnauthorized, "invalid_token")
				e := b.lastEvent(t, auth.AuditTokenRejected)
				if tt.wantReason == "" {
					require.NotEqual(t, ua, e.UserAgent, tt.description)
					continue
				}
				require.Equal(t, ua, e.UserAgent, tt.description)
				require.Equal(t, tt.wantReason, e.Reason, tt.description)
				require.Equal(t, auth.OutcomeDenied, e.Outcome, tt.description)
				require.Equal(t, "access_token", e.TargetType, tt.description)
			}
			for _, e := range b.events(t, auth.AuditFilter{}) {
				require.NotContains(t, e.TargetID+e.Reason+e.UserAgent, tt.token, "tokens never reach the audit log")
			}
		}
		require.Empty(t, b.events(t, auth.AuditFilter{Action: auth.AuditAccessDenied}), "no forged token got as far as authorization")
		b.me(t, tok.AccessToken)
	})
}

// Scenario 5, refresh tokens: reuse after the grace window revokes the
// session; a refresh token is dead after logout.
func TestRefreshTokenReuseOverHTTP(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *authBundle) {
		tok := b.register(t, "reuse@example.com")
		next := b.refresh(t, tok.RefreshToken)

		// Two requests racing within the grace window get the same successor.
		again := b.refresh(t, tok.RefreshToken)
		require.Equal(t, next.RefreshToken, again.RefreshToken)
		require.Equal(t, tok.SessionID.String(), b.lastEvent(t, auth.AuditRefreshGrace).TargetID)

		b.clock.Advance(auth.DefaultRefreshGrace + time.Second)
		b.do(t, http.MethodPost, "/auth/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}).
			problem(t, http.StatusUnauthorized, "invalid_grant")
		e := b.lastEvent(t, auth.AuditRefreshReuse)
		require.Equal(t, tok.User.ID, e.ActorID)
		require.Equal(t, "session", e.TargetType)
		require.Equal(t, tok.SessionID.String(), e.TargetID)
		require.Equal(t, auth.OutcomeDenied, e.Outcome)
		require.Equal(t, "refresh_token_reuse", e.Reason)

		// The whole session is over: the successor and every access token.
		b.do(t, http.MethodPost, "/auth/refresh", "", map[string]string{"refresh_token": next.RefreshToken}).
			problem(t, http.StatusUnauthorized, "invalid_grant")
		for _, access := range []string{tok.AccessToken, next.AccessToken, again.AccessToken} {
			b.do(t, http.MethodGet, "/users/me", access, nil).problem(t, http.StatusUnauthorized, "token_revoked")
		}

		// After logout, the refresh token is dead too.
		login := b.login(t, "reuse@example.com")
		b.do(t, http.MethodPost, "/auth/logout", login.AccessToken, nil).requireStatus(t, http.StatusNoContent)
		b.do(t, http.MethodPost, "/auth/refresh", "", map[string]string{"refresh_token": login.RefreshToken}).
			problem(t, http.StatusUnauthorized, "invalid_grant")
		failure := b.lastEvent(t, auth.AuditRefreshFailure)
		require.Equal(t, login.SessionID.String(), failure.TargetID)
		require.Equal(t, "session_revoked", failure.Reason)
		b.do(t, http.MethodPost, "/auth/refresh", "", map[string]string{"refresh_token": "not-a-refresh-token"}).
			problem(t, http.StatusUnauthorized, "invalid_grant")
		require.Equal(t, "malformed", b.lastEvent(t, auth.AuditRefreshFailure).Reason)
	})
}

// Scenario 5, sign-in: a flood from one address is throttled; an oversized
// password is refused cheaply.
func TestLoginAttacksOverHTTP(t *testing.T) {
	t.Parallel()

	t.Run("login flood from one address", func(t *testing.T) {
		t.Parallel()
		opts := bundleOpts{authConfig: func(c *auth.Config) {
			c.LoginLimitPerClient = auth.Limit{Rate: 1, Period: time.Hour, Burst: 3}
		}}
		forEachBackendWith(t, opts, func(t *testing.T, b *authBundle) {
			b.register(t, "target@example.com")
			for i := range 3 {
				b.do(t, http.MethodPost, "/auth/login", "", map[string]string{
					"email": "guess" + strconv.Itoa(i) + "@example.com", "password": testPassword,
				}).problem(t, http.StatusUnauthorized, "invalid_credentials")
			}
			for _, email := range []string{"guess9@example.com", "target@example.com"} {
				r := b.do(t, http.MethodPost, "/auth/login", "", map[string]string{"email": email, "password": testPassword})
				r.problem(t, http.StatusTooManyRequests, "too_many_attempts")
				retry, err := strconv.Atoi(r.header.Get("Retry-After"))
				require.NoError(t, err)
				require.Positive(t, retry)
				require.LessOrEqual(t, retry, 3600)
				require.Empty(t, r.header.Get("RateLimit"), "no API-wide limiter is configured")
			}
			throttled := b.events(t, auth.AuditFilter{Action: auth.AuditLoginThrottled})
			require.Len(t, throttled, 2)
			for _, e := range throttled {
				require.Equal(t, auth.OutcomeDenied, e.Outcome)
				require.Equal(t, "rate_limited", e.Reason)
				require.Equal(t, "127.0.0.1", e.IP)
				require.Equal(t, "email", e.TargetType)
				require.NotContains(t, e.TargetID, "@", "emails are kept only as keyed hashes")
			}
			require.Len(t, b.events(t, auth.AuditFilter{Action: auth.AuditLoginFailure}), 3)
		})
	})

	t.Run("oversized password", func(t *testing.T) {
		t.Parallel()
		forEachBackend(t, func(t *testing.T, b *authBundle) {
			huge := strings.Repeat("x", 5000)
			start := time.Now()
			p := b.do(t, http.MethodPost, "/auth/register", "", map[string]string{"email": "big@example.com", "password": huge}).
				problem(t, http.StatusUnprocessableEntity, "invalid_user")
			require.Equal(t, []string{"#/password"}, pointers(p))
			require.Less(t, time.Since(start), 2*time.Second, "refused before hashing")
			require.Empty(t, b.events(t, auth.AuditFilter{}))

			b.register(t, "big@example.com")
			start = time.Now()
			b.do(t, http.MethodPost, "/auth/login", "", map[string]string{"email": "big@example.com", "password": huge}).
				problem(t, http.StatusUnauthorized, "invalid_credentials")
			require.Less(t, time.Since(start), 5*time.Second, "one bounded hash, not one of 5000 bytes")
			require.Equal(t, "wrong_password", b.lastEvent(t, auth.AuditLoginFailure).Reason)
		})
	})
}

// Scenario 5, OpenID Connect: replayed codes, codes from another flow, made-up
// nonces and ID tokens for other clients are refused and audited.
func TestOIDCAttacksOverHTTP(t *testing.T) {
	t.Parallel()
	forEachBackendWith(t, bundleOpts{oidc: true}, func(t *testing.T, b *authBundle) {
		requireFailure := func(t *testing.T, r reply, reason string) {
			t.Helper()
			r.problem(t, http.StatusUnauthorized, "oidc_failed")
			e := b.lastEvent(t, auth.AuditOIDCFailure)
			require.Equal(t, reason, e.Reason)
			require.Equal(t, "provider", e.TargetType)
			require.Equal(t, "mock", e.TargetID)
			require.Equal(t, auth.OutcomeFailure, e.Outcome)
		}
		callback := func(state, code string) reply {
			return b.do(t, http.MethodPost, "/auth/oidc/mock/callback", "", map[string]string{"state": state, "code": code})
		}

		t.Run("web flow, then its code replayed", func(t *testing.T) {
			code, state := b.beginOIDC(t, "sub-ada", "Ada@Example.com")
			tok := callback(state, code).tokens(t, http.StatusCreated)
			require.True(t, tok.Created)
			require.Equal(t, "ada@example.com", tok.User.Email)
			b.me(t, tok.AccessToken)
			requireFailure(t, callback(state, code), "unknown_state")
			requireFailure(t, callback("forged-state", code), "unknown_state")

			// The same identity signs in again without creating an account.
			code, state = b.beginOIDC(t, "sub-ada", "ada@example.com")
			again := callback(state, code).tokens(t, http.StatusOK)
			require.False(t, again.Created)
			require.Equal(t, tok.User.ID, again.User.ID)
		})

		t.Run("a code from another flow fails PKCE", func(t *testing.T) {
			stolen, _ := b.beginOIDC(t, "sub-attacker", "attacker@example.com")
			_, victimState := b.beginOIDC(t, "sub-victim", "victim@example.com")
			requireFailure(t, callback(victimState, stolen), "exchange_failed")
		})

		t.Run("native flow with a server nonce, then replayed", func(t *testing.T) {
			var n struct {
				Nonce     string    `json:"nonce"`
				ExpiresAt time.Time `json:"expires_at"`
			}
			r := b.do(t, http.MethodPost, "/auth/oidc/mock/nonce", "", nil).requireStatus(t, http.StatusOK)
			require.Equal(t, "no-store", r.header.Get("Cache-Control"))
			r.decode(t, &n)
			require.NotEmpty(t, n.Nonce)
			idToken := b.nativeIDToken(t, "sub-native", "native@example.com", n.Nonce)
			tok := b.do(t, http.MethodPost, "/auth/oidc/mock/id-token", "", map[string]string{"id_token": idToken}).
				tokens(t, http.StatusCreated)
			require.Equal(t, "native@example.com", tok.User.Email)
			requireFailure(t, b.do(t, http.MethodPost, "/auth/oidc/mock/id-token", "", map[string]string{"id_token": idToken}),
				"nonce_unknown_or_used")
		})

		t.Run("a nonce the server never issued", func(t *testing.T) {
			idToken := b.nativeIDToken(t, "sub-x", "x@example.com", "made-up-by-the-client")
			requireFailure(t, b.do(t, http.MethodPost, "/auth/oidc/mock/id-token", "", map[string]string{"id_token": idToken}),
				"nonce_unknown_or_used")
		})

		t.Run("an ID token for another audience", func(t *testing.T) {
			var n struct {
				Nonce     string    `json:"nonce"`
				ExpiresAt time.Time `json:"expires_at"`
			}
			b.do(t, http.MethodPost, "/auth/oidc/mock/nonce", "", nil).requireStatus(t, http.StatusOK).decode(t, &n)
			forged := b.oidc.SignIDToken(t, b.oidc.IDTokenClaims("sub-y", "y@example.com", n.Nonce, "some-other-app"))
			requireFailure(t, b.do(t, http.MethodPost, "/auth/oidc/mock/id-token", "", map[string]string{"id_token": forged}),
				"token_invalid")
		})

		for _, email := range []string{"attacker@example.com", "victim@example.com", "x@example.com", "y@example.com"} {
			_, err := b.users.UserByEmail(t.Context(), email)
			require.ErrorIs(t, err, auth.ErrUserNotFound, "no account from a failed sign-in")
		}
	})
}

// Scenario 6: X-Forwarded-For is believed only through trusted proxies.
func TestClientIPOverHTTP(t *testing.T) {
	t.Parallel()
	opts := bundleOpts{
		trustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		authConfig: func(c *auth.Config) {
			c.LoginLimitPerClient = auth.Limit{Rate: 1, Period: time.Hour, Burst: 2}
		},
	}
	forEachBackendWith(t, opts, func(t *testing.T, b *authBundle) {
		via := func(peer string, xff ...string) http.Header {
			h := http.Header{testPeerHeader: {peer}}
			if len(xff) > 0 {
				h["X-Forwarded-For"] = xff
			}
			return h
		}
		const proxy = "10.0.0.7:41000"

		// Sessions and the audit log record the client behind the proxies.
		tok := b.send(t, request{method: http.MethodPost, path: "/auth/register", header: via(proxy, "1.2.3.4, 10.0.0.5"),
			body: map[string]string{"email": "behind@example.com", "password": testPassword}}).tokens(t, http.StatusCreated)
		var sessions struct {
			Sessions []sessionJSON `json:"sessions"`
		}
		b.do(t, http.MethodGet, "/auth/sessions", tok.AccessToken, nil).requireStatus(t, http.StatusOK).decode(t, &sessions)
		require.Len(t, sessions.Sessions, 1)
		require.Equal(t, "1.2.3.4", sessions.Sessions[0].IP)
		require.Equal(t, "1.2.3.4", b.lastEvent(t, auth.AuditRegister).IP)

		for _, tt := range []struct {
			description string
			peer        string
			xff         []string
			wantIP      string
		}{
			{"trusted proxy chain", proxy, []string{"1.2.3.4, 10.0.0.5"}, "1.2.3.4"},
			{"a forged entry left of the client is ignored", proxy, []string{"6.6.6.6, 1.2.3.4, 10.0.0.5"}, "1.2.3.4"},
			{"two headers are one list", proxy, []string{"1.2.3.4", "10.0.0.5"}, "1.2.3.4"},
			{"trusted proxy, no header", proxy, nil, "10.0.0.7"},
			{"IPv6 client", proxy, []string{"2001:db8::1, 10.0.0.5"}, "2001:db8::1"},
			{"IPv4-mapped trusted peer", "[::ffff:10.0.0.7]:41000", []string{"1.2.3.4"}, "1.2.3.4"},
			{"garbage stops at the last trusted hop", proxy, []string{"1.2.3.4, garbage, 10.0.0.5"}, "10.0.0.5"},
			{"untrusted peer: the header is ignored", "203.0.113.50:6000", []string{"1.2.3.4"}, "203.0.113.50"},
		} {
			h := via(tt.peer, tt.xff...)
			h.Set("User-Agent", tt.description)
			b.send(t, request{method: http.MethodGet, path: "/users/me", token: "x", header: h}).
				problem(t, http.StatusUnauthorized, "invalid_token")
			e := b.lastEvent(t, auth.AuditTokenRejected)
			require.Equal(t, tt.description, e.UserAgent)
			require.Equal(t, tt.wantIP, e.IP, tt.description)
		}

		// A client that spoofs X-Forwarded-For cannot dodge the per-address
		// sign-in limit...
		const spoofer = "198.51.100.7:5555"
		for i := range 3 {
			r := b.send(t, request{method: http.MethodPost, path: "/auth/login", header: via(spoofer, "192.0.2."+strconv.Itoa(i+1)),
				body: map[string]string{"email": "behind@example.com", "password": "a wrong password"}})
			if i < 2 {
				r.problem(t, http.StatusUnauthorized, "invalid_credentials")
				continue
			}
			r.problem(t, http.StatusTooManyRequests, "too_many_attempts")
		}
		throttled := b.lastEvent(t, auth.AuditLoginThrottled)
		require.Equal(t, "198.51.100.7", throttled.IP)
		// ...nor reach it through the proxy under its real address...
		b.send(t, request{method: http.MethodPost, path: "/auth/login", header: via(proxy, "198.51.100.7, 10.0.0.5"),
			body: map[string]string{"email": "behind@example.com", "password": testPassword}}).
			problem(t, http.StatusTooManyRequests, "too_many_attempts")
		// ...while the proxy's other clients sign in as usual.
		login := b.send(t, request{method: http.MethodPost, path: "/auth/login", header: via(proxy, "5.6.7.8"),
			body: map[string]string{"email": "behind@example.com", "password": testPassword}}).tokens(t, http.StatusOK)
		require.Equal(t, "5.6.7.8", b.lastEvent(t, auth.AuditLoginSuccess).IP)
		require.Equal(t, login.SessionID.String(), b.lastEvent(t, auth.AuditLoginSuccess).Details["session"])
	})
}
