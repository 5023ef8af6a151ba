package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/store/internal/rollup"
)

var _ analytics.UserStats = (*DB)(nil)

// activeActions are the audit actions that show a user active.
var activeActions = []string{auth.AuditLoginSuccess, auth.AuditOIDCLogin, auth.AuditRefresh, auth.AuditRefreshGrace}

// userRange is the checked arguments of a UserStats call: the range in
// microseconds, and the SQL that buckets a timestamptz column ($3 is the
// zone name).
type userRange struct {
	from, to time.Time
	zone     string
	g        analytics.Granularity
}

func checkUserRange(from, to time.Time, g analytics.Granularity, loc *time.Location) (userRange, error) {
	if err := rollup.CheckGranularity(g); err != nil {
		return userRange{}, err
	}
	loc, err := rollup.CheckLocation(loc)
	if err != nil {
		return userRange{}, err
	}
	zone := loc.String()
	if g == analytics.Hour {
		zone = "UTC" // hours are UTC hours; see rollup.Bucket
	}
	return userRange{from: rollup.Micro(from), to: rollup.Micro(to), zone: zone, g: g}, nil
}

// bucket returns the SQL bucketing column col; the zone is parameter $3.
func (r userRange) bucket(col string) string {
	return fmt.Sprintf("date_trunc('%s', %s, $3)", r.g, col)
}

// index returns the SQL counting the buckets from the one starting at c to
// the one starting at b, as rollup.Index does; the zone is parameter $3.
func (r userRange) index(c, b string) string {
	local := func(x string) string { return "(" + x + " AT TIME ZONE $3)" }
	switch r.g {
	case analytics.Hour:
		return fmt.Sprintf("floor(extract(epoch FROM %s - %s) / 3600)::int", b, c)
	case analytics.Week:
		return fmt.Sprintf("((%s::date - %s::date) / 7)", local(b), local(c))
	case analytics.Month:
		return fmt.Sprintf("((extract(year FROM %[1]s) * 12 + extract(month FROM %[1]s))::int - (extract(year FROM %[2]s) * 12 + extract(month FROM %[2]s))::int)",
			local(b), local(c))
	default:
		return fmt.Sprintf("(%s::date - %s::date)", local(b), local(c))
	}
}

// activitySQL selects the audit events that show their actor active
// between $1 and $2 ($4 holds activeActions).
const activitySQL = `at >= $1 AND at < $2 AND action = ANY($4) AND outcome = 'success' AND actor_id IS NOT NULL`

// Signups implements analytics.UserStats (users_created_at_idx serves the
// range).
func (db *DB) Signups(ctx context.Context, from, to time.Time, g analytics.Granularity, loc *time.Location) ([]analytics.Count, error) {
	r, err := checkUserRange(from, to, g, loc)
	if err != nil {
		return nil, err
	}
	return db.counts(ctx, `
		SELECT `+r.bucket("created_at")+` AS b, count(*) FROM users
		WHERE created_at >= $1 AND created_at < $2
		GROUP BY b ORDER BY b`, r.from, r.to, r.zone)
}

// ActiveUsers implements analytics.UserStats (audit_events_at_idx serves
// the range).
func (db *DB) ActiveUsers(ctx context.Context, from, to time.Time, g analytics.Granularity, loc *time.Location) ([]analytics.Count, error) {
	r, err := checkUserRange(from, to, g, loc)
	if err != nil {
		return nil, err
	}
	return db.counts(ctx, `
		SELECT `+r.bucket("at")+` AS b, count(DISTINCT actor_id) FROM audit_events
		WHERE `+activitySQL+`
		GROUP BY b ORDER BY b`, r.from, r.to, r.zone, activeActions)
}

func (db *DB) counts(ctx context.Context, sql string, args ...any) ([]analytics.Count, error) {
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, translateQuery(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (analytics.Count, error) {
		var c analytics.Count
		err := row.Scan(&c.Bucket, &c.N)
		c.Bucket = c.Bucket.UTC()
		return c, err
	})
	if err != nil {
		return nil, translateQuery(err)
	}
	if out == nil {
		out = []analytics.Count{}
	}
	return out, nil
}

// UsersByTier implements analytics.UserStats.
func (db *DB) UsersByTier(ctx context.Context) (map[string]int64, error) {
	rows, err := db.pool.Query(ctx, `SELECT tier, count(*) FROM users GROUP BY tier`)
	if err != nil {
		return nil, translate(err, nil)
	}
	out := map[string]int64{}
	var (
		tier string
		n    int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&tier, &n}, func() error {
		out[tier] = n
		return nil
	}); err != nil {
		return nil, translate(err, nil)
	}
	return out, nil
}

// Retention implements analytics.UserStats in one query: cohorts by signup
// bucket, then each cohort member's distinct activity buckets, counted by
// their distance from the cohort's bucket. Active has periods+1 entries,
// fewer when the later buckets start at or after `to`. A negative periods
// is refused with analytics.ErrInvalidQuery.
func (db *DB) Retention(ctx context.Context, from, to time.Time, g analytics.Granularity, loc *time.Location, periods int) ([]analytics.Cohort, error) {
	r, err := checkUserRange(from, to, g, loc)
	if err != nil {
		return nil, err
	}
	if periods < 0 {
		return nil, analytics.ErrInvalidQuery.WithFields(errs.Fields{"periods": "must not be negative"})
	}
	out := []analytics.Cohort{}
	if !r.from.Before(r.to) {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `
		WITH cohort AS (
			SELECT id, `+r.bucket("created_at")+` AS c FROM users
			WHERE created_at >= $1 AND created_at < $2
		), sizes AS (
			SELECT c, count(*) AS size,
				least($5::int, `+r.index("c", r.bucket("$2::timestamptz - interval '1 microsecond'"))+`) + 1 AS n
			FROM cohort GROUP BY c
		), active AS (
			SELECT DISTINCT actor_id, `+r.bucket("at")+` AS b FROM audit_events
			WHERE `+activitySQL+` AND actor_id IN (SELECT id FROM cohort)
		), hits AS (
			SELECT cohort.c, `+r.index("cohort.c", "active.b")+` AS i, count(*) AS users
			FROM cohort JOIN active ON active.actor_id = cohort.id
			GROUP BY 1, 2
		)
		SELECT sizes.c, sizes.size, sizes.n, hits.i, hits.users
		FROM sizes LEFT JOIN hits ON hits.c = sizes.c AND hits.i >= 0 AND hits.i < sizes.n
		ORDER BY sizes.c, hits.i`,
		r.from, r.to, r.zone, activeActions, periods)
	if err != nil {
		return nil, translateQuery(err)
	}
	var (
		c       time.Time
		size, n int64
		i       *int32
		users   *int64
	)
	_, err = pgx.ForEachRow(rows, []any{&c, &size, &n, &i, &users}, func() error {
		if len(out) == 0 || !out[len(out)-1].Bucket.Equal(c) {
			out = append(out, analytics.Cohort{Bucket: c.UTC(), Size: size, Active: make([]int64, n)})
		}
		if i != nil {
			out[len(out)-1].Active[*i] = *users
		}
		return nil
	})
	if err != nil {
		return nil, translateQuery(err)
	}
	return out, nil
}
