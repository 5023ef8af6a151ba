package auth_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/store/memory"
)

// clock is a settable time source shared by the service and its stores.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testBundle struct {
	svc     *auth.Service
	store   *memory.Store
	limiter *memory.Limiter
	revs    *memory.RevocationList
	once    *memory.OneTimeStore
	tokens  *auth.Tokens
	clock   *clock
}

var testRefreshKey = []byte("0123456789abcdef0123456789abcdef")

// setup returns a service on memory stores and a fake clock; mutate may
// change the config before the service is built.
func setup(t *testing.T, mutate ...func(*auth.Config)) *testBundle {
	t.Helper()
	c := &clock{now: time.Now().UTC().Truncate(time.Second)}
	key, err := auth.GenerateSigningKey()
	require.NoError(t, err)
	keys, err := auth.NewKeySet(key)
	require.NoError(t, err)
	tokens, err := auth.NewTokens(keys, auth.TokenConfig{Issuer: "https://api.adshare.test", Now: c.Now})
	require.NoError(t, err)
	b := &testBundle{
		store: memory.New(), limiter: memory.NewLimiter(), revs: memory.NewRevocationList(),
		once: memory.NewOneTimeStore(), tokens: tokens, clock: c,
	}
	b.limiter.Now, b.revs.Now, b.once.Now = c.Now, c.Now, c.Now
	cfg := auth.Config{
		Users: b.store, Sessions: b.store, Identities: b.store, Audit: b.store,
		Limiter: b.limiter, Revocations: b.revs, OneTime: b.once,
		Tokens: tokens, RefreshKey: testRefreshKey, Now: c.Now,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	b.svc, err = auth.NewService(cfg)
	require.NoError(t, err)
	return b
}

// client puts a client address in the context, as the transport does.
func client(ip string) context.Context {
	return auth.NewContextWithClient(context.Background(), auth.Client{IP: ip, UserAgent: "adshare-app/1.0 (iOS)"})
}

const goodPassword = "correct horse battery staple"

func (b *testBundle) register(t *testing.T, email string) (auth.User, auth.TokenPair) {
	t.Helper()
	u, pair, err := b.svc.Register(client("198.51.100.1"), auth.Registration{Email: email, Password: goodPassword})
	require.NoError(t, err)
	return u, pair
}

func (b *testBundle) principal(t *testing.T, pair auth.TokenPair) auth.Principal {
	t.Helper()
	p, err := b.svc.Authenticate(context.Background(), pair.AccessToken)
	require.NoError(t, err)
	return p
}

// audit returns the actions recorded, oldest first.
func (b *testBundle) audit(t *testing.T, f auth.AuditFilter) []auth.AuditEvent {
	t.Helper()
	events, err := b.store.AuditEvents(context.Background(), f)
	require.NoError(t, err)
	for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
		events[i], events[j] = events[j], events[i]
	}
	return events
}

func actions(events []auth.AuditEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Action
	}
	return out
}

