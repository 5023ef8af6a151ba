package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/adspace"
)

const spaceColumns = `owner_id, enabled, refresh_seconds, max_ads_per_view, keywords, blocked_categories,
	formats, allowed_categories, blocked_keywords, blocked_advertisers, house_fallback, version, created_at, updated_at`

// CreateSpace implements adspace.Store.
func (db *DB) CreateSpace(ctx context.Context, s adspace.Space) error {
	_, err := db.pool.Exec(ctx,
		`INSERT INTO ad_spaces (`+spaceColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		s.OwnerID, s.Settings.Enabled, int64(s.Settings.RefreshInterval/time.Second), s.Settings.MaxAdsPerView,
		nonNil(s.Settings.Keywords), nonNil(s.Settings.BlockedCategories),
		nonNil(s.Settings.Formats), nonNil(s.Settings.AllowedCategories), nonNil(s.Settings.BlockedKeywords),
		nonNil(s.Settings.BlockedAdvertisers), s.Settings.HouseFallback,
		s.Version, s.CreatedAt, s.UpdatedAt)
	return translate(err, nil)
}

// SpaceByOwner implements adspace.Store.
func (db *DB) SpaceByOwner(ctx context.Context, owner uuid.UUID) (adspace.Space, error) {
	row := db.pool.QueryRow(ctx, `SELECT `+spaceColumns+` FROM ad_spaces WHERE owner_id = $1`, owner)
	return scanSpace(row)
}

// UpdateSettings implements adspace.Store. The version check and the write
// are one statement, so two concurrent updates expecting the same version
// cannot both succeed.
func (db *DB) UpdateSettings(ctx context.Context, owner uuid.UUID, set adspace.Settings, expectVersion int64, now time.Time) (adspace.Space, error) {
	row := db.pool.QueryRow(ctx, `
		UPDATE ad_spaces SET
			enabled = $2, refresh_seconds = $3, max_ads_per_view = $4,
			keywords = $5, blocked_categories = $6,
			formats = $9, allowed_categories = $10, blocked_keywords = $11,
			blocked_advertisers = $12, house_fallback = $13,
			version = version + 1, updated_at = $7
		WHERE owner_id = $1 AND ($8::bigint = 0 OR version = $8::bigint)
		RETURNING `+spaceColumns,
		owner, set.Enabled, int64(set.RefreshInterval/time.Second), set.MaxAdsPerView,
		nonNil(set.Keywords), nonNil(set.BlockedCategories), now.UTC().Truncate(time.Microsecond), expectVersion,
		nonNil(set.Formats), nonNil(set.AllowedCategories), nonNil(set.BlockedKeywords),
		nonNil(set.BlockedAdvertisers), set.HouseFallback)
	s, err := scanSpace(row)
	if errors.Is(err, adspace.ErrSpaceNotFound) && expectVersion != 0 {
		// No row matched: either there is no space or its version moved on.
		var exists bool
		if qerr := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ad_spaces WHERE owner_id = $1)`, owner).Scan(&exists); qerr != nil {
			return adspace.Space{}, translate(qerr, nil)
		}
		if exists {
			return adspace.Space{}, adspace.ErrVersionConflict
		}
	}
	return s, err
}

func scanSpace(row pgx.Row) (adspace.Space, error) {
	var (
		s       adspace.Space
		refresh int64
		maxAds  int16
	)
	err := row.Scan(&s.OwnerID, &s.Settings.Enabled, &refresh, &maxAds,
		&s.Settings.Keywords, &s.Settings.BlockedCategories,
		&s.Settings.Formats, &s.Settings.AllowedCategories, &s.Settings.BlockedKeywords,
		&s.Settings.BlockedAdvertisers, &s.Settings.HouseFallback,
		&s.Version, &s.CreatedAt, &s.UpdatedAt)
	if err != nil {
		return adspace.Space{}, translate(err, adspace.ErrSpaceNotFound)
	}
	s.Settings.RefreshInterval = time.Duration(refresh) * time.Second
	s.Settings.MaxAdsPerView = int(maxAds)
	s.Settings.Keywords = nonNil(s.Settings.Keywords)
	s.Settings.BlockedCategories = nonNil(s.Settings.BlockedCategories)
	s.Settings.Formats = nonNil(s.Settings.Formats)
	s.Settings.AllowedCategories = nonNil(s.Settings.AllowedCategories)
	s.Settings.BlockedKeywords = nonNil(s.Settings.BlockedKeywords)
	s.Settings.BlockedAdvertisers = nonNil(s.Settings.BlockedAdvertisers)
	s.CreatedAt = s.CreatedAt.UTC()
	s.UpdatedAt = s.UpdatedAt.UTC()
	return s, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
