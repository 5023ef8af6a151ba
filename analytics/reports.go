package analytics

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

// MaxBuckets caps the buckets of one report: a range too long for its
// granularity is refused, never run.
const MaxBuckets = 2000

// The range a report's From and To must lie in. Nothing the service
// stores predates the Unix epoch, and the upper bound leaves room to
// round To up to a whole bucket in any time zone and still have a time
// that every consumer can take: time.Time.MarshalJSON fails outside years
// 0 to 9999, so a To of 9999-12-31 rounded up to its month would make an
// answer that cannot be written.
var (
	earliestReportTime = time.Date(1970, time.January, 1, 0, 0, 0, 0, time.UTC)
	latestReportTime   = time.Date(9000, time.January, 1, 0, 0, 0, 0, time.UTC)
)

// Authorizer checks permissions (auth.Service implements it).
type Authorizer interface {
	Authorize(ctx context.Context, p auth.Principal, perm auth.Permission) error
}

// Scope says whose figures a performance report covers.
type Scope string

// Scopes.
const (
	// ScopeOwner: the caller's own ad space.
	ScopeOwner Scope = "owner"
	// ScopeAdvertiser: the caller's own ads, wherever they ran.
	ScopeAdvertiser Scope = "advertiser"
	// ScopeAll: everything (analytics:all).
	ScopeAll Scope = "all"
)

// ReportParams select a report.
type ReportParams struct {
	Scope Scope
	// From (inclusive) and To (exclusive) must lie within 1970-01-01 and
	// 9000-01-01 (UTC), To after From; the report widens them to whole
	// buckets. The zero time is out of range like any other: a caller
	// with no range in mind picks a default itself.
	From, To    time.Time
	Granularity Granularity
	// TimeZone is an IANA zone; days, weeks and months follow it. Empty: UTC.
	TimeZone string
	GroupBy  []Dimension
	// Owner and Advertiser filter a ScopeAll report.
	Owner      uuid.UUID
	Advertiser string
}

// Performance is a performance report.
type Performance struct {
	From, To    time.Time
	Granularity Granularity
	TimeZone    string
	Rows        []Row
	Totals      Totals
}

// query checks the parameters against the caller's rights and turns them
// into a store query, with the range aligned to whole buckets.
func (s *Service) query(ctx context.Context, p auth.Principal, rp ReportParams) (Query, error) {
	authz := s.cfg.Auth
	if authz == nil {
		return Query{}, errReportsUnavailable
	}
	var f errs.Fields
	q := Query{Granularity: rp.Granularity, GroupBy: slices.Clone(rp.GroupBy)}
	loc := time.UTC
	if rp.TimeZone != "" {
		l, err := time.LoadLocation(rp.TimeZone)
		if err != nil || rp.TimeZone == "Local" {
			f.Add("time_zone", "must be an IANA time zone such as Europe/Berlin")
		} else {
			loc = l
		}
	}
	q.Location = loc
	switch rp.Granularity {
	case Hour, Day, Week, Month:
	default:
		f.Add("granularity", "must be hour, day, week or month")
	}
	for _, d := range rp.GroupBy {
		if d != ByOwner && d != ByAd && d != ByAdvertiser {
			f.Add("group_by", "dimensions are owner, ad and advertiser")
		}
	}
	inRange := "must be from " + earliestReportTime.Format(time.RFC3339) + " to " + latestReportTime.Format(time.RFC3339)
	f.Check(!rp.From.Before(earliestReportTime) && !rp.From.After(latestReportTime), "from", inRange)
	switch {
	case rp.To.Before(earliestReportTime) || rp.To.After(latestReportTime):
		f.Add("to", inRange)
	case !rp.From.Before(rp.To):
		f.Add("to", "must be after from")
	}
	if err := f.Err(ErrInvalidQuery); err != nil {
		return Query{}, err
	}
	q.From, q.To = alignDown(rp.From, rp.Granularity, loc), alignUp(rp.To, rp.Granularity, loc)
	if n := buckets(q.From, q.To, rp.Granularity, loc); n > MaxBuckets {
		return Query{}, ErrInvalidQuery.WithFields(errs.Fields{"granularity": fmt.Sprintf(
			"%d buckets is too many (at most %d): use a coarser granularity or a shorter range", n, MaxBuckets)})
	}

	switch rp.Scope {
	case ScopeOwner, "":
		if err := authz.Authorize(ctx, p, auth.PermAdSpace); err != nil {
			return Query{}, err
		}
		q.Owner = p.UserID
	case ScopeAdvertiser:
		if err := authz.Authorize(ctx, p, auth.PermContentCreate); err != nil {
			return Query{}, err
		}
		q.Advertiser = p.UserID.String()
		if slices.Contains(q.GroupBy, ByOwner) {
			return Query{}, ErrInvalidQuery.WithFields(errs.Fields{"group_by": "advertisers see their ads, not the spaces' owners"})
		}
	case ScopeAll:
		if err := authz.Authorize(ctx, p, auth.PermAnalyticsAll); err != nil {
			return Query{}, err
		}
		q.Owner, q.Advertiser = rp.Owner, rp.Advertiser
	default:
		return Query{}, ErrInvalidQuery.WithFields(errs.Fields{"scope": "must be owner, advertiser or all"})
	}
	return q, nil
}

