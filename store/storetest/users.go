package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
)

// RunUserStore runs the auth.UserStore contract against the stores newStore
// returns, one fresh store per subtest.
func RunUserStore(t *testing.T, newStore func(t *testing.T) auth.UserStore) {
	t.Helper()
	ctx := context.Background()

	t.Run("create then read by id and email", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		u := NewUser(t, "reader@example.com")
		require.NoError(t, createUser(ctx, s, u))

		byID, err := s.UserByID(ctx, u.ID)
		require.NoError(t, err)
		RequireSameUser(t, u, byID)

		byEmail, err := s.UserByEmail(ctx, u.Email)
		require.NoError(t, err)
		RequireSameUser(t, u, byEmail)
	})

	t.Run("unicode email and every role round trip", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for i, role := range auth.Roles {
			u, err := auth.NewUser(fmt.Sprintf("zoë.%d@exämple.com", i), role, "gold_2", time.Now())
			require.NoError(t, err)
			require.NoError(t, createUser(ctx, s, u))
			got, err := s.UserByEmail(ctx, u.Email)
			require.NoError(t, err)
			RequireSameUser(t, u, got)
		}
	})

	t.Run("unknown id and email are not found", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		require.NoError(t, createUser(ctx, s, NewUser(t, "someone@example.com")))

		_, err := s.UserByID(ctx, uuid.New())
		require.ErrorIs(t, err, auth.ErrUserNotFound)
		_, err = s.UserByEmail(ctx, "nobody@example.com")
		require.ErrorIs(t, err, auth.ErrUserNotFound)
		// Lookups are exact: callers normalise first.
		_, err = s.UserByEmail(ctx, "SOMEONE@example.com")
		require.ErrorIs(t, err, auth.ErrUserNotFound)
	})

	t.Run("duplicate email is a conflict and changes nothing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		first := NewUser(t, "taken@example.com")
		require.NoError(t, createUser(ctx, s, first))

		second := NewUser(t, "taken@example.com")
		second.Role = auth.RoleAdmin
		require.ErrorIs(t, createUser(ctx, s, second), auth.ErrEmailTaken)

		got, err := s.UserByEmail(ctx, "taken@example.com")
		require.NoError(t, err)
		RequireSameUser(t, first, got)
		_, err = s.UserByID(ctx, second.ID)
		require.ErrorIs(t, err, auth.ErrUserNotFound)
	})

	t.Run("duplicate id is a conflict", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		first := NewUser(t, "first@example.com")
		require.NoError(t, createUser(ctx, s, first))
		second := NewUser(t, "second@example.com")
		second.ID = first.ID
		require.ErrorIs(t, createUser(ctx, s, second), auth.ErrUserExists)
		_, err := s.UserByEmail(ctx, "second@example.com")
		require.ErrorIs(t, err, auth.ErrUserNotFound)
	})

	t.Run("concurrent creates of one email: exactly one wins", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		users := make([]auth.User, 8)
		for i := range users {
			users[i] = NewUser(t, "race@example.com")
		}
		requireOneWins(t, len(users), auth.ErrEmailTaken, func(i int) error { return createUser(ctx, s, users[i]) })
	})

	t.Run("a cancelled context fails the call", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, createUser(cctx, s, NewUser(t, "late@example.com")), context.Canceled)
		_, err := s.UserByEmail(ctx, "late@example.com")
		require.ErrorIs(t, err, auth.ErrUserNotFound)
	})
}

// NewUser returns a valid user with the given email, for tests.
func NewUser(tb testing.TB, email string) auth.User {
	tb.Helper()
	u, err := auth.NewUser(email, auth.RoleUser, auth.DefaultTier, time.Now())
	require.NoError(tb, err)
	return u
}

// RequireSameUser fails tb unless want and got hold the same user
// (timestamps compared as instants).
func RequireSameUser(tb testing.TB, want, got auth.User) {
	tb.Helper()
	require.True(tb, want.CreatedAt.Equal(got.CreatedAt), "created_at: want %v, got %v", want.CreatedAt, got.CreatedAt)
	want.CreatedAt, got.CreatedAt = time.Time{}, time.Time{}
	require.Equal(tb, want, got)
}

// createUser stores u as a password-less account.
func createUser(ctx context.Context, s auth.UserStore, u auth.User) error {
	return s.CreateAccount(ctx, auth.NewAccount{User: u})
}