func TestRegisterLoginRefreshLogout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := client("203.0.113.9")

	u, pair, err := b.svc.Register(ctx, auth.Registration{Email: " Ada@Example.com ", Password: goodPassword, DisplayName: "  Ada  Lovelace "})
	require.NoError(t, err)
	require.Equal(t, "ada@example.com", u.Email)
	require.Equal(t, "Ada Lovelace", u.Profile.DisplayName)
	require.Equal(t, auth.RoleUser, u.Role)
	require.Equal(t, "free", u.Tier)
	require.NotEmpty(t, pair.AccessToken)
	require.Len(t, pair.RefreshToken, 43)
	require.Equal(t, 15*time.Minute, pair.ExpiresIn)

	p := b.principal(t, pair)
	require.Equal(t, u.ID, p.UserID)
	require.Equal(t, pair.SessionID, p.SessionID)

	u2, login, err := b.svc.Login(ctx, "ADA@example.com", goodPassword)
	require.NoError(t, err)
	require.Equal(t, u.ID, u2.ID)
	require.NotEqual(t, pair.SessionID, login.SessionID, "each sign-in is a new session")

	b.clock.Advance(time.Minute)
	refreshed, err := b.svc.Refresh(ctx, login.RefreshToken)
	require.NoError(t, err)
	require.NotEqual(t, login.RefreshToken, refreshed.RefreshToken)
	require.Equal(t, login.SessionID, refreshed.SessionID)
	b.principal(t, refreshed)

	require.NoError(t, b.svc.Logout(ctx, b.principal(t, refreshed)))
	_, err = b.svc.Authenticate(ctx, refreshed.AccessToken)
	require.ErrorIs(t, err, auth.ErrTokenRevoked, "logout refuses the session's access tokens at once")
	_, err = b.svc.Refresh(ctx, refreshed.RefreshToken)
	require.ErrorIs(t, err, auth.ErrInvalidGrant)

	// The other session is untouched.
	b.principal(t, pair)

	got := actions(b.audit(t, auth.AuditFilter{ActorID: u.ID}))
	require.Equal(t, []string{auth.AuditRegister, auth.AuditLoginSuccess, auth.AuditRefresh, auth.AuditLogout,
		auth.AuditTokenRejected, auth.AuditRefreshFailure}, got)
	for _, e := range b.audit(t, auth.AuditFilter{}) {
		for _, secret := range []string{goodPassword, pair.RefreshToken, pair.AccessToken, login.RefreshToken} {
			require.NotContains(t, e.TargetID+e.Reason+e.UserAgent+strings.Join(mapValues(e.Details), " "), secret)
		}
	}
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestRegisterRejectsBadInputAndChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := client("203.0.113.10")
	b.register(t, "taken@example.com")

	tests := []struct {
		description string
		reg         auth.Registration
		wantErr     error
		wantField   string
	}{
		{"bad email", auth.Registration{Email: "not an email", Password: goodPassword}, auth.ErrInvalidUser, "email"},
		{"short password", auth.Registration{Email: "a@example.com", Password: "short"}, auth.ErrInvalidUser, "password"},
		{"oversized password", auth.Registration{Email: "a@example.com", Password: strings.Repeat("x", 5000)}, auth.ErrInvalidUser, "password"},
		{"common password", auth.Registration{Email: "a@example.com", Password: "password123"}, auth.ErrInvalidUser, "password"},
		{"password is the email", auth.Registration{Email: "longname@example.com", Password: "longname@example.com"}, auth.ErrInvalidUser, "password"},
		{"display name with bidi override", auth.Registration{Email: "a@example.com", Password: goodPassword, DisplayName: "evil\u202egnp.exe"}, auth.ErrInvalidUser, "display_name"},
		{"email taken", auth.Registration{Email: "Taken@Example.com", Password: goodPassword}, auth.ErrEmailTaken, ""},
	}
	for _, tt := range tests {
		_, _, err := b.svc.Register(ctx, tt.reg)
		require.ErrorIs(t, err, tt.wantErr, tt.description)
		if tt.wantField != "" {
			require.Contains(t, errs.As(err).Fields, tt.wantField, tt.description)
		}
	}
	_, err := b.store.UserByEmail(context.Background(), "a@example.com")
	require.ErrorIs(t, err, auth.ErrUserNotFound)
}

// Login answers an unknown email exactly like a wrong password.
func TestLoginDoesNotRevealAccounts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, _ := b.register(t, "known@example.com")
	ctx := client("203.0.113.11")

	_, _, errUnknown := b.svc.Login(ctx, "unknown@example.com", goodPassword)
	_, _, errWrong := b.svc.Login(ctx, "known@example.com", "wrong password, long enough")
	require.ErrorIs(t, errUnknown, auth.ErrInvalidCredentials)
	require.ErrorIs(t, errWrong, auth.ErrInvalidCredentials)
	require.Equal(t, errUnknown.Error(), errWrong.Error())

	failures := b.audit(t, auth.AuditFilter{Action: auth.AuditLoginFailure})
	require.Len(t, failures, 2)
	require.Equal(t, "unknown_email", failures[0].Reason)
	require.Equal(t, "email", failures[0].TargetType)
	require.NotContains(t, failures[0].TargetID, "unknown", "the unknown email is kept only as a keyed hash")
	require.Equal(t, "wrong_password", failures[1].Reason)
	require.Equal(t, u.ID.String(), failures[1].TargetID)
	require.Equal(t, "203.0.113.11", failures[1].IP)
}

