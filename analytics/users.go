package analytics

import (
	"context"
	"time"
)

// UserStats answers questions about the user base, from the accounts,
// sessions and audit events the auth system keeps.
type UserStats interface {
	// Signups counts accounts created per bucket of g in loc, between from
	// (inclusive) and to (exclusive). Buckets without signups are absent.
	Signups(ctx context.Context, from, to time.Time, g Granularity, loc *time.Location) ([]Count, error)

	// ActiveUsers counts distinct users with a successful sign-in or
	// refresh (the audit log's auth.login.success, auth.oidc.login,
	// auth.refresh and auth.refresh.grace events) per bucket.
	ActiveUsers(ctx context.Context, from, to time.Time, g Granularity, loc *time.Location) ([]Count, error)

	// UsersByTier counts accounts per current tier.
	UsersByTier(ctx context.Context) (map[string]int64, error)

	// Retention groups users by signup bucket (the cohort) and counts, for
	// each later bucket up to `periods` buckets after it, how many of the
	// cohort were active in it. Cohorts start between from and to.
	Retention(ctx context.Context, from, to time.Time, g Granularity, loc *time.Location, periods int) ([]Cohort, error)
}

// Count is one bucket's count.
type Count struct {
	Bucket time.Time
	N      int64
}

// Cohort is the users who signed up in one bucket and how many of them
// were active in each bucket since (Active[0] is the signup bucket).
type Cohort struct {
	Bucket time.Time
	Size   int64
	Active []int64
}
