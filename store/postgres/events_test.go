package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/store/internal/rollup"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
	"github.com/adshare/adshare/store/storetest"
)

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

// partitionOf returns the table holding the event of the given token.
func partitionOf(t *testing.T, db *postgres.DB, id uuid.UUID) string {
	t.Helper()
	var name string
	require.NoError(t, db.Pool().QueryRow(context.Background(),
		`SELECT tableoid::regclass::text FROM events WHERE tracking_id = $1`, id).Scan(&name))
	return name
}

func TestEventPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.New(t)

	// The migration made the days from two before today to seven after.
	days, err := db.EventPartitions(ctx)
	require.NoError(t, err)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	require.Contains(t, days, today)
	require.Len(t, days, 10)

	// Events of days without a partition land in the default one.
	early := storetest.NewEvent(uuid.New(), analytics.Impression, day("2020-01-02").Add(12*time.Hour))
	ancient := storetest.NewEvent(uuid.New(), analytics.Impression, day("1999-01-01"))
	_, err = db.WriteEvents(ctx, []analytics.Event{early, ancient})
	require.NoError(t, err)
	require.Equal(t, "events_default", partitionOf(t, db, early.TrackingID))
	require.Equal(t, "events_default", partitionOf(t, db, ancient.TrackingID))

	// Creating the days moves their waiting rows out of the default.
	require.NoError(t, db.EnsureEventPartitions(ctx, day("2020-01-01").Add(13*time.Hour), day("2020-01-05")))
	require.Equal(t, "events_y2020m01d02", partitionOf(t, db, early.TrackingID))
	require.Equal(t, "events_default", partitionOf(t, db, ancient.TrackingID))
	isNew, err := db.WriteEvents(ctx, []analytics.Event{early})
	require.NoError(t, err)
	require.Equal(t, []bool{false}, isNew, "a moved event is still known")

	// Idempotent, also when instances race.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = db.EnsureEventPartitions(ctx, day("2020-01-01"), day("2020-01-06")) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	days, err = db.EventPartitions(ctx)
	require.NoError(t, err)
	require.Equal(t, []time.Time{day("2020-01-01"), day("2020-01-02"), day("2020-01-03"), day("2020-01-04"),
		day("2020-01-05"), day("2020-01-06")}, days[:6])
	require.Len(t, days, 16)

	// One event per day, then retention before the middle of Jan 3.
	var byDay []analytics.Event
	for _, d := range []string{"2020-01-01", "2020-01-03", "2020-01-05"} {
		byDay = append(byDay, storetest.NewEvent(uuid.New(), analytics.Impression, day(d).Add(time.Hour)))
	}
	_, err = db.WriteEvents(ctx, byDay)
	require.NoError(t, err)
	q := analytics.Query{Granularity: analytics.Day, From: day("2020-01-01"), To: day("2020-01-07")}
	before, err := db.Report(ctx, q)
	require.NoError(t, err)
	require.Len(t, before, 4)

	n, err := db.DropEventPartitionsBefore(ctx, day("2020-01-03").Add(12*time.Hour))
	require.NoError(t, err)
	require.Equal(t, 2, n, "Jan 1 and Jan 2; Jan 3 holds moments after the cutoff")
	days, err = db.EventPartitions(ctx)
	require.NoError(t, err)
	require.Equal(t, day("2020-01-03"), days[0])

	var served []analytics.ServedAd
	for _, e := range []analytics.Event{byDay[0], early, byDay[1], ancient} {
		served = append(served, analytics.ServedAd{TrackingID: e.TrackingID, IssuedAt: e.Ad.IssuedAt})
	}
	times, err := db.ImpressionTimes(ctx, served)
	require.NoError(t, err)
	require.Equal(t, map[uuid.UUID]time.Time{
		byDay[1].TrackingID: byDay[1].OccurredAt,
		ancient.TrackingID:  ancient.OccurredAt, // the default partition is never dropped
	}, times, "the dropped days' events are gone")
	after, err := db.Report(ctx, q)
	require.NoError(t, err)
	require.Equal(t, before, after, "the rollups are untouched")

	n, err = db.DropEventPartitionsBefore(ctx, day("2020-01-03").Add(12*time.Hour))
	require.NoError(t, err)
	require.Zero(t, n)
}

