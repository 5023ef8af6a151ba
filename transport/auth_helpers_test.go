package transport

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	oasvalidator "github.com/pb33f/libopenapi-validator"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/auth/oidc/oidctest"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/store/postgres/postgrestest"
	redisstore "github.com/adshare/adshare/store/redis"
)

// The backends every user-system scenario runs against.
const (
	backendMemory   = "memory"
	backendPostgres = "postgres+redis"
)

const (
	testIssuer       = "https://api.adshare.test"
	testPassword     = "correct horse battery staple"
	testOIDCRedirect = "https://dashboard.adshare.test/oidc/callback"
	// testPeerHeader lets a test choose the TCP peer address the API sees
	// (see withTestPeer); over loopback every peer is 127.0.0.1.
	testPeerHeader = "X-Test-Peer"
)

var testRefreshKey = []byte("0123456789abcdef0123456789abcdef")

// fakeClock is a settable time source. On the memory backend it drives the
// service, the token issuer and the memory limiter, revocation list and
// one-time store; on PostgreSQL+Redis only the service and the token issuer
// (Redis keeps its own time), which is enough for the refresh grace window
// and role-change revocations.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now().UTC().Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// bundleOpts changes what newAuthBundle builds; the zero value is the
// default API with the service's default limits.
type bundleOpts struct {
	// oidc adds an identity provider named "mock", backed by mockoidc.
	oidc bool
	// authConfig changes the service's config before it is built.
	authConfig func(*auth.Config)
	// trustedProxies is transport.Config.TrustedProxies.
	trustedProxies []netip.Prefix
	// apiLimits enables the API-wide rate limits with the bundle's limiter
	// and these limits (zero: the defaults).
	apiLimits              bool
	clientLimit, userLimit auth.Limit
	// configure, when set, changes the API's config just before it is
	// built, with the bundle's stores and service ready (the ad space tests
	// mount the ad space system this way).
	configure func(t *testing.T, b *authBundle, cfg *Config)
}

// authBundle is the API with the user system on one backend, served over
// real HTTP.
type authBundle struct {
	backend string
	svc     *auth.Service
	srv     *httptest.Server
	client  *http.Client
	users   auth.UserStore
	audit   auth.AuditLog
	limiter auth.Limiter
	clock   *fakeClock
	key     ed25519.PrivateKey
	keys    *auth.KeySet
	oas     oasvalidator.Validator
	oidc    *oidctest.Server // nil unless bundleOpts.oidc
	logs    *testenv.Buffer
	redis   *redisstore.Client // nil on the memory backend
}

// forEachBackend runs fn, in parallel, on a fresh bundle per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b *authBundle)) {
	t.Helper()
	forEachBackendWith(t, bundleOpts{}, fn)
}

// forEachBackendWith is forEachBackend with options.
func forEachBackendWith(t *testing.T, opts bundleOpts, fn func(t *testing.T, b *authBundle)) {
	t.Helper()
	for _, backend := range []string{backendMemory, backendPostgres} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			fn(t, newAuthBundle(t, backend, opts))
		})
	}
}

