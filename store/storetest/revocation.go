package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
)

// RunRevocationList runs the auth.RevocationList contract against the lists
// newList returns, one fresh list per subtest. It runs on the real clock.
//
// Beyond the interface's words it checks that a second revocation never
// weakens a first (the later `until` and the later `before` win), which is
// the only safe reading: a shorter revocation would let live tokens back in.
func RunRevocationList(t *testing.T, newList func(t *testing.T) auth.RevocationList) {
	t.Helper()
	ctx := context.Background()

	t.Run("tokens of unrevoked sessions and users pass", func(t *testing.T) {
		t.Parallel()
		l := newList(t)
		require.NoError(t, l.CheckToken(ctx, uuid.New(), uuid.New(), time.Now()))
	})

	t.Run("a revoked session's tokens are refused, other sessions' pass", func(t *testing.T) {
		t.Parallel()
		l := newList(t)
		sid, other, user := uuid.New(), uuid.New(), uuid.New()
		require.NoError(t, l.RevokeSession(ctx, sid, time.Now().Add(time.Minute)))

		require.ErrorIs(t, l.CheckToken(ctx, sid, user, time.Now()), auth.ErrTokenRevoked)
		require.ErrorIs(t, l.CheckToken(ctx, sid, uuid.New(), time.Now().Add(-time.Hour)), auth.ErrTokenRevoked)
		require.NoError(t, l.CheckToken(ctx, other, user, time.Now()))
	})

	t.Run("a user's tokens issued before the mark are refused", func(t *testing.T) {
		t.Parallel()
		l := newList(t)
		user, other := uuid.New(), uuid.New()
		before := time.Now().Truncate(time.Second)
		require.NoError(t, l.RevokeUserTokensBefore(ctx, user, before, time.Now().Add(time.Minute)))

		require.ErrorIs(t, l.CheckToken(ctx, uuid.New(), user, before.Add(-time.Second)), auth.ErrTokenRevoked)
		require.ErrorIs(t, l.CheckToken(ctx, uuid.New(), user, before.Add(-time.Microsecond)), auth.ErrTokenRevoked)
		require.NoError(t, l.CheckToken(ctx, uuid.New(), user, before), "issued at the mark is not before it")
		require.NoError(t, l.CheckToken(ctx, uuid.New(), user, before.Add(time.Second)))
		require.NoError(t, l.CheckToken(ctx, uuid.New(), other, before.Add(-time.Second)))
	})

	t.Run("an earlier before does not undo a later one", func(t *testing.T) {
		t.Parallel()
		l := newList(t)
		user := uuid.New()
		t0 := time.Now().Truncate(time.Second)
		until := time.Now().Add(time.Minute)
		require.NoError(t, l.RevokeUserTokensBefore(ctx, user, t0, until))
		require.NoError(t, l.RevokeUserTokensBefore(ctx, user, t0.Add(-10*time.Second), until))
		require.ErrorIs(t, l.CheckToken(ctx, uuid.New(), user, t0.Add(-time.Second)), auth.ErrTokenRevoked)

		// A later before moves the mark forward.
		require.NoError(t, l.RevokeUserTokensBefore(ctx, user, t0.Add(10*time.Second), until))
		require.ErrorIs(t, l.CheckToken(ctx, uuid.New(), user, t0.Add(5*time.Second)), auth.ErrTokenRevoked)
		require.NoError(t, l.CheckToken(ctx, uuid.New(), user, t0.Add(10*time.Second)))
	})

	t.Run("entries expire after until", func(t *testing.T) {
		t.Parallel()
		l := newList(t)
		sid, user := uuid.New(), uuid.New()
		until := time.Now().Add(300 * time.Millisecond)
		require.NoError(t, l.RevokeSession(ctx, sid, until))
		require.NoError(t, l.RevokeUserTokensBefore(ctx, user, time.Now(), until))
		issued := time.Now().Add(-time.Minute)
		require.ErrorIs(t, l.CheckToken(ctx, sid, uuid.New(), issued), auth.ErrTokenRevoked)
		require.ErrorIs(t, l.CheckToken(ctx, uuid.New(), user, issued), auth.ErrTokenRevoked)

		require.Eventually(t, func() bool {
			return l.CheckToken(ctx, sid, uuid.New(), issued) == nil && l.CheckToken(ctx, uuid.New(), user, issued) == nil
		}, 5*time.Second, 20*time.Millisecond)
	})

	t.Run("a second revocation never shortens the first", func(t *testing.T) {
		t.Parallel()
		l := newList(t)
		sid, user := uuid.New(), uuid.New()
		long := time.Now().Add(time.Minute)
		short := time.Now().Add(200 * time.Millisecond)
		require.NoError(t, l.RevokeSession(ctx, sid, long))
		require.NoError(t, l.RevokeSession(ctx, sid, short))
		require.NoError(t, l.RevokeUserTokensBefore(ctx, user, time.Now(), long))
		require.NoError(t, l.RevokeUserTokensBefore(ctx, user, time.Now(), short))

		time.Sleep(time.Until(short) + 100*time.Millisecond)
		issued := time.Now().Add(-time.Hour)
		require.ErrorIs(t, l.CheckToken(ctx, sid, uuid.New(), issued), auth.ErrTokenRevoked)
		require.ErrorIs(t, l.CheckToken(ctx, uuid.New(), user, issued), auth.ErrTokenRevoked)
	})

	t.Run("an until already past changes nothing", func(t *testing.T) {
		t.Parallel()
		l := newList(t)
		sid, user := uuid.New(), uuid.New()
		require.NoError(t, l.RevokeSession(ctx, sid, time.Now().Add(-time.Second)))
		require.NoError(t, l.RevokeUserTokensBefore(ctx, user, time.Now(), time.Now().Add(-time.Second)))
		require.NoError(t, l.RevokeSession(ctx, sid, time.Time{}))
		issued := time.Now().Add(-time.Minute)
		require.NoError(t, l.CheckToken(ctx, sid, user, issued))
	})
}
