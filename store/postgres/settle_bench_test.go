package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// Figures, on 2 cores shared with other test runs (load average 9 to 20),
// PostgreSQL 15 on loopback, -benchtime=1x, a pool of 32 (seeding, not
// timed, takes 30 to 90 s):
//
//	version                                            settle    read pages  ratio  owners/s
//	DailySpend capped at 500 owners a page             (settled 500 owners and stopped: fixed)
//	DailySpend hash-joining the whole table, 8 workers    ~530 s  ~60 s         ~9     ~190  (stopped; from its rate)
//	DailySpend by index, 64 workers, batches of 128      323.6 s   28.7 s      11.3     309
//	the same, batches of 64, another flusher at 4        237.8 s   24.3 s       9.8     420
//	256 workers, batches of 256 (the machine less busy)  147.5 s   11.7 s      12.6     678
//	two phases (owners, then advertisers), 256 workers    25.0 s    7.8 s       3.2    4001
//	the same with 32 workers (DefaultSettleWorkers)       39.2 s    7.3 s       5.4    2550
//
// Before the two phases, each owner's settlement read its advertisers'
// budgets and debited them, so the postings of one batch waited for the
// previous batch's locks on the same budget rows, and the batches committed
// one after another. Now an owner's posting depends on the rollups alone
// and touches only the owner's account and the platform's (spread over
// slots), and each of the 1,000 budgets is charged once at the end: the
// 60 s target is met.

// Scale of BenchmarkSettleADay.
const (
	settleOwners      = 100_000
	settleAdvertisers = 1_000
	settleRowsPer     = 8 // rollup rows per owner: 8 hours, 8 advertisers, 100 impressions
	settleCPMMicros   = 2_000_000
	settleWorkers     = 256
)

// flatTier gives every owner the same tier.
type flatTier struct{}

func (flatTier) TierAt(context.Context, uuid.UUID, time.Time) (auth.Tier, error) {
	return auth.Tier{Name: "standard", RevenueShareBP: 6500}, nil
}

// BenchmarkSettleADay settles one day of 10 million valid impressions in
// 100,000 owners' spaces, bought by 1,000 funded advertisers (each owner
// shows 8 of them), through billing.Service.Settle: 100,000 settlement
// postings of 10 entries each, read from the rollups. The rollups are
// seeded directly (generate_series), as the analytics ingest would have
// left them. The baseline, measured in the same run, is reading the day's
// DailySpend pages alone (what Settle reads): ratio_vs_read is the
// settlement's time over that. Run it with -benchtime=1x.
func BenchmarkSettleADay(b *testing.B) {
	ctx := context.Background()
	db := postgrestest.NewWithConfig(b, &postgres.Config{MaxConns: 32})
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	seedStart := time.Now()
	if _, err := db.Pool().Exec(ctx, `
		INSERT INTO rollups_hourly (hour, owner_id, ad_key, advertiser_id, impressions, valid_impressions,
			billable_impressions, spend_micros, owner_earnings_micros)
		SELECT $1::timestamptz + ((o + k) % 24) * interval '1 hour', md5('owner:' || o)::uuid,
			'local:ad-' || ((o * 8 + k) % $2), md5('adv:' || ((o * 8 + k) % $2))::uuid::text,
			n, n, n, n * $3 / 1000, n * $3 / 1000 * 65 / 100
		FROM generate_series(0, $4 - 1) o, generate_series(0, $5 - 1) k,
			LATERAL (SELECT CASE WHEN k % 2 = 0 THEN 12 ELSE 13 END AS n) x`,
		day, settleAdvertisers, int64(settleCPMMicros), settleOwners, settleRowsPer); err != nil {
		b.Fatal(err)
	}
	var impressions int64
	if err := db.Pool().QueryRow(ctx, `SELECT sum(valid_impressions) FROM rollups_hourly`).Scan(&impressions); err != nil {
		b.Fatal(err)
	}
	if impressions != 10_000_000 {
		b.Fatalf("seeded %d impressions, want 10 million", impressions)
	}
	var advs []uuid.UUID
	rows, err := db.Pool().Query(ctx, `SELECT md5('adv:' || a)::uuid FROM generate_series(0, $1 - 1) a`, settleAdvertisers)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		advs = append(advs, id)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	for _, adv := range advs { // $1,000 each: more than any spends
		if _, _, err := db.Post(ctx, billing.Transaction{Key: "topup:" + adv.String(), Kind: billing.TxTopUp, EffectiveAt: day,
			Entries: []billing.Entry{
				{Account: billing.PlatformAccount(billing.PlatformCash, billing.USD), Side: billing.Debit, Amount: 1000 * billing.MicrosPerUnit},
				{Account: billing.UserAccount(billing.Budget, adv, billing.USD), Side: billing.Credit, Amount: 1000 * billing.MicrosPerUnit},
			}}); err != nil {
			b.Fatal(err)
		}
	}
	// As autovacuum will have left the day's rollups by settlement time.
	if _, err := db.Pool().Exec(ctx, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d impressions in %d rollup rows and %d budgets in %v", impressions, settleOwners*settleRowsPer, len(advs), time.Since(seedStart))

	now := func() time.Time { return day.Add(27 * time.Hour) }
	authz, err := auth.NewAuthorizer(nil, db, nil, now)
	if err != nil {
		b.Fatal(err)
	}
	q, err := jobs.NewLocal(nil) // never started: Settle is called here
	if err != nil {
		b.Fatal(err)
	}
	// More workers than the default 8: each waits mostly on its posting's
	// commit, which the store shares among the postings waiting at once
	// (up to postBatchMax).
	svc, err := billing.NewService(billing.Config{Store: db, Jobs: q, Auth: authz, Tiers: flatTier{}, Audit: db, Now: now,
		SettleWorkers: settleWorkers})
	if err != nil {
		b.Fatal(err)
	}

	readStart := time.Now()
	owners := 0
	for after := uuid.Nil; ; {
		page, err := db.DailySpend(ctx, day, after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		owners += len(page)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Owner
	}
	read := time.Since(readStart)
	if owners != settleOwners {
		b.Fatalf("DailySpend read %d owners, want %d", owners, settleOwners)
	}

	b.ResetTimer()
	for range b.N {
		if err := svc.Settle(ctx, day); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	settle := b.Elapsed() / time.Duration(b.N)

	var settled int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM ledger_transactions WHERE kind = 'settlement'`).Scan(&settled); err != nil {
		b.Fatal(err)
	}
	if settled != settleOwners+settleAdvertisers { // each owner's, then each advertiser's charge
		b.Fatalf("%d settlement postings, want %d", settled, settleOwners+settleAdvertisers)
	}
	totals, err := db.Totals(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if dc := totals[billing.USD]; dc.Debits != dc.Credits {
		b.Fatalf("the ledger does not balance: %+v", dc)
	}
	b.ReportMetric(settle.Seconds(), "settle_s")
	b.ReportMetric(read.Seconds(), "read_pages_s")
	b.ReportMetric(settle.Seconds()/read.Seconds(), "ratio_vs_read")
	b.ReportMetric(float64(settleOwners)/settle.Seconds(), "owners/s")
}
