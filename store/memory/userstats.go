package memory

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/store/internal/rollup"
)

var _ analytics.UserStats = (*Store)(nil)

// activeActions are the audit actions that show a user active.
var activeActions = map[string]bool{
	auth.AuditLoginSuccess: true,
	auth.AuditOIDCLogin:    true,
	auth.AuditRefresh:      true,
	auth.AuditRefreshGrace: true,
}

// isActivity reports whether e shows its actor active.
func isActivity(e auth.AuditEvent) bool {
	return activeActions[e.Action] && e.Outcome == auth.OutcomeSuccess && e.ActorID != uuid.Nil
}

// checkRange validates the arguments every UserStats method shares and
// normalises the range to microseconds.
func checkRange(from, to time.Time, g analytics.Granularity, loc *time.Location) (time.Time, time.Time, *time.Location, error) {
	if err := rollup.CheckGranularity(g); err != nil {
		return from, to, nil, err
	}
	loc, err := rollup.CheckLocation(loc)
	return rollup.Micro(from), rollup.Micro(to), loc, err
}

// Signups implements analytics.UserStats. It scans every user.
func (s *Store) Signups(ctx context.Context, from, to time.Time, g analytics.Granularity, loc *time.Location) ([]analytics.Count, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	from, to, loc, err := checkRange(from, to, g, loc)
	if err != nil {
		return nil, err
	}
	counts := map[time.Time]int64{}
	s.mu.RLock()
	for _, u := range s.users {
		if !u.CreatedAt.Before(from) && u.CreatedAt.Before(to) {
			counts[rollup.Bucket(u.CreatedAt, g, loc)]++
		}
	}
	s.mu.RUnlock()
	return sortedCounts(counts), nil
}

// ActiveUsers implements analytics.UserStats. It scans the audit log.
func (s *Store) ActiveUsers(ctx context.Context, from, to time.Time, g analytics.Granularity, loc *time.Location) ([]analytics.Count, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	from, to, loc, err := checkRange(from, to, g, loc)
	if err != nil {
		return nil, err
	}
	type seen struct {
		bucket time.Time
		user   uuid.UUID
	}
	active := map[seen]bool{}
	counts := map[time.Time]int64{}
	s.mu.RLock()
	for _, e := range s.audit {
		if !isActivity(e) || e.At.Before(from) || !e.At.Before(to) {
			continue
		}
		k := seen{rollup.Bucket(e.At, g, loc), e.ActorID}
		if !active[k] {
			active[k] = true
			counts[k.bucket]++
		}
	}
	s.mu.RUnlock()
	return sortedCounts(counts), nil
}

// UsersByTier implements analytics.UserStats.
func (s *Store) UsersByTier(ctx context.Context) (map[string]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]int64{}
	for _, u := range s.users {
		out[u.Tier]++
	}
	return out, nil
}

// Retention implements analytics.UserStats. Cohort c's Active[i] counts
// the cohort's users active (between from and to) in the i-th bucket after
// c; Active has periods+1 entries, fewer when the later buckets start at
// or after `to`. A negative periods is refused with
// analytics.ErrInvalidQuery.
func (s *Store) Retention(ctx context.Context, from, to time.Time, g analytics.Granularity, loc *time.Location, periods int) ([]analytics.Cohort, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	from, to, loc, err := checkRange(from, to, g, loc)
	if err != nil {
		return nil, err
	}
	if periods < 0 {
		return nil, analytics.ErrInvalidQuery.WithFields(errs.Fields{"periods": "must not be negative"})
	}
	out := []analytics.Cohort{}
	if !from.Before(to) {
		return out, nil
	}
	last := rollup.Bucket(to.Add(-time.Microsecond), g, loc) // the last bucket starting before to
	cohortOf := map[uuid.UUID]time.Time{}
	cohorts := map[time.Time]*analytics.Cohort{}
	active := map[uuid.UUID]map[int]bool{} // user → buckets after signup with activity

	s.mu.RLock()
	for _, u := range s.users {
		if u.CreatedAt.Before(from) || !u.CreatedAt.Before(to) {
			continue
		}
		c := rollup.Bucket(u.CreatedAt, g, loc)
		cohortOf[u.ID] = c
		co := cohorts[c]
		if co == nil {
			n := min(periods, rollup.Index(c, last, g, loc)) + 1
			co = &analytics.Cohort{Bucket: c, Active: make([]int64, n)}
			cohorts[c] = co
		}
		co.Size++
	}
	for _, e := range s.audit {
		if !isActivity(e) || e.At.Before(from) || !e.At.Before(to) {
			continue
		}
		c, ok := cohortOf[e.ActorID]
		if !ok {
			continue
		}
		i := rollup.Index(c, rollup.Bucket(e.At, g, loc), g, loc)
		if i < 0 || i >= len(cohorts[c].Active) {
			continue
		}
		if active[e.ActorID] == nil {
			active[e.ActorID] = map[int]bool{}
		}
		if !active[e.ActorID][i] {
			active[e.ActorID][i] = true
			cohorts[c].Active[i]++
		}
	}
	s.mu.RUnlock()

	for _, co := range cohorts {
		out = append(out, *co)
	}
	slices.SortFunc(out, func(a, b analytics.Cohort) int { return a.Bucket.Compare(b.Bucket) })
	return out, nil
}

func sortedCounts(counts map[time.Time]int64) []analytics.Count {
	out := make([]analytics.Count, 0, len(counts))
	for b, n := range counts {
		out = append(out, analytics.Count{Bucket: b, N: n})
	}
	slices.SortFunc(out, func(a, b analytics.Count) int { return a.Bucket.Compare(b.Bucket) })
	return out
}
