package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// BenchmarkReport30DaysHourlyOver10MEvents times the performance report's
// query (one owner, 30 days by hour, grouped by ad) over rollups built from
// 10 million events: 200 owners with 20 ads each, spread over 30 days, 5%
// invalid. The events are generated in SQL and the rollups built from them
// by the same grouping the ingest path applies. Seeding takes a few minutes;
// run it with -benchtime=20x.
func BenchmarkReport30DaysHourlyOver10MEvents(b *testing.B) {
	ctx := context.Background()
	db := postgrestest.New(b)
	end := time.Now().UTC().Truncate(time.Hour)
	start := end.Add(-30 * 24 * time.Hour)
	pool := db.Pool()
	b.Log("seeding 10M events ...")
	t0 := time.Now()
	_, err := pool.Exec(ctx, `
		INSERT INTO events (issued_at, tracking_id, type, owner_id, viewer_key, placement, source, ad_id, advertiser_id,
			price_model, price_micros, occurred_at, received_at, billable, valid, rule, spend_micros, owner_earnings_micros, owner_share_bp)
		SELECT t, gen_random_uuid(), 'impression',
			('00000000-0000-0000-0000-' || lpad(to_hex(i % 200), 12, '0'))::uuid,
			'v' || (i % 100000), 'main', 'local', 'ad-' || (i % 4000), 'adv-' || (i % 50), 'cpm', 2000000, t, t, true,
			(i % 20) <> 0, CASE WHEN (i % 20) = 0 THEN 'bot_user_agent' ELSE '' END,
			CASE WHEN (i % 20) = 0 THEN 0 ELSE 2000 END, CASE WHEN (i % 20) = 0 THEN 0 ELSE 1000 END, 5000
		FROM (SELECT i, $1::timestamptz + (i % 2592000) * interval '1 second' AS t FROM generate_series(1, 10000000) AS i) s`, start)
	require.NoError(b, err)
	_, err = pool.Exec(ctx, `
		INSERT INTO rollups_hourly (hour, owner_id, ad_key, advertiser_id, impressions, valid_impressions, billable_impressions,
			spend_micros, owner_earnings_micros)
		SELECT date_trunc('hour', occurred_at), owner_id, source || ':' || ad_id, advertiser_id, count(*),
			count(*) FILTER (WHERE valid), count(*) FILTER (WHERE valid AND billable), sum(spend_micros), sum(owner_earnings_micros)
		FROM events GROUP BY 1, 2, 3, 4;
		INSERT INTO rollup_invalid_hourly (hour, owner_id, ad_key, advertiser_id, rule, count)
		SELECT date_trunc('hour', occurred_at), owner_id, source || ':' || ad_id, advertiser_id, rule, count(*)
		FROM events WHERE NOT valid GROUP BY 1, 2, 3, 4, 5;
		ANALYZE rollups_hourly; ANALYZE rollup_invalid_hourly;`)
	require.NoError(b, err)
	var rollups int64
	require.NoError(b, pool.QueryRow(ctx, `SELECT count(*) FROM rollups_hourly`).Scan(&rollups))
	b.Logf("seeded in %v: %d rollup rows", time.Since(t0).Round(time.Second), rollups)

	owner := uuid.MustParse("00000000-0000-0000-0000-000000000007")
	for _, tc := range []struct {
		name    string
		groupBy []analytics.Dimension
	}{{"total", nil}, {"by-ad", []analytics.Dimension{analytics.ByAd}}} {
		b.Run(tc.name, func(b *testing.B) {
			q := analytics.Query{Granularity: analytics.Hour, From: start, To: end, Location: time.UTC, Owner: owner, GroupBy: tc.groupBy}
			rows, err := db.Report(ctx, q)
			require.NoError(b, err)
			require.NotEmpty(b, rows)
			for b.Loop() {
				if _, err := db.Report(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(rows)), "rows")
		})
	}
}
