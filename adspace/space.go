package adspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

// Limits on settings, enforced by [Settings.Validate].
const (
	// MinRefreshInterval is the shortest refresh interval, the floor mobile ad
	// SDKs enforce so that an ad is on screen long enough to be seen.
	MinRefreshInterval = 30 * time.Second
	// MaxRefreshInterval is the longest refresh interval.
	MaxRefreshInterval = time.Hour
	// DefaultRefreshInterval is a new space's refresh interval.
	DefaultRefreshInterval = 60 * time.Second
	// MaxAdsPerViewLimit is the most ads a space may show at once.
	MaxAdsPerViewLimit = 10
	// MaxTerms is the most keywords or categories a list may hold.
	MaxTerms = 50
	// MaxTermLen is the longest keyword or category, in bytes.
	MaxTermLen = 64
)

// Space is a user's ad space.
type Space struct {
	// OwnerID is the user who owns the space and earns from it.
	OwnerID uuid.UUID
	// Settings say what the space shows and how often.
	Settings Settings
	// Version starts at 1 and grows by one with every settings change; it
	// lets writers detect a concurrent change (see Store.UpdateSettings).
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Settings are the owner's choices for their space.
type Settings struct {
	// Enabled turns the space on; a disabled space is never filled.
	Enabled bool
	// RefreshInterval is how often the app asks for a new ad, between
	// MinRefreshInterval and MaxRefreshInterval, in whole seconds.
	RefreshInterval time.Duration
	// MaxAdsPerView is how many ads one fill may return, 1 to MaxAdsPerViewLimit.
	MaxAdsPerView int
	// Keywords describe the space's audience, for targeting. Normalised:
	// lower case, trimmed, unique, sorted.
	Keywords []string
	// BlockedCategories are ad categories the owner refuses. Normalised like Keywords.
	BlockedCategories []string
	// Formats are the ad formats (shapes) the owner's app renders in the
	// space, such as "banner"; each must be one the host configured
	// (Config.Formats). At least one.
	Formats []string
	// AllowedCategories, when not empty, are the only ad categories the
	// space shows. Normalised like Keywords.
	AllowedCategories []string
	// BlockedKeywords are keywords the owner refuses: an ad targeting any of
	// them is not shown. Normalised like Keywords.
	BlockedKeywords []string
	// BlockedAdvertisers are advertiser ids the owner refuses.
	BlockedAdvertisers []string
	// HouseFallback says what fills the space when no ad does: HouseNone
	// or HouseOwn (the owner's own approved content, never billed).
	HouseFallback string
}

// House fallbacks.
const (
	HouseNone = "none"
	HouseOwn  = "own"
)

// MaxBlockedAdvertisers bounds Settings.BlockedAdvertisers.
const MaxBlockedAdvertisers = 200

// DefaultSettings returns the settings of a new space: enabled, refreshing
// every DefaultRefreshInterval, one ad per view, no keywords or blocks.
func DefaultSettings() Settings {
	return Settings{
		Enabled:            true,
		RefreshInterval:    DefaultRefreshInterval,
		MaxAdsPerView:      1,
		Keywords:           []string{},
		BlockedCategories:  []string{},
		Formats:            []string{DefaultFormat},
		AllowedCategories:  []string{},
		BlockedKeywords:    []string{},
		BlockedAdvertisers: []string{},
		HouseFallback:      HouseNone,
	}
}

// DefaultFormat is the format of a new space.
const DefaultFormat = "banner"

// NewSpace returns a space for owner with the given settings, validated and
// normalised, at version 1.
func NewSpace(owner uuid.UUID, s Settings, now time.Time) (Space, error) {
	s, err := s.Normalize()
	if err != nil {
		return Space{}, err
	}
	now = now.UTC().Truncate(time.Microsecond)
	return Space{OwnerID: owner, Settings: s, Version: 1, CreatedAt: now, UpdatedAt: now}, nil
}

// Normalize returns the settings with keyword and category lists
// normalised (see Settings.Keywords), or an error matching
// ErrInvalidSettings with a message per offending field.
func (s Settings) Normalize() (Settings, error) {
	var fields errs.Fields
	switch {
	case s.RefreshInterval < MinRefreshInterval:
		fields.Add("refresh_interval", fmt.Sprintf("must be at least %d seconds", int(MinRefreshInterval/time.Second)))
	case s.RefreshInterval > MaxRefreshInterval:
		fields.Add("refresh_interval", fmt.Sprintf("must be at most %d seconds", int(MaxRefreshInterval/time.Second)))
	case s.RefreshInterval%time.Second != 0:
		fields.Add("refresh_interval", "must be a whole number of seconds")
	}
	fields.Check(s.MaxAdsPerView >= 1 && s.MaxAdsPerView <= MaxAdsPerViewLimit,
		"max_ads_per_view", fmt.Sprintf("must be between 1 and %d", MaxAdsPerViewLimit))
	var err error
	if s.Keywords, err = normalizeTerms(s.Keywords); err != nil {
		fields.Add("keywords", err.Error())
	}
	if s.BlockedCategories, err = normalizeTerms(s.BlockedCategories); err != nil {
		fields.Add("blocked_categories", err.Error())
	}
	if s.AllowedCategories, err = normalizeTerms(s.AllowedCategories); err != nil {
		fields.Add("allowed_categories", err.Error())
	}
	if s.BlockedKeywords, err = normalizeTerms(s.BlockedKeywords); err != nil {
		fields.Add("blocked_keywords", err.Error())
	}
	if s.Formats, err = normalizeTerms(s.Formats); err != nil {
		fields.Add("formats", err.Error())
	} else if len(s.Formats) == 0 {
		fields.Add("formats", "at least one format is required")
	}
	if s.BlockedAdvertisers, err = normalizeIDs(s.BlockedAdvertisers); err != nil {
		fields.Add("blocked_advertisers", err.Error())
	}
	switch s.HouseFallback {
	case HouseNone, HouseOwn:
	case "":
		s.HouseFallback = HouseNone
	default:
		fields.Add("house_fallback", "must be none or own")
	}
	for _, c := range s.AllowedCategories {
		if slices.Contains(s.BlockedCategories, c) {
			fields.Add("allowed_categories", fmt.Sprintf("%q is also blocked", c))
			break
		}
	}
	if err := fields.Err(ErrInvalidSettings); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// NormalizeTerm returns a keyword or category in canonical form: trimmed,
// inner whitespace collapsed to one space, lower case.
func NormalizeTerm(t string) string {
	return strings.ToLower(strings.Join(strings.Fields(t), " "))
}

func normalizeTerms(in []string) ([]string, error) {
	if len(in) > MaxTerms {
		return nil, fmt.Errorf("must hold at most %d entries", MaxTerms)
	}
	out := make([]string, 0, len(in))
	for _, t := range in {
		if !utf8.ValidString(t) {
			return nil, fmt.Errorf("entries must be valid UTF-8")
		}
		t = NormalizeTerm(t)
		switch {
		case t == "":
			return nil, fmt.Errorf("entries must not be empty")
		case len(t) > MaxTermLen:
			return nil, fmt.Errorf("entries must be at most %d bytes", MaxTermLen)
		case strings.IndexFunc(t, unicode.IsControl) >= 0:
			return nil, fmt.Errorf("entries must not contain control characters")
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// normalizeIDs trims, dedupes and sorts advertiser ids: up to 64 bytes of
// letters, digits, '-', '_' or ':' each.
func normalizeIDs(in []string) ([]string, error) {
	if len(in) > MaxBlockedAdvertisers {
		return nil, fmt.Errorf("must hold at most %d entries", MaxBlockedAdvertisers)
	}
	out := make([]string, 0, len(in))
	for _, id := range in {
		id = strings.TrimSpace(id)
		if id == "" || len(id) > 64 || strings.IndexFunc(id, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == ':')
		}) >= 0 {
			return nil, fmt.Errorf("entries must be ids of letters, digits, '-', '_' or ':'")
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Store keeps ad spaces.
type Store interface {
	// CreateSpace stores a new space. It returns ErrSpaceExists when the
	// owner already has one and ErrOwnerNotFound when the owner is not a user.
	CreateSpace(ctx context.Context, s Space) error

	// SpaceByOwner returns the owner's space, or ErrSpaceNotFound.
	SpaceByOwner(ctx context.Context, owner uuid.UUID) (Space, error)

	// UpdateSettings replaces the settings of owner's space, increments its
	// version, sets UpdatedAt to now and returns the stored space. When
	// expectVersion is not zero the update happens only if the stored
	// version equals it, else it returns ErrVersionConflict; of two
	// concurrent updates expecting the same version, exactly one succeeds.
	// It returns ErrSpaceNotFound when owner has no space. The caller passes
	// settings already normalised.
	UpdateSettings(ctx context.Context, owner uuid.UUID, s Settings, expectVersion int64, now time.Time) (Space, error)
}

// AccountCreated gives a new account its ad space: it implements
// auth.AccountObserver, so that auth tells adspace of every sign-up
// without either depending on the other's service. It is idempotent.
func (s *Service) AccountCreated(ctx context.Context, u auth.User) error {
	return s.CreateSpace(ctx, u.ID)
}

// CreateSpace gives owner a space with the default settings, if they have
// none. It is idempotent.
func (s *Service) CreateSpace(ctx context.Context, owner uuid.UUID) error {
	sp, err := NewSpace(owner, s.defaultSettings(), s.now())
	if err != nil {
		return err
	}
	if err := s.cfg.Spaces.CreateSpace(ctx, sp); err != nil && !errors.Is(err, ErrSpaceExists) {
		return err
	}
	return nil
}

func (s *Service) defaultSettings() Settings {
	set := DefaultSettings()
	if _, ok := s.formats[DefaultFormat]; !ok {
		set.Formats = []string{s.Formats()[0].Name}
	}
	return set
}

// ensureSpace returns owner's space, creating the default one for an
// existing user who has none (accounts made before spaces existed, or a
// failed hook).
func (s *Service) ensureSpace(ctx context.Context, owner uuid.UUID) (Space, error) {
	sp, err := s.cfg.Spaces.SpaceByOwner(ctx, owner)
	if !errors.Is(err, ErrSpaceNotFound) {
		return sp, err
	}
	if err := s.CreateSpace(ctx, owner); err != nil {
		if errors.Is(err, ErrOwnerNotFound) {
			return Space{}, ErrSpaceNotFound
		}
		return Space{}, err
	}
	return s.cfg.Spaces.SpaceByOwner(ctx, owner)
}

// MySpace returns the caller's space.
func (s *Service) MySpace(ctx context.Context, p auth.Principal) (Space, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermAdSpace); err != nil {
		return Space{}, err
	}
	return s.ensureSpace(ctx, p.UserID)
}

// UpdateSettings replaces the caller's settings. They are validated and
// normalised; formats must be configured ones and the ads per view within
// the caller's tier. expectVersion, when not zero, must be the stored
// version (ErrVersionConflict otherwise). Every instance sees the change
// within moments (the cached copies are invalidated).
func (s *Service) UpdateSettings(ctx context.Context, p auth.Principal, set Settings, expectVersion int64) (Space, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermAdSpace); err != nil {
		return Space{}, err
	}
	set, err := s.checkSettings(ctx, p.UserID, set)
	if err != nil {
		return Space{}, err
	}
	if _, err := s.ensureSpace(ctx, p.UserID); err != nil {
		return Space{}, err
	}
	sp, err := s.cfg.Spaces.UpdateSettings(ctx, p.UserID, set, expectVersion, s.now())
	if err != nil {
		return Space{}, err
	}
	// This instance caches what it wrote, so that its fills see the change
	// without a read and still have a copy if the store goes away; the
	// others drop theirs. The tier is the cached one, as old as it was (the
	// copy is due for a read when the old one was).
	if prev, ok := s.cache.stale(p.UserID); ok {
		s.cache.replace(p.UserID, s.newCachedSpace(sp, prev.tier, prev.fetched))
	} else {
		s.cache.drop(p.UserID)
	}
	if s.cfg.Changes != nil {
		s.cfg.Changes.SettingsChanged(ctx, sp)
	}
	if s.cfg.Broadcaster != nil {
		msg := p.UserID.String() + " " + strconv.FormatInt(sp.Version, 10)
		if err := s.cfg.Broadcaster.Publish(ctx, invalidationChannel, msg); err != nil {
			// Other instances catch up within SpaceCacheTTL.
			s.logger.WarnContext(ctx, "adspace: invalidation not published", slog.Any("error", err))
		}
	}
	return sp, nil
}

func (s *Service) checkSettings(ctx context.Context, owner uuid.UUID, set Settings) (Settings, error) {
	set, err := set.Normalize()
	fields := map[string]string{}
	if e := errAsFields(err); e != nil {
		maps.Copy(fields, e)
	} else if err != nil {
		return Settings{}, err
	}
	for _, f := range set.Formats {
		if _, ok := s.formats[f]; !ok {
			fields["formats"] = fmt.Sprintf("%q is not a format; use one of %v", f, slices.Sorted(maps.Keys(s.formats)))
		}
	}
	if set.MaxAdsPerView > 0 {
		u, err := s.cfg.Users.UserByID(ctx, owner)
		if err != nil {
			return Settings{}, err
		}
		tier, err := s.cfg.Tiers.Get(u.Tier)
		if err == nil && set.MaxAdsPerView > tier.MaxAdsPerView {
			fields["max_ads_per_view"] = fmt.Sprintf("your tier (%s) allows at most %d", tier.Name, tier.MaxAdsPerView)
		}
	}
	if len(fields) > 0 {
		return Settings{}, ErrInvalidSettings.WithFields(fields)
	}
	return set, nil
}
