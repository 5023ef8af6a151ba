package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
)

// AuthStores is every store the auth service needs, over the same data.
type AuthStores interface {
	auth.UserStore
	auth.SessionStore
	auth.IdentityStore
	auth.AuditLog
}

// RunAccounts runs the parts of the auth.UserStore contract beyond plain
// users: accounts with passwords and identities, profiles, roles and the
// tier history.
func RunAccounts(t *testing.T, newStore func(t *testing.T) AuthStores) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

	t.Run("password accounts and identity-only accounts", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		withPassword := NewUser(t, "pw@example.com")
		require.NoError(t, s.CreateAccount(ctx, auth.NewAccount{User: withPassword, PasswordHash: fakeHash("one")}))
		hash, err := s.PasswordHash(ctx, withPassword.ID)
		require.NoError(t, err)
		require.Equal(t, fakeHash("one"), hash)

		require.NoError(t, s.SetPasswordHash(ctx, withPassword.ID, fakeHash("two"), t0))
		hash, err = s.PasswordHash(ctx, withPassword.ID)
		require.NoError(t, err)
		require.Equal(t, fakeHash("two"), hash)

		oidcOnly := NewUser(t, "oidc@example.com")
		ident := &auth.Identity{Issuer: "https://idp.example", Subject: "sub-1", Provider: "idp", Email: "oidc@example.com", CreatedAt: t0}
		require.NoError(t, s.CreateAccount(ctx, auth.NewAccount{User: oidcOnly, Identity: ident}))
		_, err = s.PasswordHash(ctx, oidcOnly.ID)
		require.ErrorIs(t, err, auth.ErrNoPassword)
		got, err := s.IdentityBySubject(ctx, "https://idp.example", "sub-1")
		require.NoError(t, err)
		require.Equal(t, oidcOnly.ID, got.UserID)

		_, err = s.PasswordHash(ctx, uuid.New())
		require.ErrorIs(t, err, auth.ErrUserNotFound)
		require.ErrorIs(t, s.SetPasswordHash(ctx, uuid.New(), fakeHash("x"), t0), auth.ErrUserNotFound)
	})

	t.Run("an account whose identity is taken is not created at all", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		first := NewUser(t, "first@example.com")
		ident := auth.Identity{Issuer: "https://idp.example", Subject: "same", Provider: "idp", CreatedAt: t0}
		require.NoError(t, s.CreateAccount(ctx, auth.NewAccount{User: first, Identity: &ident}))
		second := NewUser(t, "second@example.com")
		require.ErrorIs(t, s.CreateAccount(ctx, auth.NewAccount{User: second, Identity: &ident}), auth.ErrIdentityLinked)
		_, err := s.UserByEmail(ctx, "second@example.com")
		require.ErrorIs(t, err, auth.ErrUserNotFound, "all or nothing")
	})

	t.Run("profile round trip", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		u := NewUser(t, "profile@example.com")
		require.NoError(t, createUser(ctx, s, u))
		got, err := s.UserByID(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, auth.DefaultProfile(), got.Profile)

		p := auth.Profile{
			DisplayName: "Zoë Ünïcode 🚲",
			Preferences: auth.Preferences{Locale: "de-DE", TimeZone: "Europe/Berlin", Theme: "dark",
				Notifications: auth.Notifications{Push: true, WeeklyReport: true}},
			Settings: auth.Settings{PersonalizedAds: true, DoNotSell: true, PayoutCurrency: "EUR"},
		}
		later := t0.Add(time.Hour)
		updated, err := s.UpdateProfile(ctx, u.ID, p, later)
		require.NoError(t, err)
		require.Equal(t, p, updated.Profile)
		require.True(t, later.Equal(updated.UpdatedAt))
		got, err = s.UserByID(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, p, got.Profile)
		require.Equal(t, u.Email, got.Email, "other fields unchanged")

		_, err = s.UpdateProfile(ctx, uuid.New(), p, later)
		require.ErrorIs(t, err, auth.ErrUserNotFound)
	})

	t.Run("role changes", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		u := NewUser(t, "role@example.com")
		require.NoError(t, createUser(ctx, s, u))
		got, err := s.SetRole(ctx, u.ID, auth.RoleModerator, t0)
		require.NoError(t, err)
		require.Equal(t, auth.RoleModerator, got.Role)
		got, err = s.UserByEmail(ctx, u.Email)
		require.NoError(t, err)
		require.Equal(t, auth.RoleModerator, got.Role)
		_, err = s.SetRole(ctx, uuid.New(), auth.RoleAdmin, t0)
		require.ErrorIs(t, err, auth.ErrUserNotFound)
	})

	t.Run("tier history answers which tier was in force when", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		u, err := auth.NewUser("tiers@example.com", auth.RoleUser, "free", t0)
		require.NoError(t, err)
		require.NoError(t, createUser(ctx, s, u))
		admin := uuid.New()

		got, err := s.SetTier(ctx, auth.TierChange{UserID: u.ID, Tier: "pro", EffectiveAt: t0.Add(24 * time.Hour), ChangedBy: admin})
		require.NoError(t, err)
		require.Equal(t, "pro", got.Tier)
		_, err = s.SetTier(ctx, auth.TierChange{UserID: u.ID, Tier: "premium", EffectiveAt: t0.Add(48 * time.Hour)})
		require.NoError(t, err)

		for _, tc := range []struct {
			at   time.Time
			want string
		}{
			{t0.Add(-time.Hour), "free"}, // before the account existed: its starting tier
			{t0, "free"},
			{t0.Add(24*time.Hour - time.Microsecond), "free"},
			{t0.Add(24 * time.Hour), "pro"},
			{t0.Add(47 * time.Hour), "pro"},
			{t0.Add(72 * time.Hour), "premium"},
		} {
			tier, err := s.TierAt(ctx, u.ID, tc.at)
			require.NoError(t, err)
			require.Equal(t, tc.want, tier, "at %v", tc.at)
		}
		cur, err := s.UserByID(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, "premium", cur.Tier)

		_, err = s.TierAt(ctx, uuid.New(), t0)
		require.ErrorIs(t, err, auth.ErrUserNotFound)
		_, err = s.SetTier(ctx, auth.TierChange{UserID: uuid.New(), Tier: "pro", EffectiveAt: t0})
		require.ErrorIs(t, err, auth.ErrUserNotFound)
	})
}

// fakeHash is shaped like an argon2id PHC string, which PostgreSQL checks.
func fakeHash(s string) string { return "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + s }
