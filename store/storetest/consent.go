package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
)

// ConsentStores are what the consent contract needs: users to own the
// records, and the records.
type ConsentStores interface {
	auth.UserStore
	auth.ConsentStore
}

// RunConsentStore runs the auth.ConsentStore contract against the stores
// newStore returns, one fresh store per subtest.
func RunConsentStore(t *testing.T, newStore func(t *testing.T) ConsentStores) {
	t.Helper()
	ctx := context.Background()

	t.Run("a history appends, oldest first, and the latest is current", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		u := NewUser(t, "consent@example.com")
		require.NoError(t, createUser(ctx, s, u))
		_, err := s.CurrentConsent(ctx, u.ID)
		require.ErrorIs(t, err, auth.ErrConsentNotFound)
		h, err := s.ConsentHistory(ctx, u.ID)
		require.NoError(t, err)
		require.Empty(t, h)

		at := time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC)
		first, err := s.AppendConsent(ctx, auth.ConsentRecord{UserID: u.ID, PolicyVersion: "v1",
			Purposes: map[auth.Purpose]bool{auth.PurposeAnalytics: true, auth.PurposePersonalisedAds: true},
			Source:   auth.ConsentSourceAPI, RecordedAt: at})
		require.NoError(t, err)
		require.NotZero(t, first.ID)
		second, err := s.AppendConsent(ctx, auth.ConsentRecord{UserID: u.ID, PolicyVersion: "v2",
			Purposes:  map[auth.Purpose]bool{auth.PurposeAnalytics: true, auth.PurposePersonalisedAds: false},
			DoNotSell: true, GPC: true, Source: auth.ConsentSourceGPC, RecordedAt: at.Add(time.Minute)})
		require.NoError(t, err)
		require.Greater(t, second.ID, first.ID)

		cur, err := s.CurrentConsent(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, second.ID, cur.ID)
		require.Equal(t, "v2", cur.PolicyVersion)
		require.True(t, cur.DoNotSell)
		require.True(t, cur.GPC)
		require.Equal(t, auth.ConsentSourceGPC, cur.Source)
		require.False(t, cur.Granted(auth.PurposePersonalisedAds))
		require.True(t, cur.Granted(auth.PurposeAnalytics))
		require.True(t, cur.RecordedAt.Equal(at.Add(time.Minute)))

		h, err = s.ConsentHistory(ctx, u.ID)
		require.NoError(t, err)
		require.Len(t, h, 2)
		require.Equal(t, first.ID, h[0].ID)
		require.Equal(t, "v1", h[0].PolicyVersion)
		require.True(t, h[0].Purposes[auth.PurposePersonalisedAds])
		require.True(t, h[0].RecordedAt.Equal(at))
	})

	t.Run("histories are per user", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		a, b := NewUser(t, "a.consent@example.com"), NewUser(t, "b.consent@example.com")
		require.NoError(t, createUser(ctx, s, a))
		require.NoError(t, createUser(ctx, s, b))
		_, err := s.AppendConsent(ctx, auth.ConsentRecord{UserID: a.ID, PolicyVersion: "v1", Purposes: map[auth.Purpose]bool{}, Source: "api", RecordedAt: time.Now()})
		require.NoError(t, err)
		h, err := s.ConsentHistory(ctx, b.ID)
		require.NoError(t, err)
		require.Empty(t, h)
		_, err = s.CurrentConsent(ctx, b.ID)
		require.ErrorIs(t, err, auth.ErrConsentNotFound)
	})

	t.Run("an unknown user is not found", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		_, err := s.AppendConsent(ctx, auth.ConsentRecord{UserID: uuid.New(), PolicyVersion: "v1", Purposes: map[auth.Purpose]bool{}, Source: "api", RecordedAt: time.Now()})
		require.ErrorIs(t, err, auth.ErrUserNotFound)
	})
}