// Every field of an event reaches its row.
func TestEventRowKeepsEveryField(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.New(t)
	now := time.Now()
	e := analytics.Event{
		TrackingID: uuid.Must(uuid.NewV7()), Type: analytics.Conversion, Name: "purchase",
		Ad: tracking.Ad{Owner: uuid.New(), Viewer: uuid.New(), ViewerKey: "vk", Placement: "main", Source: "kevel",
			AdID: "ad", CreativeID: "cr", CampaignID: "ca", AdvertiserID: "adv", PriceModel: "cpc", PriceMicros: 1234,
			Billable: true, IssuedAt: now.Add(-time.Minute)},
		OccurredAt: now.Add(-time.Second), ReceivedAt: now, Valid: false, Rule: "no_click", SpendMicros: 20, OwnerEarningsMicros: 14, OwnerShareBP: 7000,
		ValueMicros: 99_000_000, ClientPrefix: "2001:db8::/48", UserAgent: "Zoë/1.0 🚲",
	}
	anonymous := storetest.NewEvent(uuid.New(), analytics.Impression, now)
	_, err := db.WriteEvents(ctx, []analytics.Event{e, anonymous})
	require.NoError(t, err)

	rows, err := db.Pool().Query(ctx, `
		SELECT tracking_id, type, name, owner_id, viewer_id, viewer_key, placement, source, ad_id, creative_id,
			campaign_id, advertiser_id, price_model, price_micros, issued_at, occurred_at, received_at, billable,
			valid, rule, spend_micros, owner_earnings_micros, owner_share_bp, value_micros, client_prefix, user_agent
		FROM events ORDER BY type`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (analytics.Event, error) {
		var (
			g      analytics.Event
			viewer *uuid.UUID
		)
		err := r.Scan(&g.TrackingID, &g.Type, &g.Name, &g.Ad.Owner, &viewer, &g.Ad.ViewerKey, &g.Ad.Placement, &g.Ad.Source,
			&g.Ad.AdID, &g.Ad.CreativeID, &g.Ad.CampaignID, &g.Ad.AdvertiserID, &g.Ad.PriceModel, &g.Ad.PriceMicros, &g.Ad.IssuedAt,
			&g.OccurredAt, &g.ReceivedAt, &g.Ad.Billable, &g.Valid, &g.Rule, &g.SpendMicros, &g.OwnerEarningsMicros,
			&g.OwnerShareBP, &g.ValueMicros, &g.ClientPrefix, &g.UserAgent)
		if viewer != nil {
			g.Ad.Viewer = *viewer
		}
		g.Ad.IssuedAt, g.OccurredAt, g.ReceivedAt = g.Ad.IssuedAt.UTC(), g.OccurredAt.UTC(), g.ReceivedAt.UTC()
		return g, err
	})
	require.NoError(t, err)
	for _, w := range []*analytics.Event{&e, &anonymous} {
		w.Ad.IssuedAt, w.OccurredAt, w.ReceivedAt = rollup.Micro(w.Ad.IssuedAt), rollup.Micro(w.OccurredAt), rollup.Micro(w.ReceivedAt)
	}
	require.Equal(t, []analytics.Event{e, anonymous}, got, "conversion sorts before impression")
}

