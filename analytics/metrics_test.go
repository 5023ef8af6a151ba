package analytics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/internal/testenv"
)

func TestMetricsCountIngestAndReadBusinessFiguresFromRollups(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	b := setup(t, func(c *analytics.Config) { c.Metrics = reg })
	metric := func(name string, labels ...string) float64 {
		t.Helper()
		return testenv.Metric(t, reg, name, labels...)
	}
	require.Zero(t, metric("adshare_business_impressions_today"))
	require.Equal(t, 1.0, metric("adshare_business_rollups_read_ok"))

	good, _ := b.served(t)
	bot, _ := b.served(t)
	res, err := b.svc.Ingest(app, []analytics.Report{
		{Type: analytics.Impression, Token: good},
		{Type: analytics.Impression, Token: good}, // the same event twice in one batch
		{Type: analytics.Impression, Token: "forged"},
		{Type: "view", Token: good},
	})
	require.NoError(t, err)
	require.Len(t, res, 4)
	b.one(t, app, analytics.Report{Type: analytics.Impression, Token: good}) // a retry
	b.one(t, client("203.0.113.7", "Googlebot/2.1"), analytics.Report{Type: analytics.Impression, Token: bot})

	require.Equal(t, 1.0, metric("adshare_ingest_events_total", "type", "impression", "result", "valid"))
	require.Equal(t, 2.0, metric("adshare_ingest_events_total", "type", "impression", "result", "duplicate"))
	require.Equal(t, 1.0, metric("adshare_ingest_events_total", "type", "impression", "result", "rejected"))
	require.Equal(t, 1.0, metric("adshare_ingest_events_total", "type", "unknown", "result", "rejected"),
		"a type nobody defined is one bounded label, not the attacker's string")
	require.Equal(t, 1.0, metric("adshare_ingest_events_total", "type", "impression", "result", "invalid"))
	require.Equal(t, 1.0, metric("adshare_ingest_invalid_events_total", "rule", analytics.RuleBotUserAgent))
	require.Equal(t, 3.0, metric("adshare_ingest_commit_duration_seconds"), "three group commits")
	require.Equal(t, 3.0, metric("adshare_ingest_batch_events"))

	// The business gauges are read from the rollups at most once per
	// BusinessEvery (a minute here): the figures of the first scrape
	// until then.
	require.Zero(t, metric("adshare_business_impressions_today"), "kept from the last read")
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems, "names, units and help follow Prometheus' conventions")
}

func TestBusinessGaugesAreTodaysRollups(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	b := setup(t, func(c *analytics.Config) { c.Metrics = reg; c.BusinessEvery = time.Nanosecond })
	for range 3 {
		tok, _ := b.served(t)
		b.one(t, app, analytics.Report{Type: analytics.Impression, Token: tok})
	}
	require.Equal(t, 3.0, testenv.Metric(t, reg, "adshare_business_impressions_today"))
	require.Equal(t, 7_500.0, testenv.Metric(t, reg, "adshare_business_spend_micros_today"))
	require.Equal(t, 4_500.0, testenv.Metric(t, reg, "adshare_business_owner_earnings_micros_today"))
	require.Equal(t, 1.0, testenv.Metric(t, reg, "adshare_business_rollups_read_ok"))
}