// newAuthBundle builds the stores of backend, the service and the API, and
// serves it with httptest.NewServer until t ends.
func newAuthBundle(t *testing.T, backend string, opts bundleOpts) *authBundle {
	t.Helper()
	clock := newFakeClock()
	key, err := auth.GenerateSigningKey()
	require.NoError(t, err)
	keys, err := auth.NewKeySet(key)
	require.NoError(t, err)
	tokens, err := auth.NewTokens(keys, auth.TokenConfig{Issuer: testIssuer, Now: clock.Now})
	require.NoError(t, err)
	// Other parallel tests hash too: wait for a slot rather than fail with
	// ErrBusy on a loaded machine.
	hasher, err := auth.NewHasher(auth.HasherConfig{MaxWait: time.Minute})
	require.NoError(t, err)

	b := &authBundle{backend: backend, clock: clock, key: key, keys: keys, oas: openAPIValidator(t), logs: &testenv.Buffer{}}
	cfg := auth.Config{Tokens: tokens, RefreshKey: testRefreshKey, Hasher: hasher, Now: clock.Now}
	switch backend {
	case backendMemory:
		st := memory.New()
		lim, revs, once := memory.NewLimiter(), memory.NewRevocationList(), memory.NewOneTimeStore()
		lim.Now, revs.Now, once.Now = clock.Now, clock.Now, clock.Now
		cfg.Users, cfg.Sessions, cfg.Identities, cfg.Audit, cfg.Consents = st, st, st, st, st
		cfg.Limiter, cfg.Revocations, cfg.OneTime = lim, revs, once
	case backendPostgres:
		db := postgrestest.NewWithKeyring(t) // billing's sealed fields need one
		db.Now = clock.Now
		redisURL, prefix := testenv.Redis(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rc, err := redisstore.Open(ctx, redisURL, &redisstore.Config{Prefix: prefix})
		require.NoError(t, err)
		t.Cleanup(func() { _ = rc.Stop(context.Background()) })
		revs := rc.RevocationList(nil)
		require.NoError(t, revs.Start(ctx))
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, revs.Stop(ctx))
		})
		cfg.Users, cfg.Sessions, cfg.Identities, cfg.Audit, cfg.Consents = db, db, db, db, db
		cfg.Limiter, cfg.Revocations, cfg.OneTime = rc.Limiter(), revs, rc.OneTimeStore()
		b.redis = rc
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	b.users, b.audit, b.limiter = cfg.Users, cfg.Audit, cfg.Limiter

	if opts.oidc {
		b.oidc = oidctest.Start(t)
		cfg.Providers = []auth.IdentityProvider{b.oidc.Provider(t, "mock", testOIDCRedirect)}
	}
	if opts.authConfig != nil {
		opts.authConfig(&cfg)
	}
	b.svc, err = auth.NewService(cfg)
	require.NoError(t, err)

	tcfg := Config{
		Auth:           b.svc,
		Logger:         slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		TrustedProxies: opts.trustedProxies,
	}
	if opts.apiLimits {
		tcfg.Limiter, tcfg.ClientRateLimit, tcfg.UserRateLimit = b.limiter, opts.clientLimit, opts.userLimit
	}
	if opts.configure != nil {
		opts.configure(t, b, &tcfg)
	}
	h, err := New(tcfg)
	require.NoError(t, err)
	b.srv = httptest.NewServer(withTestPeer(h))
	t.Cleanup(b.srv.Close)
	b.client = b.srv.Client()
	b.client.Timeout = 30 * time.Second
	return b
}

// withTestPeer stands in for the network in front of the API: a request
// carrying testPeerHeader arrives from that address (as from a load
// balancer at 10.0.0.7, say) instead of loopback. The header is removed, so
// the API never sees it.
func withTestPeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if peer := r.Header.Get(testPeerHeader); peer != "" {
			r.RemoteAddr = peer
			r.Header.Del(testPeerHeader)
		}
		next.ServeHTTP(w, r)
	})
}

// request is one call to the API.
type request struct {
	method string
	path   string // with the query, if any
	token  string // sent as Authorization: Bearer
	// body is sent as is when a string, else JSON-encoded; nil sends none.
	body   any
	header http.Header // extra headers; Content-Type overrides the JSON default
}

// reply is the API's answer, body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with a JSON body (or none) and an optional token.
func (b *authBundle) do(t *testing.T, method, path, token string, body any) reply {
	t.Helper()
	return b.send(t, request{method: method, path: path, token: token, body: body})
}

// send sends r over HTTP and fails unless the OpenAPI document allows the
// answer.
func (b *authBundle) send(t *testing.T, r request) reply {
	t.Helper()
	var body io.Reader
	switch v := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		require.NoError(t, err)
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(t.Context(), r.method, b.srv.URL+r.path, body)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, vs := range r.header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	requireDocumented(t, b.oas, req, resp)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: raw}
}

// requireStatus fails unless the reply has the status, showing the body.
func (r reply) requireStatus(t *testing.T, status int) reply {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	return r
}

// decode reads a JSON reply into v, refusing unknown fields.
func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	require.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"), "body: %s", r.body)
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), "body: %s", r.body)
}

// problem checks that the reply is a problem with this status and code, and
// returns it.
func (r reply) problem(t *testing.T, status int, code string) Problem {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	p := problemOf(t, &http.Response{StatusCode: r.status, Header: r.header, Body: io.NopCloser(bytes.NewReader(r.body))})
	require.Equal(t, code, p.Code, "body: %s", r.body)
	if status == http.StatusUnauthorized {
		require.Equal(t, `Bearer realm="adshare"`, r.header.Get("WWW-Authenticate"))
	}
	return p
}

// pointers returns the JSON pointers of a problem's field errors.
func pointers(p Problem) []string {
	out := make([]string, 0, len(p.Errors))
	for _, e := range p.Errors {
		out = append(out, e.Pointer)
	}
	return out
}

