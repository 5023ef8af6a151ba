package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// Figures, on 2 cores shared with other test runs (load average 9 to 20)
// and PostgreSQL 15 on loopback, -benchtime=20000x, 16 posters on a pool
// of 16; the rates move with the machine's load, the ratios less:
//
//	version                                   tx/s   select1/s  insert/s  vs select1  vs insert
//	one statement a posting, no batching       798      19,430     3,754       0.041       0.21
//	batched, one statement a batch           1,639      13,659     3,901       0.120       0.42
//	  the same, another flusher at 4 waiting 1,806      15,389     4,445       0.117       0.41
//	  later runs of that (heavier load)      1,039      14,600     2,743       0.071       0.38
//
// A commit waits for a WAL flush, so postings one by one cannot pass the
// trivial insert's rate (the disk's); batched, they share commits, and
// what bounds them is CPU: about 8 SELECT 1 round trips' worth a posting
// on this machine. Then, on a quiet machine (load below 1), batched:
//
//	posters, pool          postings   tx/s   select1/s  insert/s  vs select1  vs insert
//	16 on a pool of 16       20,000   3,146     21,908     6,205       0.14       0.51
//	64 on a pool of 64       40,000   4,432     22,825     7,076       0.19       0.63
//	256 on a pool of 32      60,000   7,379     22,585     8,936       0.33       0.83
//	256 on a pool of 32     150,000   6,756     25,234     6,145       0.27       1.10  (kept)
//
// A fleet posts from many requests and jobs at once; with 256 posters the
// batches grow, and 5,000 tx/s holds over 150,000 postings.

// benchPosters is how many goroutines post at once; the pool has at most
// 32 connections (the batches' flushers need few of them).
const benchPosters = 256

// BenchmarkPost posts settlements (an advertiser's budget debited, an
// owner's held account and platform:revenue credited: three accounts, one
// of them shared by every posting) from benchPosters goroutines, against
// 1,000 funded budgets. Before it, the same pool runs as many trivial
// statements with the same parallelism, `SELECT 1` and a one-row insert
// into a table without indexes, so the figures come as ratios measured in
// the same run: tx/s over select1/s and over insert/s.
func BenchmarkPost(b *testing.B) {
	ctx := context.Background()
	db := postgrestest.NewWithConfig(b, &postgres.Config{MaxConns: min(benchPosters, 32)})
	const advertisers = 1000
	advs := make([]uuid.UUID, advertisers)
	for i := range advs {
		advs[i] = uuid.New()
		_, _, err := db.Post(ctx, billing.Transaction{Key: "fund:" + advs[i].String(), Kind: billing.TxTopUp,
			EffectiveAt: time.Now(), Entries: []billing.Entry{
				{Account: billing.PlatformAccount(billing.PlatformCash, billing.USD), Side: billing.Debit, Amount: 1 << 50},
				{Account: billing.UserAccount(billing.Budget, advs[i], billing.USD), Side: billing.Credit, Amount: 1 << 50},
			}})
		if err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.Pool().Exec(ctx, `CREATE TABLE bench_trivial (n bigint)`); err != nil {
		b.Fatal(err)
	}
	n := max(b.N, 1000)
	selects := parallelRate(b, n, func() error {
		_, err := db.Pool().Exec(ctx, `SELECT 1`)
		return err
	})
	inserts := parallelRate(b, n, func() error {
		_, err := db.Pool().Exec(ctx, `INSERT INTO bench_trivial VALUES (1)`)
		return err
	})

	var next atomic.Int64
	b.ResetTimer()
	posts := parallelRate(b, b.N, func() error {
		i := next.Add(1)
		adv := advs[i%advertisers]
		_, posted, err := db.Post(ctx, billing.Transaction{Key: fmt.Sprint("settle:", i), Kind: billing.TxSettlement,
			EffectiveAt: time.Now(), Entries: []billing.Entry{
				{Account: billing.UserAccount(billing.Budget, adv, billing.USD), Side: billing.Debit, Amount: 1000},
				{Account: billing.UserAccount(billing.Held, uuid.New(), billing.USD), Side: billing.Credit, Amount: 650},
				{Account: billing.PlatformAccount(billing.PlatformRevenue, billing.USD), Side: billing.Credit, Amount: 350},
			}})
		if err == nil && !posted {
			err = fmt.Errorf("settle:%d was not posted", i)
		}
		return err
	})
	b.StopTimer()
	b.ReportMetric(posts, "tx/s")
	b.ReportMetric(selects, "select1/s")
	b.ReportMetric(inserts, "insert/s")
	b.ReportMetric(posts/selects, "ratio_vs_select1")
	b.ReportMetric(posts/inserts, "ratio_vs_insert")
}

// parallelRate runs fn n times from benchPosters goroutines and returns
// the calls per second; an error fails b.
func parallelRate(b *testing.B, n int, fn func() error) float64 {
	b.Helper()
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	start := time.Now()
	for range benchPosters {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := fn(); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	return float64(n) / elapsed.Seconds()
}