func TestLoginIsRateLimitedPerAccountAndPerClient(t *testing.T) {
	t.Parallel()

	t.Run("per account, from many addresses", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *auth.Config) {
			c.LoginLimitPerAccount = auth.Limit{Rate: 3, Period: time.Minute, Burst: 3}
		})
		b.register(t, "victim@example.com")
		for i := range 3 {
			_, _, err := b.svc.Login(client("198.51.100."+strconv.Itoa(10+i)), "victim@example.com", "guess number "+strconv.Itoa(i)+"!")
			require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		}
		_, _, err := b.svc.Login(client("198.51.100.99"), "victim@example.com", goodPassword)
		require.ErrorIs(t, err, auth.ErrTooManyAttempts, "even the right password waits")
		require.InDelta(t, 20*time.Second, errs.As(err).RetryAfter, float64(time.Second))
		require.Len(t, b.audit(t, auth.AuditFilter{Action: auth.AuditLoginThrottled}), 1)

		// Never a permanent lock-out: after RetryAfter, the owner gets in.
		b.clock.Advance(21 * time.Second)
		_, _, err = b.svc.Login(client("198.51.100.99"), "victim@example.com", goodPassword)
		require.NoError(t, err)
	})

	t.Run("per client, IPv6 by /64", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *auth.Config) {
			c.LoginLimitPerClient = auth.Limit{Rate: 2, Period: time.Minute, Burst: 2}
		})
		_, _, err := b.svc.Login(client("2001:db8:1:2::1"), "a@example.com", goodPassword)
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		_, _, err = b.svc.Login(client("2001:db8:1:2:ffff::9"), "b@example.com", goodPassword)
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		_, _, err = b.svc.Login(client("2001:db8:1:2:aaaa::1"), "c@example.com", goodPassword)
		require.ErrorIs(t, err, auth.ErrTooManyAttempts, "same /64")
		_, _, err = b.svc.Login(client("2001:db8:1:3::1"), "c@example.com", goodPassword)
		require.ErrorIs(t, err, auth.ErrInvalidCredentials, "another /64 is another client")
	})

	t.Run("fails closed when the limiter cannot answer", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *auth.Config) { c.Limiter = brokenLimiter{} })
		_, _, err := b.svc.Login(client("198.51.100.1"), "a@example.com", goodPassword)
		require.ErrorIs(t, err, auth.ErrLimiterUnavailable)
		require.Equal(t, errs.Unavailable, errs.KindOf(err))
	})
}

// mustRefresh refreshes *pair in place and returns the new pair.
func mustRefresh(t *testing.T, b *testBundle, pair *auth.TokenPair) auth.TokenPair {
	t.Helper()
	next, err := b.svc.Refresh(client("203.0.113.1"), pair.RefreshToken)
	require.NoError(t, err)
	*pair = next
	return next
}

type brokenLimiter struct{}

func (brokenLimiter) Allow(context.Context, string, auth.Limit) (auth.LimitResult, error) {
	return auth.LimitResult{}, errors.New("redis: connection refused")
}

