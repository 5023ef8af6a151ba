package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
)

// RunSessionStore runs the auth.SessionStore contract.
func RunSessionStore(t *testing.T, newStore func(t *testing.T) AuthStores) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

	setup := func(t *testing.T) (AuthStores, auth.User, auth.Session, []byte) {
		s := newStore(t)
		u := NewUser(t, "sessions@example.com")
		require.NoError(t, createUser(ctx, s, u))
		sess := newSession(u.ID, t0)
		h := randomHash()
		require.NoError(t, s.CreateSession(ctx, sess, h))
		return s, u, sess, h
	}
	rotate := func(s AuthStores, old, next []byte, now time.Time) (auth.RotationResult, error) {
		return s.RotateRefreshToken(ctx, auth.Rotation{OldHash: old, NewHash: next, Now: now, IdleTimeout: 24 * time.Hour})
	}

	t.Run("create and read", func(t *testing.T) {
		t.Parallel()
		s, u, sess, _ := setup(t)
		got, err := s.Session(ctx, sess.ID)
		require.NoError(t, err)
		require.Equal(t, sess, got)
		live, err := s.UserSessions(ctx, u.ID, t0)
		require.NoError(t, err)
		require.Equal(t, []auth.Session{sess}, live)

		_, err = s.Session(ctx, uuid.New())
		require.ErrorIs(t, err, auth.ErrSessionNotFound)
		require.ErrorIs(t, s.CreateSession(ctx, newSession(uuid.New(), t0), randomHash()), auth.ErrUserNotFound)
		require.ErrorIs(t, s.CreateSession(ctx, sess, randomHash()), auth.ErrSessionExists)
	})

	t.Run("rotation replaces the token and moves the idle expiry", func(t *testing.T) {
		t.Parallel()
		s, _, sess, h1 := setup(t)
		h2 := randomHash()
		now := t0.Add(time.Hour)
		res, err := rotate(s, h1, h2, now)
		require.NoError(t, err)
		require.True(t, res.Rotated)
		require.Equal(t, int64(2), res.Session.Generation)
		require.True(t, now.Equal(res.Session.LastUsedAt))
		require.True(t, now.Add(24*time.Hour).Equal(res.Session.IdleExpiresAt))
		require.True(t, sess.AbsoluteExpiresAt.Equal(res.Session.AbsoluteExpiresAt))

		// The old token is now used, and its successor unused.
		again, err := rotate(s, h1, randomHash(), now.Add(time.Second))
		require.NoError(t, err)
		require.False(t, again.Rotated)
		require.True(t, now.Equal(again.UsedAt))
		require.True(t, again.SuccessorUnused)
		require.Equal(t, sess.ID, again.Session.ID)

		// Once the successor is used, the old token is further back.
		_, err = rotate(s, h2, randomHash(), now.Add(2*time.Second))
		require.NoError(t, err)
		again, err = rotate(s, h1, randomHash(), now.Add(3*time.Second))
		require.NoError(t, err)
		require.False(t, again.Rotated)
		require.False(t, again.SuccessorUnused)
	})

	t.Run("idle expiry never passes the absolute one", func(t *testing.T) {
		t.Parallel()
		s, _, sess, h1 := setup(t)
		res, err := s.RotateRefreshToken(ctx, auth.Rotation{OldHash: h1, NewHash: randomHash(), Now: t0.Add(time.Hour), IdleTimeout: 365 * 24 * time.Hour})
		require.NoError(t, err)
		require.True(t, sess.AbsoluteExpiresAt.Equal(res.Session.IdleExpiresAt))
	})

	t.Run("unknown token", func(t *testing.T) {
		t.Parallel()
		s, _, _, _ := setup(t)
		_, err := rotate(s, randomHash(), randomHash(), t0)
		require.ErrorIs(t, err, auth.ErrRefreshTokenUnknown)
	})

	t.Run("expired and revoked sessions do not rotate", func(t *testing.T) {
		t.Parallel()
		s, _, sess, h1 := setup(t)
		res, err := rotate(s, h1, randomHash(), sess.IdleExpiresAt)
		require.ErrorIs(t, err, auth.ErrSessionExpired)
		require.Equal(t, sess.ID, res.Session.ID)

		revoked, err := s.RevokeSession(ctx, sess.ID, auth.RevokeLogout, t0.Add(time.Minute))
		require.NoError(t, err)
		require.Equal(t, auth.RevokeLogout, revoked.RevokeReason)
		require.True(t, t0.Add(time.Minute).Equal(revoked.RevokedAt))
		_, err = rotate(s, h1, randomHash(), t0.Add(2*time.Minute))
		require.ErrorIs(t, err, auth.ErrSessionRevoked)

		// Revoking again keeps the first revocation.
		again, err := s.RevokeSession(ctx, sess.ID, auth.RevokeAdmin, t0.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, auth.RevokeLogout, again.RevokeReason)
		require.True(t, revoked.RevokedAt.Equal(again.RevokedAt))
		_, err = s.RevokeSession(ctx, uuid.New(), auth.RevokeLogout, t0)
		require.ErrorIs(t, err, auth.ErrSessionNotFound)
	})

	t.Run("concurrent rotations of one token: exactly one rotates", func(t *testing.T) {
		t.Parallel()
		s, _, _, h1 := setup(t)
		const n = 8
		results := make(chan auth.RotationResult, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range n {
			next := randomHash()
			wg.Go(func() {
				<-start
				res, err := rotate(s, h1, next, t0.Add(time.Minute))
				if err != nil {
					t.Errorf("rotate: %v", err)
				}
				results <- res
			})
		}
		close(start)
		wg.Wait()
		close(results)
		rotated := 0
		for r := range results {
			if r.Rotated {
				rotated++
			} else {
				require.True(t, r.SuccessorUnused)
			}
		}
		require.Equal(t, 1, rotated)
	})

	t.Run("user sessions lists live ones, most recent first; revoke all but one", func(t *testing.T) {
		t.Parallel()
		s, u, first, _ := setup(t)
		second := newSession(u.ID, t0.Add(time.Minute))
		third := newSession(u.ID, t0.Add(2*time.Minute))
		require.NoError(t, s.CreateSession(ctx, second, randomHash()))
		require.NoError(t, s.CreateSession(ctx, third, randomHash()))
		other := NewUser(t, "other@example.com")
		require.NoError(t, createUser(ctx, s, other))
		require.NoError(t, s.CreateSession(ctx, newSession(other.ID, t0), randomHash()))

		live, err := s.UserSessions(ctx, u.ID, t0.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{third.ID, second.ID, first.ID}, ids(live))

		ended, err := s.RevokeUserSessions(ctx, u.ID, second.ID, auth.RevokePasswordChanged, t0.Add(time.Hour))
		require.NoError(t, err)
		require.ElementsMatch(t, []uuid.UUID{first.ID, third.ID}, ids(ended))
		for _, e := range ended {
			require.Equal(t, auth.RevokePasswordChanged, e.RevokeReason)
		}
		live, err = s.UserSessions(ctx, u.ID, t0.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{second.ID}, ids(live))
		otherLive, err := s.UserSessions(ctx, other.ID, t0.Add(time.Hour))
		require.NoError(t, err)
		require.Len(t, otherLive, 1, "another user's sessions are untouched")

		ended, err = s.RevokeUserSessions(ctx, u.ID, uuid.Nil, auth.RevokeAdmin, t0.Add(2*time.Hour))
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{second.ID}, ids(ended), "only live sessions are ended")
		live, err = s.UserSessions(ctx, u.ID, t0.Add(2*time.Hour))
		require.NoError(t, err)
		require.Empty(t, live)
		require.NotNil(t, live)

		// Past their idle expiry, sessions are not listed.
		fresh := newSession(u.ID, t0)
		require.NoError(t, s.CreateSession(ctx, fresh, randomHash()))
		live, err = s.UserSessions(ctx, u.ID, fresh.IdleExpiresAt)
		require.NoError(t, err)
		require.Empty(t, live)
	})
}

func newSession(user uuid.UUID, now time.Time) auth.Session {
	return auth.Session{
		ID: uuid.Must(uuid.NewV7()), UserID: user, Method: "password", UserAgent: "adshare-test/1.0", IP: "203.0.113.7",
		CreatedAt: now, LastUsedAt: now, IdleExpiresAt: now.Add(7 * 24 * time.Hour),
		AbsoluteExpiresAt: now.Add(30 * 24 * time.Hour), Generation: 1,
	}
}

func randomHash() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	sum := sha256.Sum256(b)
	return sum[:]
}

func ids(ss []auth.Session) []uuid.UUID {
	out := make([]uuid.UUID, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}
