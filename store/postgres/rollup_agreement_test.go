package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// PostgreSQL folds events into the rollups in SQL, the memory store in Go
// (rollup.Fold): random traffic written to both, in the same batches with
// retries and in-batch repeats among them, must give the same answers,
// the same reports in every grouping and the same ad totals.
func TestRollupsAgreeWithMemory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg, mem := postgrestest.New(t), memory.New()
	seed := uint64(time.Now().UnixNano())
	rnd := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)

	owners := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	ads := []struct{ source, id, advertiser string }{
		{"local", "l1", "adv-a"}, {"local", "l2", "adv-b"}, {"local", "l3", "adv-a"}, {"kevel", "k1", "77"}, {"kevel", "k2", "78"},
	}
	midnight := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	event := func() analytics.Event {
		ad := ads[rnd.IntN(len(ads))]
		// Two hours either side of midnight, so batches span two days.
		at := midnight.Add(time.Duration(rnd.IntN(4*3600*1000)-2*3600*1000) * time.Millisecond).Add(time.Duration(rnd.IntN(1000)) * time.Microsecond)
		e := analytics.Event{
			TrackingID: uuid.Must(uuid.NewV7()), Type: []analytics.EventType{analytics.Impression, analytics.Impression, analytics.Click, analytics.Conversion}[rnd.IntN(4)],
			Ad: tracking.Ad{Owner: owners[rnd.IntN(len(owners))], Source: ad.source, AdID: ad.id, AdvertiserID: ad.advertiser,
				Placement: "main", PriceModel: "cpm", PriceMicros: 2_000_000, Billable: rnd.IntN(5) > 0, IssuedAt: at.Add(-time.Second)},
			OccurredAt: at, ReceivedAt: at.Add(time.Second), Valid: rnd.IntN(6) > 0,
		}
		if e.Type == analytics.Conversion {
			e.Name, e.ValueMicros = []string{"signup", "purchase"}[rnd.IntN(2)], int64(rnd.IntN(5000))
		}
		if !e.Valid {
			e.Rule = []string{"burst", "bot_user_agent", "self_view"}[rnd.IntN(3)]
		}
		// Stray figures on events that must not bill are stored, not counted.
		e.SpendMicros = int64(rnd.IntN(3000))
		e.OwnerShareBP = 7000
		e.OwnerEarningsMicros = e.SpendMicros * 7 / 10
		return e
	}

	var sent []analytics.Event
	for range 40 {
		batch := make([]analytics.Event, 1+rnd.IntN(60))
		for i := range batch {
			switch r := rnd.IntN(10); {
			case r == 0 && len(sent) > 0: // a retry
				batch[i] = sent[rnd.IntN(len(sent))]
			case r == 1 && i > 0: // a repeat within the batch
				batch[i] = batch[rnd.IntN(i)]
			default:
				batch[i] = event()
			}
		}
		sent = append(sent, batch...)
		want, err := mem.WriteEvents(ctx, batch)
		require.NoError(t, err)
		got, err := pg.WriteEvents(ctx, batch)
		require.NoError(t, err)
		require.Equal(t, want, got, "which events were new")
	}

	from, to := midnight.Add(-24*time.Hour), midnight.Add(24*time.Hour)
	for _, q := range []analytics.Query{
		{Granularity: analytics.Hour, From: from, To: to},
		{Granularity: analytics.Hour, From: from, To: to, GroupBy: []analytics.Dimension{analytics.ByOwner, analytics.ByAd, analytics.ByAdvertiser}},
		{Granularity: analytics.Day, From: from, To: to, GroupBy: []analytics.Dimension{analytics.ByAd}},
		{Granularity: analytics.Day, From: from, To: to, Owner: owners[0], GroupBy: []analytics.Dimension{analytics.ByAdvertiser}},
	} {
		want, err := mem.Report(ctx, q)
		require.NoError(t, err)
		got, err := pg.Report(ctx, q)
		require.NoError(t, err)
		require.NotEmpty(t, want)
		require.Equal(t, want, got, fmt.Sprintf("%s by %v", q.Granularity, q.GroupBy))
	}
	for _, day := range []time.Time{midnight.Add(-time.Hour), midnight, midnight.Add(48 * time.Hour)} {
		want, err := mem.AdStats(ctx, []string{"l1", "l2", "l3", "k1"}, day)
		require.NoError(t, err)
		got, err := pg.AdStats(ctx, []string{"l1", "l2", "l3", "k1"}, day)
		require.NoError(t, err)
		require.Equal(t, want, got, "ad totals on %s", day)
	}
}