func TestRefreshRotationReuseAndGrace(t *testing.T) {
	t.Parallel()

	t.Run("a reused token revokes the whole session", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u, first := b.register(t, "reuse@example.com")
		ctx := client("203.0.113.20")
		second, err := b.svc.Refresh(ctx, first.RefreshToken)
		require.NoError(t, err)
		third, err := b.svc.Refresh(ctx, second.RefreshToken)
		require.NoError(t, err)

		// An attacker replays the first token long after it was rotated.
		b.clock.Advance(time.Minute)
		_, err = b.svc.Refresh(ctx, first.RefreshToken)
		require.ErrorIs(t, err, auth.ErrInvalidGrant)

		// The legitimate client's current tokens die with the session.
		_, err = b.svc.Refresh(ctx, third.RefreshToken)
		require.ErrorIs(t, err, auth.ErrInvalidGrant)
		_, err = b.svc.Authenticate(ctx, third.AccessToken)
		require.ErrorIs(t, err, auth.ErrTokenRevoked)
		sess, err := b.store.Session(context.Background(), first.SessionID)
		require.NoError(t, err)
		require.Equal(t, auth.RevokeRefreshReuse, sess.RevokeReason)
		reuse := b.audit(t, auth.AuditFilter{Action: auth.AuditRefreshReuse})
		require.Len(t, reuse, 1)
		require.Equal(t, u.ID, reuse[0].ActorID)
		require.Equal(t, first.SessionID.String(), reuse[0].TargetID)
	})

	t.Run("a concurrent double refresh within the grace window gets one successor", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, first := b.register(t, "double@example.com")
		ctx := client("203.0.113.21")
		const n = 4
		results := make([]auth.TokenPair, n)
		errsOut := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i], errsOut[i] = b.svc.Refresh(ctx, first.RefreshToken) })
		}
		wg.Wait()
		for i := range n {
			require.NoError(t, errsOut[i])
			require.Equal(t, results[0].RefreshToken, results[i].RefreshToken, "every racer gets the same successor")
		}
		require.Len(t, b.audit(t, auth.AuditFilter{Action: auth.AuditRefreshGrace}), n-1)
		// The session lives on, and the successor works once.
		next, err := b.svc.Refresh(ctx, results[0].RefreshToken)
		require.NoError(t, err)
		b.principal(t, next)
	})

	t.Run("after the grace window, a second use is reuse", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, first := b.register(t, "late@example.com")
		ctx := client("203.0.113.22")
		second, err := b.svc.Refresh(ctx, first.RefreshToken)
		require.NoError(t, err)
		b.clock.Advance(auth.DefaultRefreshGrace + time.Second)
		_, err = b.svc.Refresh(ctx, first.RefreshToken)
		require.ErrorIs(t, err, auth.ErrInvalidGrant)
		_, err = b.svc.Refresh(ctx, second.RefreshToken)
		require.ErrorIs(t, err, auth.ErrInvalidGrant)
	})

	t.Run("within the window, but the successor was used: reuse", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, first := b.register(t, "used@example.com")
		ctx := client("203.0.113.23")
		second, err := b.svc.Refresh(ctx, first.RefreshToken)
		require.NoError(t, err)
		_, err = b.svc.Refresh(ctx, second.RefreshToken)
		require.NoError(t, err)
		_, err = b.svc.Refresh(ctx, first.RefreshToken)
		require.ErrorIs(t, err, auth.ErrInvalidGrant)
		require.Len(t, b.audit(t, auth.AuditFilter{Action: auth.AuditRefreshReuse}), 1)
	})

	t.Run("grace disabled: any second use is reuse", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *auth.Config) { c.RefreshGrace = -1 })
		_, first := b.register(t, "strict@example.com")
		ctx := client("203.0.113.24")
		_, err := b.svc.Refresh(ctx, first.RefreshToken)
		require.NoError(t, err)
		_, err = b.svc.Refresh(ctx, first.RefreshToken)
		require.ErrorIs(t, err, auth.ErrInvalidGrant)
	})

	t.Run("unknown, malformed and expired tokens", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, first := b.register(t, "expiry@example.com")
		ctx := client("203.0.113.25")
		for _, tok := range []string{"", "short", strings.Repeat("A", 43), strings.Repeat("é", 30), first.RefreshToken + "x"} {
			_, err := b.svc.Refresh(ctx, tok)
			require.ErrorIs(t, err, auth.ErrInvalidGrant, "%q", tok)
		}
		b.clock.Advance(auth.DefaultSessionIdleTimeout)
		_, err := b.svc.Refresh(ctx, first.RefreshToken)
		require.ErrorIs(t, err, auth.ErrInvalidGrant, "idle timeout")
	})

	t.Run("the absolute lifetime ends a session that is refreshed daily", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, pair := b.register(t, "daily@example.com")
		ctx := client("203.0.113.26")
		var err error
		for day := 1; ; day++ {
			b.clock.Advance(24 * time.Hour)
			pair, err = b.svc.Refresh(ctx, pair.RefreshToken)
			if err != nil {
				require.ErrorIs(t, err, auth.ErrInvalidGrant)
				require.Equal(t, int(auth.DefaultSessionMaxLifetime/(24*time.Hour)), day)
				break
			}
		}
	})
}

func TestLogoutWithRefreshToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, pair := b.register(t, "bye@example.com")
	ctx := client("203.0.113.30")
	require.NoError(t, b.svc.LogoutWithRefreshToken(ctx, pair.RefreshToken))
	_, err := b.svc.Authenticate(ctx, pair.AccessToken)
	require.ErrorIs(t, err, auth.ErrTokenRevoked)
	_, err = b.svc.Refresh(ctx, pair.RefreshToken)
	require.ErrorIs(t, err, auth.ErrInvalidGrant)
	require.NoError(t, b.svc.LogoutWithRefreshToken(ctx, pair.RefreshToken), "already over is fine")
	require.ErrorIs(t, b.svc.LogoutWithRefreshToken(ctx, "garbage"), auth.ErrInvalidGrant)
}

func TestSessionsListRevokeOwnership(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := client("203.0.113.40")
	alice, a1 := b.register(t, "alice@example.com")
	_, a2, err := b.svc.Login(ctx, "alice@example.com", goodPassword)
	require.NoError(t, err)
	_, mallory := b.register(t, "mallory@example.com")

	list, err := b.svc.Sessions(ctx, b.principal(t, a1))
	require.NoError(t, err)
	require.Len(t, list, 2)
	for _, s := range list {
		require.Equal(t, alice.ID, s.UserID)
	}

	// Mallory cannot end Alice's session by naming it.
	err = b.svc.RevokeSession(ctx, b.principal(t, mallory), a2.SessionID)
	require.ErrorIs(t, err, auth.ErrSessionNotFound)
	b.principal(t, a2)
	denied := b.audit(t, auth.AuditFilter{Action: auth.AuditAccessDenied})
	require.Len(t, denied, 1)
	require.Equal(t, "not_owner", denied[0].Reason)

	require.NoError(t, b.svc.RevokeSession(ctx, b.principal(t, a1), a2.SessionID))
	_, err = b.svc.Authenticate(ctx, a2.AccessToken)
	require.ErrorIs(t, err, auth.ErrTokenRevoked)

	_, a3, err := b.svc.Login(ctx, "alice@example.com", goodPassword)
	require.NoError(t, err)
	n, err := b.svc.RevokeAllSessions(ctx, b.principal(t, a1), true)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	b.principal(t, a1)
	_, err = b.svc.Authenticate(ctx, a3.AccessToken)
	require.ErrorIs(t, err, auth.ErrTokenRevoked)
	n, err = b.svc.RevokeAllSessions(ctx, b.principal(t, a1), false)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = b.svc.Authenticate(ctx, a1.AccessToken)
	require.ErrorIs(t, err, auth.ErrTokenRevoked)
}

