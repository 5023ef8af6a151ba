package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
)

// SpaceStores is what the ad space contract needs: a space store and a user
// store over the same data, because every space has an owner.
type SpaceStores interface {
	auth.UserStore
	adspace.Store
}

// RunSpaceStore runs the adspace.Store contract against the stores newStore
// returns, one fresh store per subtest.
func RunSpaceStore(t *testing.T, newStore func(t *testing.T) SpaceStores) {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 10, 30, 0, 123456000, time.UTC)

	withOwner := func(t *testing.T) (SpaceStores, auth.User) {
		s := newStore(t)
		owner := NewUser(t, "owner@example.com")
		require.NoError(t, createUser(ctx, s, owner))
		return s, owner
	}

	t.Run("create then read", func(t *testing.T) {
		t.Parallel()
		s, owner := withOwner(t)
		set := adspace.DefaultSettings()
		set.Keywords = []string{"cycling", "coffee"}
		set.BlockedCategories = []string{"gambling"}
		set.MaxAdsPerView = 3
		set.RefreshInterval = 45 * time.Second
		set.Formats = []string{"native", "banner"}
		set.AllowedCategories = []string{"food & drink", "sports"}
		set.BlockedKeywords = []string{"casino"}
		set.BlockedAdvertisers = []string{"kevel:123", uuid.NewString()}
		set.HouseFallback = adspace.HouseOwn
		sp := NewSpace(t, owner.ID, set, now)
		require.NoError(t, s.CreateSpace(ctx, sp))

		got, err := s.SpaceByOwner(ctx, owner.ID)
		require.NoError(t, err)
		RequireSameSpace(t, sp, got)
		require.Equal(t, int64(1), got.Version)
		require.Equal(t, []string{"coffee", "cycling"}, got.Settings.Keywords)
		require.Equal(t, []string{"banner", "native"}, got.Settings.Formats)
		require.Equal(t, adspace.HouseOwn, got.Settings.HouseFallback)
	})

	t.Run("default settings round trip", func(t *testing.T) {
		t.Parallel()
		s, owner := withOwner(t)
		sp := NewSpace(t, owner.ID, adspace.DefaultSettings(), now)
		require.NoError(t, s.CreateSpace(ctx, sp))
		got, err := s.SpaceByOwner(ctx, owner.ID)
		require.NoError(t, err)
		RequireSameSpace(t, sp, got)
		require.Equal(t, []string{adspace.DefaultFormat}, got.Settings.Formats)
		require.Equal(t, adspace.HouseNone, got.Settings.HouseFallback)
	})

	t.Run("lists at their limits round trip", func(t *testing.T) {
		t.Parallel()
		s, owner := withOwner(t)
		set := adspace.DefaultSettings()
		terms := func(prefix string, n int) []string {
			out := make([]string, n)
			for i := range out {
				out[i] = fmt.Sprintf("%s%03d", prefix, i)
			}
			return out
		}
		set.Keywords = terms("k", adspace.MaxTerms)
		set.BlockedCategories = terms("b", adspace.MaxTerms)
		set.AllowedCategories = terms("a", adspace.MaxTerms)
		set.BlockedKeywords = terms("x", adspace.MaxTerms)
		set.Formats = terms("f", adspace.MaxTerms)
		set.BlockedAdvertisers = terms("adv-", adspace.MaxBlockedAdvertisers)
		sp := NewSpace(t, owner.ID, set, now)
		require.NoError(t, s.CreateSpace(ctx, sp))
		got, err := s.SpaceByOwner(ctx, owner.ID)
		require.NoError(t, err)
		RequireSameSpace(t, sp, got)
	})

	t.Run("empty lists come back empty, not nil", func(t *testing.T) {
		t.Parallel()
		s, owner := withOwner(t)
		require.NoError(t, s.CreateSpace(ctx, NewSpace(t, owner.ID, adspace.DefaultSettings(), now)))
		got, err := s.SpaceByOwner(ctx, owner.ID)
		require.NoError(t, err)
		for name, list := range map[string][]string{
			"keywords":            got.Settings.Keywords,
			"blocked_categories":  got.Settings.BlockedCategories,
			"allowed_categories":  got.Settings.AllowedCategories,
			"blocked_keywords":    got.Settings.BlockedKeywords,
			"blocked_advertisers": got.Settings.BlockedAdvertisers,
		} {
			require.NotNil(t, list, name)
			require.Empty(t, list, name)
		}
	})

	t.Run("unknown owner", func(t *testing.T) {
		t.Parallel()
		s, _ := withOwner(t)
		stranger := uuid.New()
		require.ErrorIs(t, s.CreateSpace(ctx, NewSpace(t, stranger, adspace.DefaultSettings(), now)), adspace.ErrOwnerNotFound)
		_, err := s.SpaceByOwner(ctx, stranger)
		require.ErrorIs(t, err, adspace.ErrSpaceNotFound)
		_, err = s.UpdateSettings(ctx, stranger, adspace.DefaultSettings(), 0, now)
		require.ErrorIs(t, err, adspace.ErrSpaceNotFound)
		_, err = s.UpdateSettings(ctx, stranger, adspace.DefaultSettings(), 1, now)
		require.ErrorIs(t, err, adspace.ErrSpaceNotFound)
	})

	t.Run("second space for one owner is a conflict and changes nothing", func(t *testing.T) {
		t.Parallel()
		s, owner := withOwner(t)
		first := NewSpace(t, owner.ID, adspace.DefaultSettings(), now)
		require.NoError(t, s.CreateSpace(ctx, first))
		other := adspace.DefaultSettings()
		other.Enabled = false
		require.ErrorIs(t, s.CreateSpace(ctx, NewSpace(t, owner.ID, other, now)), adspace.ErrSpaceExists)
		got, err := s.SpaceByOwner(ctx, owner.ID)
		require.NoError(t, err)
		RequireSameSpace(t, first, got)
	})

	t.Run("update bumps the version and the time", func(t *testing.T) {
		t.Parallel()
		s, owner := withOwner(t)
		require.NoError(t, s.CreateSpace(ctx, NewSpace(t, owner.ID, adspace.DefaultSettings(), now)))

		set := adspace.DefaultSettings()
		set.Enabled = false
		set.Keywords = []string{"tea"}
		set.Formats = []string{"native"}
		set.AllowedCategories = []string{"travel"}
		set.BlockedKeywords = []string{"crypto", "loans"}
		set.BlockedAdvertisers = []string{"adv-1"}
		set.HouseFallback = adspace.HouseOwn
		later := now.Add(time.Hour)
		updated, err := s.UpdateSettings(ctx, owner.ID, set, 1, later)
		require.NoError(t, err)
		require.Equal(t, int64(2), updated.Version)
		require.Equal(t, set, updated.Settings)
		require.True(t, later.Equal(updated.UpdatedAt))
		require.True(t, now.Equal(updated.CreatedAt))

		got, err := s.SpaceByOwner(ctx, owner.ID)
		require.NoError(t, err)
		RequireSameSpace(t, updated, got)

		// Version zero means unconditional; lists can be emptied again.
		set = adspace.DefaultSettings()
		updated, err = s.UpdateSettings(ctx, owner.ID, set, 0, later)
		require.NoError(t, err)
		require.Equal(t, int64(3), updated.Version)
		require.True(t, updated.Settings.Enabled)
		require.Equal(t, set, updated.Settings)
		got, err = s.SpaceByOwner(ctx, owner.ID)
		require.NoError(t, err)
		require.Equal(t, set, got.Settings)
	})

	t.Run("stale version is a conflict and changes nothing", func(t *testing.T) {
		t.Parallel()
		s, owner := withOwner(t)
		require.NoError(t, s.CreateSpace(ctx, NewSpace(t, owner.ID, adspace.DefaultSettings(), now)))
		set := adspace.DefaultSettings()
		set.MaxAdsPerView = 2
		_, err := s.UpdateSettings(ctx, owner.ID, set, 1, now)
		require.NoError(t, err)

		set.MaxAdsPerView = 5
		_, err = s.UpdateSettings(ctx, owner.ID, set, 1, now)
		require.ErrorIs(t, err, adspace.ErrVersionConflict)
		got, err := s.SpaceByOwner(ctx, owner.ID)
		require.NoError(t, err)
		require.Equal(t, 2, got.Settings.MaxAdsPerView)
		require.Equal(t, int64(2), got.Version)
	})

	t.Run("concurrent updates of one version: exactly one wins", func(t *testing.T) {
		t.Parallel()
		s, owner := withOwner(t)
		require.NoError(t, s.CreateSpace(ctx, NewSpace(t, owner.ID, adspace.DefaultSettings(), now)))
		requireOneWins(t, 8, adspace.ErrVersionConflict, func(i int) error {
			set := adspace.DefaultSettings()
			set.MaxAdsPerView = 1 + i%adspace.MaxAdsPerViewLimit
			_, err := s.UpdateSettings(ctx, owner.ID, set, 1, now)
			return err
		})
		got, err := s.SpaceByOwner(ctx, owner.ID)
		require.NoError(t, err)
		require.Equal(t, int64(2), got.Version)
	})

	t.Run("returned spaces do not alias the store", func(t *testing.T) {
		t.Parallel()
		s, owner := withOwner(t)
		set := adspace.DefaultSettings()
		set.Keywords = []string{"a", "b"}
		set.BlockedCategories = []string{"c"}
		set.AllowedCategories = []string{"d"}
		set.BlockedKeywords = []string{"e"}
		set.BlockedAdvertisers = []string{"f"}
		set.Formats = []string{"g"}
		sp := NewSpace(t, owner.ID, set, now)
		require.NoError(t, s.CreateSpace(ctx, sp))
		mutate := func(st *adspace.Settings) {
			for _, list := range [][]string{st.Keywords, st.BlockedCategories, st.AllowedCategories,
				st.BlockedKeywords, st.BlockedAdvertisers, st.Formats} {
				list[0] = "mutated"
			}
		}
		mutate(&sp.Settings) // the caller's slices, after CreateSpace
		got, err := s.SpaceByOwner(ctx, owner.ID)
		require.NoError(t, err)
		mutate(&got.Settings)
		again, err := s.SpaceByOwner(ctx, owner.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b"}, again.Settings.Keywords)
		for _, list := range [][]string{again.Settings.BlockedCategories, again.Settings.AllowedCategories,
			again.Settings.BlockedKeywords, again.Settings.BlockedAdvertisers, again.Settings.Formats} {
			require.NotEqual(t, "mutated", list[0])
		}

		updated, err := s.UpdateSettings(ctx, owner.ID, again.Settings, 0, now)
		require.NoError(t, err)
		mutate(&updated.Settings)
		again, err = s.SpaceByOwner(ctx, owner.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"g"}, again.Settings.Formats)
	})
}

// NewSpace returns a valid space for owner, for tests.
func NewSpace(tb testing.TB, owner uuid.UUID, s adspace.Settings, now time.Time) adspace.Space {
	tb.Helper()
	sp, err := adspace.NewSpace(owner, s, now)
	require.NoError(tb, err)
	return sp
}

// RequireSameSpace fails tb unless want and got hold the same space
// (timestamps compared as instants).
func RequireSameSpace(tb testing.TB, want, got adspace.Space) {
	tb.Helper()
	require.True(tb, want.CreatedAt.Equal(got.CreatedAt), "created_at: want %v, got %v", want.CreatedAt, got.CreatedAt)
	require.True(tb, want.UpdatedAt.Equal(got.UpdatedAt), "updated_at: want %v, got %v", want.UpdatedAt, got.UpdatedAt)
	want.CreatedAt, got.CreatedAt, want.UpdatedAt, got.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	require.Equal(tb, want, got)
}