// Performance reports impressions, clicks, invalid traffic, spend,
// estimated owner earnings and fill rate per bucket, read from the hourly
// rollups (never from raw events).
func (s *Service) Performance(ctx context.Context, p auth.Principal, rp ReportParams) (Performance, error) {
	defer s.metrics.timeReport("performance", time.Now())
	q, err := s.query(ctx, p, rp)
	if err != nil {
		return Performance{}, err
	}
	rows, err := s.cfg.Store.Report(ctx, q)
	if err != nil {
		return Performance{}, err
	}
	out := Performance{From: q.From, To: q.To, Granularity: q.Granularity, TimeZone: q.Location.String(), Rows: rows}
	out.Totals = sum(rows)
	return out, nil
}

func sum(rows []Row) Totals {
	t := Totals{InvalidByRule: map[string]int64{}}
	for _, r := range rows {
		t.Counts.Add(r.Counts)
		for k, v := range r.InvalidByRule {
			t.InvalidByRule[k] += v
		}
	}
	return t
}

// Settled is what settlement and payouts say about earnings; the billing
// system supplies it.
type Settled interface {
	// Settled returns the final owner and platform shares and what was paid
	// out, for the owner (uuid.Nil: everyone) within [from, to).
	Settled(ctx context.Context, owner uuid.UUID, from, to time.Time) (SettledFigures, error)
}

// SettledFigures are final money figures, in micros.
type SettledFigures struct {
	OwnerMicros    int64
	PlatformMicros int64
	PaidOutMicros  int64
}

// Revenue is a revenue report.
type Revenue struct {
	From, To    time.Time
	Granularity Granularity
	TimeZone    string
	// Rows hold gross spend and the estimated split per bucket.
	Rows []RevenueRow
	// Estimated sums the rows.
	Estimated RevenueRow
	// Final and Paid come from settlement; nil when billing is not
	// configured.
	Final *SettledFigures
}

// RevenueRow is gross revenue and its estimated split.
type RevenueRow struct {
	Bucket         time.Time
	GrossMicros    int64
	OwnerMicros    int64
	PlatformMicros int64
}

// Revenue reports gross revenue, the owner's and the platform's estimated
// shares per bucket, and (when billing is configured) final and paid-out
// figures for the range.
func (s *Service) Revenue(ctx context.Context, p auth.Principal, rp ReportParams) (Revenue, error) {
	defer s.metrics.timeReport("revenue", time.Now())
	if rp.Scope == ScopeAdvertiser {
		return Revenue{}, ErrInvalidQuery.WithFields(errs.Fields{"scope": "revenue is reported for owners or for all"})
	}
	rp.GroupBy = nil
	q, err := s.query(ctx, p, rp)
	if err != nil {
		return Revenue{}, err
	}
	rows, err := s.cfg.Store.Report(ctx, q)
	if err != nil {
		return Revenue{}, err
	}
	out := Revenue{From: q.From, To: q.To, Granularity: q.Granularity, TimeZone: q.Location.String(), Rows: make([]RevenueRow, 0, len(rows))}
	for _, r := range rows {
		rr := RevenueRow{Bucket: r.Bucket, GrossMicros: r.SpendMicros, OwnerMicros: r.OwnerEarningsMicros,
			PlatformMicros: r.SpendMicros - r.OwnerEarningsMicros}
		out.Rows = append(out.Rows, rr)
		out.Estimated.GrossMicros += rr.GrossMicros
		out.Estimated.OwnerMicros += rr.OwnerMicros
		out.Estimated.PlatformMicros += rr.PlatformMicros
	}
	if s.cfg.Settled != nil {
		f, err := s.cfg.Settled.Settled(ctx, q.Owner, q.From, q.To)
		if err != nil {
			return Revenue{}, err
		}
		out.Final = &f
	}
	return out, nil
}

