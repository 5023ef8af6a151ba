package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// Two instances on one database, each with its own River queue, sweeping
// at the same moments: each day's settlement and release runs once in
// all, and the owner is credited once.
func TestTwoInstancesSettleEachDayOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := postgrestest.URL(t)
	var (
		bundles [2]*bundle
		regs    [2]*prometheus.Registry
		queues  [2]*postgres.Jobs
	)
	for i := range bundles {
		db, err := postgres.Open(ctx, url, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Stop(context.Background()) })
		_, err = db.Migrate(ctx)
		require.NoError(t, err)
		queues[i], err = db.Jobs(&postgres.JobsConfig{PollInterval: 100 * time.Millisecond})
		require.NoError(t, err)
		regs[i] = prometheus.NewRegistry()
		bundles[i] = setupOn(t, db, true, func(c *billing.Config) {
			c.Jobs, c.Metrics, c.SweepInterval = queues[i], regs[i], time.Hour
		})
	}
	owner := uuid.Must(uuid.NewV7())
	bundles[0].serve(t, owner, "kevel-adv-1", "kevel", 5_000, 2_000_000, 6500)
	for _, q := range queues {
		require.NoError(t, q.Start(ctx))
		t.Cleanup(func() { _ = q.Stop(context.Background()) })
	}

	var g errgroup.Group
	for _, b := range bundles {
		for range 5 {
			g.Go(func() error { return b.svc.SweepJob(ctx) })
		}
	}
	require.NoError(t, g.Wait())

	runs := func(kind string) float64 {
		var n float64
		for _, reg := range regs {
			n += testenv.Metric(t, reg, "adshare_billing_jobs_total", "kind", kind, "outcome", "ok")
		}
		return n
	}
	const days = 7 // each sweep looks at the last seven days
	require.Eventually(t, func() bool { return runs("billing.settle") >= days && runs("billing.release") >= days },
		time.Minute, 50*time.Millisecond)
	time.Sleep(time.Second) // a second run, if any, would have happened by now
	require.Equal(t, float64(days), runs("billing.settle"), "each day's settlement ran once across the instances")
	require.Equal(t, float64(days), runs("billing.release"), "each day's release ran once across the instances")

	var postings float64
	for _, reg := range regs {
		postings += testenv.Metric(t, reg, "adshare_billing_ledger_postings_total", "kind", string(billing.TxSettlement))
	}
	require.Equal(t, 1.0, postings, "one owner, one day with traffic: one settlement posting")
	bal := bundles[1].balances(t, owner)
	require.Equal(t, int64(5_000*2_000*6500/10_000), bal.Held, "the owner's share, credited once")
	bundles[1].requireBalanced(t)
}
