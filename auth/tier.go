package auth

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/internal/errs"
)

// Tier is a level of membership. It decides the owner's share of the
// revenue their ad space earns and the limits on what they may do. Tiers are
// data: the host configures them (see NewTiers), DefaultTiers otherwise.
type Tier struct {
	// Name identifies the tier in the API and the store, e.g. "free".
	Name string `json:"name"`
	// DisplayName is shown to users, e.g. "Free".
	DisplayName string `json:"display_name"`
	// RevenueShareBP is the owner's share of revenue in basis points
	// (1/100 of a percent): 6000 means 60%.
	RevenueShareBP int `json:"revenue_share_bp"`
	// MaxAdContents is how many ad contents the user may have at once.
	MaxAdContents int `json:"max_ad_contents"`
	// MaxAdsPerView caps the ads one fill of the user's space may return.
	MaxAdsPerView int `json:"max_ads_per_view"`
	// MinPayoutMicros is the smallest payout, in micros of the currency.
	MinPayoutMicros int64 `json:"min_payout_micros"`
}

// DefaultTiers are used when the host configures none.
func DefaultTiers() []Tier {
	return []Tier{
		{Name: "free", DisplayName: "Free", RevenueShareBP: 5000, MaxAdContents: 3, MaxAdsPerView: 1, MinPayoutMicros: 50_000_000},
		{Name: "pro", DisplayName: "Pro", RevenueShareBP: 6500, MaxAdContents: 25, MaxAdsPerView: 3, MinPayoutMicros: 20_000_000},
		{Name: "premium", DisplayName: "Premium", RevenueShareBP: 8000, MaxAdContents: 100, MaxAdsPerView: 5, MinPayoutMicros: 10_000_000},
	}
}

// Tiers is an immutable, validated tier table.
type Tiers struct {
	list []Tier
}

// NewTiers validates a tier table: at least one tier, unique valid names,
// shares between 0 and 10000 basis points, non-negative limits, and a tier
// named DefaultTier (where new users start).
func NewTiers(list []Tier) (*Tiers, error) {
	var fields errs.Fields
	if len(list) == 0 {
		fields.Add("tiers", "at least one tier is required")
	}
	seen := map[string]bool{}
	for i, t := range list {
		at := fmt.Sprintf("tiers/%d/", i)
		fields.Check(validTierName(t.Name), at+"name", "must be 1 to 64 letters, digits, '-' or '_'")
		fields.Check(!seen[t.Name], at+"name", "is used twice")
		seen[t.Name] = true
		fields.Check(t.RevenueShareBP >= 0 && t.RevenueShareBP <= 10_000, at+"revenue_share_bp", "must be between 0 and 10000")
		fields.Check(t.MaxAdContents >= 0, at+"max_ad_contents", "must not be negative")
		fields.Check(t.MaxAdsPerView >= 1, at+"max_ads_per_view", "must be at least 1")
		fields.Check(t.MinPayoutMicros >= 0, at+"min_payout_micros", "must not be negative")
	}
	if len(list) > 0 {
		fields.Check(seen[DefaultTier], "tiers", fmt.Sprintf("a tier named %q is required: new users start there", DefaultTier))
	}
	if err := fields.Err(ErrInvalidTiers); err != nil {
		return nil, err
	}
	return &Tiers{list: slices.Clone(list)}, nil
}

// All returns the tiers in configured order.
func (t *Tiers) All() []Tier { return slices.Clone(t.list) }

// Get returns the tier with the given name, or ErrTierNotFound.
func (t *Tiers) Get(name string) (Tier, error) {
	for _, tier := range t.list {
		if tier.Name == name {
			return tier, nil
		}
	}
	return Tier{}, ErrTierNotFound
}

// TierChange records that a user moved to a tier at a moment. Earnings
// use the tier in force when they were earned, so a change affects new
// earnings only.
type TierChange struct {
	UserID      uuid.UUID
	Tier        string
	EffectiveAt time.Time
	// ChangedBy is the admin who made the change; uuid.Nil when the system
	// did (for example, at sign-up).
	ChangedBy uuid.UUID
}

// TierHistory tells which tier a user was on at a moment, from the tier
// changes the store keeps and the tier table: what earnings are split by.
// It needs no Service, so analytics can be built before the auth Service.
type TierHistory struct {
	// Users keeps the tier changes.
	Users interface {
		TierAt(ctx context.Context, user uuid.UUID, at time.Time) (string, error)
	}
	// Tiers is the tier table.
	Tiers *Tiers
}

// TierAt returns the tier user was on at at: the store's errors
// (ErrUserNotFound for an unknown user), or ErrTierNotFound when the tier
// named in the history is no longer in the table.
func (h TierHistory) TierAt(ctx context.Context, user uuid.UUID, at time.Time) (Tier, error) {
	name, err := h.Users.TierAt(ctx, user, at)
	if err != nil {
		return Tier{}, err
	}
	return h.Tiers.Get(name)
}