// tokens checks a token response (OAuth 2.0 shape, never cached) and
// returns it.
func (r reply) tokens(t *testing.T, status int) tokenJSON {
	t.Helper()
	r.requireStatus(t, status)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	require.Equal(t, "no-cache", r.header.Get("Pragma"))
	var raw map[string]any
	require.NoError(t, json.Unmarshal(r.body, &raw))
	for _, k := range []string{"access_token", "token_type", "expires_in", "refresh_token"} {
		require.Contains(t, raw, k)
	}
	var tok tokenJSON
	r.decode(t, &tok)
	require.Equal(t, "Bearer", tok.TokenType)
	require.Equal(t, int(auth.DefaultAccessTokenTTL/time.Second), tok.ExpiresIn)
	require.Len(t, strings.Split(tok.AccessToken, "."), 3)
	require.NotEmpty(t, tok.RefreshToken)
	require.NotEqual(t, uuid.Nil, tok.SessionID)
	return tok
}

// register signs up email with testPassword and returns the tokens, which
// carry the user.
func (b *authBundle) register(t *testing.T, email string) tokenJSON {
	t.Helper()
	tok := b.do(t, http.MethodPost, "/auth/register", "", map[string]string{"email": email, "password": testPassword}).
		tokens(t, http.StatusCreated)
	require.NotNil(t, tok.User)
	require.True(t, tok.Created)
	return tok
}

// login signs in with testPassword.
func (b *authBundle) login(t *testing.T, email string) tokenJSON {
	t.Helper()
	return b.do(t, http.MethodPost, "/auth/login", "", map[string]string{"email": email, "password": testPassword}).
		tokens(t, http.StatusOK)
}

// refresh rotates a refresh token.
func (b *authBundle) refresh(t *testing.T, refreshToken string) tokenJSON {
	t.Helper()
	return b.do(t, http.MethodPost, "/auth/refresh", "", map[string]string{"refresh_token": refreshToken}).
		tokens(t, http.StatusOK)
}

// me returns the account of the token.
func (b *authBundle) me(t *testing.T, token string) userJSON {
	t.Helper()
	var u userJSON
	b.do(t, http.MethodGet, "/users/me", token, nil).requireStatus(t, http.StatusOK).decode(t, &u)
	return u
}

// promote sets the user's role in the store, as an operator would for the
// first admin, and returns tokens refreshed to carry it.
func (b *authBundle) promote(t *testing.T, tok tokenJSON, role auth.Role) tokenJSON {
	t.Helper()
	_, err := b.users.SetRole(context.Background(), tok.User.ID, role, b.clock.Now())
	require.NoError(t, err)
	next := b.refresh(t, tok.RefreshToken)
	next.User = tok.User
	return next
}

// events returns the audit events matching f from the store, newest first.
func (b *authBundle) events(t *testing.T, f auth.AuditFilter) []auth.AuditEvent {
	t.Helper()
	if f.Limit == 0 {
		f.Limit = 1000
	}
	events, err := b.audit.AuditEvents(context.Background(), f)
	require.NoError(t, err)
	return events
}

// lastEvent returns the newest audit event with this action.
func (b *authBundle) lastEvent(t *testing.T, action string) auth.AuditEvent {
	t.Helper()
	events := b.events(t, auth.AuditFilter{Action: action, Limit: 1})
	require.Len(t, events, 1, "no %s event", action)
	return events[0]
}

// jwtHeader decodes the header of a JWT.
func jwtHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	require.NoError(t, err)
	var h map[string]any
	require.NoError(t, json.Unmarshal(raw, &h))
	return h
}

// browse plays the browser at the provider and returns the code and state
// it sends back to the registered redirect URI.
func browse(t *testing.T, authURL string) (code, state string) {
	t.Helper()
	loc, code, state := oidctest.Browse(t, authURL)
	require.Equal(t, testOIDCRedirect, loc.Scheme+"://"+loc.Host+loc.Path)
	return code, state
}

// beginOIDC starts the web flow over the API and returns the state and the
// provider's code for it.
func (b *authBundle) beginOIDC(t *testing.T, subject, email string) (code, state string) {
	t.Helper()
	b.oidc.QueueUser(subject, email, true)
	var a struct {
		AuthorizationURL string    `json:"authorization_url"`
		State            string    `json:"state"`
		ExpiresAt        time.Time `json:"expires_at"`
	}
	b.do(t, http.MethodPost, "/auth/oidc/mock/authorize", "", map[string]string{"redirect_uri": testOIDCRedirect}).
		requireStatus(t, http.StatusOK).decode(t, &a)
	code, state = browse(t, a.AuthorizationURL)
	require.Equal(t, a.State, state)
	require.NotEmpty(t, code)
	return code, state
}

// nativeIDToken plays the mobile app: it signs in at the provider itself,
// passing nonce, and returns the raw ID token.
func (b *authBundle) nativeIDToken(t *testing.T, subject, email, nonce string) string {
	t.Helper()
	b.oidc.QueueUser(subject, email, true)
	return b.oidc.NativeIDToken(t, nonce)
}

// jsonUnmarshalStrict decodes raw into v, refusing unknown fields.
func jsonUnmarshalStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