func TestChangePasswordEndsOtherSessions(t *testing.T) {
	t.Parallel()
	// Changing the password spends the account's sign-in budget too (a
	// stolen access token must not brute-force the current password).
	b := setup(t, func(c *auth.Config) { c.LoginLimitPerAccount = auth.Limit{Rate: 10, Period: time.Minute, Burst: 10} })
	ctx := client("203.0.113.50")
	_, here := b.register(t, "pw@example.com")
	_, elsewhere, err := b.svc.Login(ctx, "pw@example.com", goodPassword)
	require.NoError(t, err)

	err = b.svc.ChangePassword(ctx, b.principal(t, here), "not the password", "a brand new passphrase")
	require.ErrorIs(t, err, auth.ErrInvalidCredentials)
	err = b.svc.ChangePassword(ctx, b.principal(t, here), goodPassword, "short")
	require.ErrorIs(t, err, auth.ErrWeakPassword)
	require.NoError(t, b.svc.ChangePassword(ctx, b.principal(t, here), goodPassword, "a brand new passphrase"))

	b.principal(t, here)
	_, err = b.svc.Authenticate(ctx, elsewhere.AccessToken)
	require.ErrorIs(t, err, auth.ErrTokenRevoked)
	_, _, err = b.svc.Login(ctx, "pw@example.com", goodPassword)
	require.ErrorIs(t, err, auth.ErrInvalidCredentials)
	_, _, err = b.svc.Login(ctx, "pw@example.com", "a brand new passphrase")
	require.NoError(t, err)
}

func TestRolesPermissionsAndAdminActions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := client("203.0.113.60")
	user, userPair := b.register(t, "plain@example.com")
	admin, adminPair := b.register(t, "boss@example.com")
	_, err := b.store.SetRole(context.Background(), admin.ID, auth.RoleAdmin, b.clock.Now())
	require.NoError(t, err)
	adminPair, err = b.svc.Refresh(ctx, adminPair.RefreshToken) // pick up the role
	require.NoError(t, err)
	ap := b.principal(t, adminPair)
	require.Equal(t, auth.RoleAdmin, ap.Role)
	up := b.principal(t, userPair)

	// A user cannot act as an admin; the denial is audited.
	_, err = b.svc.SetTier(ctx, up, user.ID, "premium")
	require.ErrorIs(t, err, auth.ErrForbidden)
	_, err = b.svc.SetRole(ctx, up, user.ID, auth.RoleAdmin)
	require.ErrorIs(t, err, auth.ErrForbidden)
	_, err = b.svc.AuditEvents(ctx, up, auth.AuditFilter{})
	require.ErrorIs(t, err, auth.ErrForbidden)
	_, err = b.svc.User(ctx, up, admin.ID)
	require.ErrorIs(t, err, auth.ErrForbidden)
	require.Len(t, b.audit(t, auth.AuditFilter{Action: auth.AuditAccessDenied, ActorID: user.ID}), 4)

	// The admin moves the user to pro: new earnings only.
	before := b.clock.Now()
	b.clock.Advance(time.Hour)
	got, err := b.svc.SetTier(ctx, ap, user.ID, "pro")
	require.NoError(t, err)
	require.Equal(t, "pro", got.Tier)
	tierThen, err := b.svc.TierAt(ctx, user.ID, before)
	require.NoError(t, err)
	require.Equal(t, "free", tierThen.Name)
	tierNow, err := b.svc.TierAt(ctx, user.ID, b.clock.Now())
	require.NoError(t, err)
	require.Equal(t, 6500, tierNow.RevenueShareBP)
	_, err = b.svc.SetTier(ctx, ap, user.ID, "platinum")
	require.ErrorIs(t, err, auth.ErrTierNotFound)

	// A role change invalidates the user's current access tokens; a refresh
	// brings the new role.
	userPair, err = b.svc.Refresh(ctx, userPair.RefreshToken)
	require.NoError(t, err)
	ap = b.principal(t, mustRefresh(t, b, &adminPair))
	b.clock.Advance(2 * time.Second)
	_, err = b.svc.SetRole(ctx, ap, user.ID, auth.RoleAdvertiser)
	require.NoError(t, err)
	_, err = b.svc.Authenticate(ctx, userPair.AccessToken)
	require.ErrorIs(t, err, auth.ErrTokenRevoked)
	b.clock.Advance(time.Second)
	userPair, err = b.svc.Refresh(ctx, userPair.RefreshToken)
	require.NoError(t, err)
	require.Equal(t, auth.RoleAdvertiser, b.principal(t, userPair).Role)

	_, err = b.svc.SetRole(ctx, ap, admin.ID, auth.RoleUser)
	require.ErrorIs(t, err, auth.ErrForbidden, "admins cannot demote themselves")

	n, err := b.svc.RevokeUserSessionsAsAdmin(ctx, ap, user.ID)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = b.svc.Authenticate(ctx, userPair.AccessToken)
	require.ErrorIs(t, err, auth.ErrTokenRevoked)

	events, err := b.svc.AuditEvents(ctx, ap, auth.AuditFilter{TargetID: user.ID.String()})
	require.NoError(t, err)
	var tierEvent *auth.AuditEvent
	for i := range events {
		if events[i].Action == auth.AuditTierChanged {
			tierEvent = &events[i]
		}
	}
	require.NotNil(t, tierEvent)
	require.Equal(t, admin.ID, tierEvent.ActorID)
	require.Equal(t, map[string]string{"from": "free", "to": "pro"}, tierEvent.Details)
}

