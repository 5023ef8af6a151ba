package adspace_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/internal/errs"
)

func TestSettingsNormalize(t *testing.T) {
	t.Parallel()
	s := adspace.DefaultSettings()
	s.Keywords = []string{"  Road   Cycling ", "coffee", "COFFEE", "tea"}
	s.BlockedCategories = []string{"Gambling"}
	got, err := s.Normalize()
	require.NoError(t, err)
	require.Equal(t, []string{"coffee", "road cycling", "tea"}, got.Keywords)
	require.Equal(t, []string{"gambling"}, got.BlockedCategories)
}

func TestSettingsRejectEachBadField(t *testing.T) {
	t.Parallel()
	tooMany := make([]string, adspace.MaxTerms+1)
	for i := range tooMany {
		tooMany[i] = strings.Repeat("k", i%5+1) + string(rune('a'+i%26))
	}
	tests := []struct {
		description string
		mutate      func(*adspace.Settings)
		field       string
	}{
		{"refresh below the floor", func(s *adspace.Settings) { s.RefreshInterval = 29 * time.Second }, "refresh_interval"},
		{"refresh zero", func(s *adspace.Settings) { s.RefreshInterval = 0 }, "refresh_interval"},
		{"refresh negative", func(s *adspace.Settings) { s.RefreshInterval = -time.Minute }, "refresh_interval"},
		{"refresh above an hour", func(s *adspace.Settings) { s.RefreshInterval = 61 * time.Minute }, "refresh_interval"},
		{"refresh not whole seconds", func(s *adspace.Settings) { s.RefreshInterval = 30*time.Second + time.Millisecond }, "refresh_interval"},
		{"zero ads", func(s *adspace.Settings) { s.MaxAdsPerView = 0 }, "max_ads_per_view"},
		{"too many ads", func(s *adspace.Settings) { s.MaxAdsPerView = adspace.MaxAdsPerViewLimit + 1 }, "max_ads_per_view"},
		{"empty keyword", func(s *adspace.Settings) { s.Keywords = []string{"ok", "   "} }, "keywords"},
		{"keyword too long", func(s *adspace.Settings) { s.Keywords = []string{strings.Repeat("x", adspace.MaxTermLen+1)} }, "keywords"},
		{"keyword with control char", func(s *adspace.Settings) { s.Keywords = []string{"a\x00b"} }, "keywords"},
		{"keyword invalid UTF-8", func(s *adspace.Settings) { s.Keywords = []string{"caf\xe9"} }, "keywords"},
		{"too many keywords", func(s *adspace.Settings) { s.Keywords = tooMany }, "keywords"},
		{"empty blocked category", func(s *adspace.Settings) { s.BlockedCategories = []string{""} }, "blocked_categories"},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			s := adspace.DefaultSettings()
			tt.mutate(&s)
			_, err := s.Normalize()
			require.ErrorIs(t, err, adspace.ErrInvalidSettings)
			e := errs.As(err)
			require.Contains(t, e.Fields, tt.field)
			require.Len(t, e.Fields, 1, "only the bad field is reported: %v", e.Fields)

			_, err = adspace.NewSpace(uuid.New(), s, time.Now())
			require.ErrorIs(t, err, adspace.ErrInvalidSettings)
		})
	}
}

func TestNewSpace(t *testing.T) {
	t.Parallel()
	owner := uuid.New()
	now := time.Date(2026, 11, 27, 12, 0, 0, 999, time.UTC)
	sp, err := adspace.NewSpace(owner, adspace.DefaultSettings(), now)
	require.NoError(t, err)
	require.Equal(t, owner, sp.OwnerID)
	require.Equal(t, int64(1), sp.Version)
	require.True(t, sp.CreatedAt.Equal(sp.UpdatedAt))
	require.Zero(t, sp.CreatedAt.Nanosecond())
	require.True(t, sp.Settings.Enabled)
	require.Equal(t, adspace.DefaultRefreshInterval, sp.Settings.RefreshInterval)
}
