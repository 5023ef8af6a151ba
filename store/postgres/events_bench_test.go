package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/store/postgres/postgrestest"
	"github.com/adshare/adshare/store/storetest"
)

// benchBatch is the events of one write in the CopyFrom baseline and the
// large-batch WriteEvents benchmark.
const benchBatch = 1000

// benchEvents returns n events shaped like live traffic in the current
// hour: 100 owners, 20 ads (half local) of 10 advertisers, nine impressions
// to one click, one conversion in fifty, one event in twenty invalid.
func benchEvents(now time.Time, owners []uuid.UUID, n int) []analytics.Event {
	events := make([]analytics.Event, n)
	for i := range events {
		typ := analytics.Impression
		switch {
		case i%50 == 49:
			typ = analytics.Conversion
		case i%10 == 9:
			typ = analytics.Click
		}
		e := storetest.NewEvent(owners[i%len(owners)], typ, now.Add(-time.Duration(i)*time.Millisecond))
		ad := i % 20
		e.Ad.Source = []string{"kevel", "local"}[ad%2]
		e.Ad.AdID, e.Ad.AdvertiserID = fmt.Sprintf("ad-%d", ad), fmt.Sprintf("adv-%d", ad%10)
		e.UserAgent, e.ClientPrefix, e.Ad.ViewerKey = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)", "203.0.113.0/24", "vk"
		if typ == analytics.Conversion {
			e.Name, e.SpendMicros = "signup", 0
		}
		if i%20 == 7 {
			e.Valid, e.Rule, e.SpendMicros = false, "burst", 0
		}
		events[i] = e
	}
	return events
}

func benchOwners() []uuid.UUID {
	owners := make([]uuid.UUID, 100)
	for i := range owners {
		owners[i] = uuid.New()
	}
	return owners
}

func reportRows(b *testing.B, rows int) {
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCopyFromBaseline is the floor for ingest: a bare COPY of each
// batch into a plain table with the events table's columns and primary key,
// with no deduplication and no rollups.
func BenchmarkCopyFromBaseline(b *testing.B) {
	ctx := context.Background()
	db := postgrestest.New(b)
	if _, err := db.Pool().Exec(ctx, `CREATE TABLE events_copy_baseline (LIKE events INCLUDING DEFAULTS,
		PRIMARY KEY (issued_at, tracking_id, type, name))`); err != nil {
		b.Fatal(err)
	}
	columns := []string{"issued_at", "tracking_id", "type", "name", "owner_id", "viewer_id", "viewer_key", "placement",
		"source", "ad_id", "creative_id", "campaign_id", "advertiser_id", "price_model", "price_micros", "occurred_at",
		"received_at", "billable", "valid", "rule", "spend_micros", "owner_earnings_micros", "owner_share_bp",
		"value_micros", "client_prefix", "user_agent"}
	owners := benchOwners()
	rows := 0
	for b.Loop() {
		b.StopTimer()
		events := benchEvents(time.Now(), owners, benchBatch)
		b.StartTimer()
		n, err := db.Pool().CopyFrom(ctx, pgx.Identifier{"events_copy_baseline"}, columns,
			pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
				e := &events[i]
				// pgtype.UUID, not uuid.UUID, whose driver.Valuer goes through text.
				ad := &e.Ad
				viewer := pgtype.UUID{Bytes: ad.Viewer, Valid: ad.Viewer != uuid.Nil}
				return []any{ad.IssuedAt, pgtype.UUID{Bytes: e.TrackingID, Valid: true}, string(e.Type), e.Name,
					pgtype.UUID{Bytes: ad.Owner, Valid: true}, viewer, ad.ViewerKey, ad.Placement,
					ad.Source, ad.AdID, ad.CreativeID, ad.CampaignID, ad.AdvertiserID, ad.PriceModel, ad.PriceMicros, e.OccurredAt,
					e.ReceivedAt, ad.Billable, e.Valid, e.Rule, e.SpendMicros, e.OwnerEarningsMicros, int32(e.OwnerShareBP),
					e.ValueMicros, e.ClientPrefix, e.UserAgent}, nil
			}))
		if err != nil {
			b.Fatal(err)
		}
		rows += int(n)
	}
	reportRows(b, rows)
}

// BenchmarkWriteEvents is ingest through WriteEvents: deduplicating insert
// into the partitioned table and the rollup, invalid-traffic and ad-totals
// upserts, atomically, per batch. Batches of 32 are what group commit
// gathers from single-event requests under load; 1000, bulk ingest. The
// "retry" cases repeat one event of the previous batch in each: a batch
// with a retry in it costs what any other does.
func BenchmarkWriteEvents(b *testing.B) {
	for _, bc := range []struct {
		size  int
		retry bool
	}{{32, false}, {32, true}, {benchBatch, false}, {benchBatch, true}} {
		name := fmt.Sprintf("batch=%d", bc.size)
		if bc.retry {
			name += "/retry"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			db := postgrestest.New(b)
			owners := benchOwners()
			rows := 0
			var previous analytics.Event
			for b.Loop() {
				b.StopTimer()
				events := benchEvents(time.Now(), owners, bc.size)
				retried := bc.retry && rows > 0
				if retried {
					events[0] = previous
				}
				previous = events[len(events)-1]
				b.StartTimer()
				isNew, err := db.WriteEvents(ctx, events)
				if err != nil {
					b.Fatal(err)
				}
				for i, n := range isNew {
					if n == (retried && i == 0) {
						b.Fatalf("event %d: new = %v", i, n)
					}
				}
				rows += len(events)
			}
			reportRows(b, rows)
		})
	}
}