func TestProfileUpdate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := client("203.0.113.70")
	_, pair := b.register(t, "profile@example.com")
	p := b.principal(t, pair)
	str := func(s string) *string { return &s }
	yes := true

	u, err := b.svc.UpdateProfile(ctx, p, auth.ProfileUpdate{DisplayName: str("Grace"), Locale: str("en-gb"),
		TimeZone: str("Europe/London"), NotifyPush: &yes, DoNotSell: &yes, PayoutCurrency: str("gbp")})
	require.NoError(t, err)
	require.Equal(t, "Grace", u.Profile.DisplayName)
	require.Equal(t, "en-GB", u.Profile.Preferences.Locale)
	require.Equal(t, "GBP", u.Profile.Settings.PayoutCurrency)
	require.True(t, u.Profile.Preferences.Notifications.Push)
	require.True(t, u.Profile.Preferences.Notifications.Email, "untouched fields keep their value")

	for _, bad := range []auth.ProfileUpdate{
		{TimeZone: str("Mars/Olympus_Mons")},
		{TimeZone: str("../../etc/passwd")},
		{Locale: str("not a locale!")},
		{Theme: str("neon")},
		{PayoutCurrency: str("BTC")},
		{DisplayName: str(strings.Repeat("n", 65))},
		{DisplayName: str("bell\a")},
	} {
		_, err := b.svc.UpdateProfile(ctx, p, bad)
		require.ErrorIs(t, err, auth.ErrInvalidProfile)
	}
	again, err := b.svc.Me(ctx, p)
	require.NoError(t, err)
	require.Equal(t, u.Profile, again.Profile, "a refused update changes nothing")
}

func TestConfigMisuse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_ = b
	for _, mutate := range []func(*auth.Config){
		func(c *auth.Config) { c.Users = nil },
		func(c *auth.Config) { c.Limiter = nil },
		func(c *auth.Config) { c.Tokens = nil },
		func(c *auth.Config) { c.RefreshKey = []byte("short") },
		func(c *auth.Config) { c.RefreshGrace = time.Hour },
		func(c *auth.Config) { c.SessionIdleTimeout = 100 * 24 * time.Hour },
	} {
		cfg := auth.Config{
			Users: b.store, Sessions: b.store, Identities: b.store, Audit: b.store,
			Limiter: b.limiter, Revocations: b.revs, OneTime: b.once, Tokens: b.tokens, RefreshKey: testRefreshKey,
		}
		mutate(&cfg)
		_, err := auth.NewService(cfg)
		require.Error(t, err)
	}
}

// Garbage tokens are audited, but at most a bounded number per client
// address: the log cannot be grown at request rate.
func TestTokenRejectionAuditsAreBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for range 100 {
		_, err := b.svc.Authenticate(client("192.0.2.66"), "garbage.token.value")
		require.ErrorIs(t, err, auth.ErrUnauthenticated)
	}
	n := len(b.audit(t, auth.AuditFilter{Action: auth.AuditTokenRejected, Limit: 1000}))
	require.Equal(t, 30, n)
	_, err := b.svc.Authenticate(client("192.0.2.67"), "garbage.token.value")
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	require.Len(t, b.audit(t, auth.AuditFilter{Action: auth.AuditTokenRejected, Limit: 1000}), 31, "another address is audited")
}