// The tables refuse what the domain forbids, even to SQL that skips the
// store's own checks.
func TestEventConstraintsRejectWhatTheDomainForbids(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.New(t)
	tests := []struct {
		description string
		columns     string
		constraint  string
	}{
		{"unknown type", `'view', true, 10, 5, 7000, ''`, "events_type_check"},
		{"negative spend", `'impression', true, -1, 0, 7000, ''`, "check constraint"}, // earnings' check may fire first
		{"earnings above spend", `'impression', true, 10, 11, 7000, ''`, "events_earnings_check"},
		{"negative earnings", `'impression', true, 10, -1, 7000, ''`, "events_earnings_check"},
		{"share above 100%", `'impression', true, 10, 5, 10001, ''`, "events_share_check"},
		{"invalid without a rule", `'impression', false, 0, 0, 0, ''`, "events_rule_check"},
		{"valid with a rule", `'impression', true, 10, 5, 7000, 'burst'`, "events_rule_check"},
	}
	insert := func(columns string) error {
		_, err := db.Pool().Exec(ctx, `
			INSERT INTO events (issued_at, tracking_id, owner_id, occurred_at, received_at, billable,
				type, valid, spend_micros, owner_earnings_micros, owner_share_bp, rule)
			VALUES (now(), gen_random_uuid(), gen_random_uuid(), now(), now(), true, `+columns+`)`)
		return err
	}
	require.NoError(t, insert(`'impression', true, 10, 5, 7000, ''`), "the base row is valid")
	require.NoError(t, insert(`'click', false, 0, 0, 0, 'burst'`), "an invalid row names its rule")
	for _, tt := range tests {
		require.ErrorContains(t, insert(tt.columns), tt.constraint, tt.description)
	}
	_, err := db.Pool().Exec(ctx, `INSERT INTO rollups_hourly (hour, owner_id, ad_key, advertiser_id, requested, filled)
		VALUES (now(), gen_random_uuid(), '', '', 1, 2)`)
	require.ErrorContains(t, err, "rollups_hourly_counts_check")
}

// rollup.Bucket, which the memory store uses, agrees with PostgreSQL's
// date_trunc, which this store uses, in zones with odd offsets and with
// transitions at midnight, for a year of moments.
func TestBucketsMatchPostgreSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.New(t)
	var moments []time.Time
	for m := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); m.Year() == 2026; m = m.Add(97 * time.Minute) {
		moments = append(moments, m)
	}
	for _, zone := range []string{"UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu",
		"Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns", "America/Havana", "America/Santiago",
		"America/Asuncion", "Asia/Beirut", "Africa/Cairo"} {
		loc, err := time.LoadLocation(zone)
		require.NoError(t, err)
		for _, g := range []analytics.Granularity{analytics.Hour, analytics.Day, analytics.Week, analytics.Month} {
			sqlZone := zone
			if g == analytics.Hour {
				sqlZone = "UTC"
			}
			rows, err := db.Pool().Query(ctx, fmt.Sprintf(`SELECT date_trunc('%s', m, $2) FROM unnest($1::timestamptz[]) AS m`, g), moments, sqlZone)
			require.NoError(t, err)
			want, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
			require.NoError(t, err)
			for i, m := range moments {
				got := rollup.Bucket(m, g, loc)
				require.True(t, want[i].Equal(got), "%s %s of %v: PostgreSQL %v, Go %v", zone, g, m, want[i].UTC(), got)
				if i > 0 && !rollup.Bucket(moments[i-1], g, loc).Equal(got) {
					require.True(t, rollup.Next(rollup.Bucket(moments[i-1], g, loc), g, loc).Compare(got) <= 0, "Next never skips a bucket")
				}
			}
		}
	}
}

func TestStartMaintainsThePartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgrestest.URL(t), &postgres.Config{EventRetention: 20 * 24 * time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Stop(context.Background())) })
	_, err = db.Migrate(ctx)
	require.NoError(t, err)
	// A month on: the migration's days (two before today to seven after)
	// are past the retention, and the week ahead has no partition yet.
	today := time.Now().UTC().Truncate(24 * time.Hour)
	later := today.Add(30 * 24 * time.Hour)
	db.Now = func() time.Time { return later.Add(time.Hour) }

	require.NoError(t, db.Start(ctx))
	days, err := db.EventPartitions(ctx)
	require.NoError(t, err)
	var want []time.Time
	for d := later.Add(-24 * time.Hour); !d.After(later.Add(7 * 24 * time.Hour)); d = d.Add(24 * time.Hour) {
		want = append(want, d)
	}
	require.Equal(t, want, days, "the week ahead is made and what is past the retention dropped, before Start returns")
	require.NoError(t, db.Start(ctx), "a second Start is a no-op")
	require.NoError(t, db.Stop(ctx))
	require.Error(t, db.Ping(ctx), "Stop closed the pool")
	require.NoError(t, db.Stop(ctx), "a second Stop is a no-op")
}