// UsersReport is the users report.
type UsersReport struct {
	From, To    time.Time
	Granularity Granularity
	TimeZone    string
	Signups     []Count
	Active      []Count
	ByTier      map[string]int64
	Retention   []Cohort
}

// errReportsUnavailable: no Authorizer is configured, so no report can
// be scoped.
var errReportsUnavailable = errs.New(errs.Unavailable, "reports_unavailable", "reports are not configured")

// ErrUsersUnavailable: no UserStats is configured.
var ErrUsersUnavailable = errs.New(errs.Unavailable, "users_report_unavailable", "the users report is not configured")

// Users reports signups, active users, users by tier and retention by
// signup cohort. Admins only (analytics:all).
func (s *Service) Users(ctx context.Context, p auth.Principal, rp ReportParams, periods int) (UsersReport, error) {
	defer s.metrics.timeReport("users", time.Now())
	rp.Scope, rp.GroupBy = ScopeAll, nil
	q, err := s.query(ctx, p, rp)
	if err != nil {
		return UsersReport{}, err
	}
	if q.Granularity == Hour {
		return UsersReport{}, ErrInvalidQuery.WithFields(errs.Fields{"granularity": "users are reported by day, week or month"})
	}
	if periods <= 0 || periods > 52 {
		periods = 12
	}
	if s.cfg.Users == nil {
		return UsersReport{}, ErrUsersUnavailable
	}
	out := UsersReport{From: q.From, To: q.To, Granularity: q.Granularity, TimeZone: q.Location.String()}
	if out.Signups, err = s.cfg.Users.Signups(ctx, q.From, q.To, q.Granularity, q.Location); err != nil {
		return UsersReport{}, err
	}
	if out.Active, err = s.cfg.Users.ActiveUsers(ctx, q.From, q.To, q.Granularity, q.Location); err != nil {
		return UsersReport{}, err
	}
	if out.ByTier, err = s.cfg.Users.UsersByTier(ctx); err != nil {
		return UsersReport{}, err
	}
	if out.Retention, err = s.cfg.Users.Retention(ctx, q.From, q.To, q.Granularity, q.Location, periods); err != nil {
		return UsersReport{}, err
	}
	return out, nil
}

// alignDown truncates t to the start of its bucket in loc.
func alignDown(t time.Time, g Granularity, loc *time.Location) time.Time {
	t = t.In(loc)
	switch g {
	case Hour:
		return t.Truncate(time.Hour).UTC() // whole hours are the same everywhere that matters here
	case Day:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc).UTC()
	case Week:
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
		back := (int(d.Weekday()) + 6) % 7 // weeks start on Monday
		return d.AddDate(0, 0, -back).UTC()
	case Month:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc).UTC()
	}
	return t.UTC()
}

// alignUp rounds t up to a bucket boundary in loc.
func alignUp(t time.Time, g Granularity, loc *time.Location) time.Time {
	down := alignDown(t, g, loc)
	if down.Equal(t) {
		return down
	}
	return next(down, g, loc)
}

func next(t time.Time, g Granularity, loc *time.Location) time.Time {
	l := t.In(loc)
	switch g {
	case Hour:
		return t.Add(time.Hour)
	case Day:
		return l.AddDate(0, 0, 1).UTC()
	case Week:
		return l.AddDate(0, 0, 7).UTC()
	case Month:
		return l.AddDate(0, 1, 0).UTC()
	}
	return t
}

// buckets counts the buckets in [from, to), stopping past MaxBuckets.
func buckets(from, to time.Time, g Granularity, loc *time.Location) int {
	if g == Hour {
		return int(to.Sub(from) / time.Hour)
	}
	n := 0
	for t := from; t.Before(to) && n <= MaxBuckets; t = next(t, g, loc) {
		n++
	}
	return n
}
