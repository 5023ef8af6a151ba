package analytics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adshare/adshare/internal/promreg"
)

// DefaultBusinessEvery is how long the business gauges keep a figure
// before a scrape reads the rollups again.
const DefaultBusinessEvery = time.Minute

// metrics are the Service's collectors. Without a registry they are still
// made (the code needs no nil checks) but never exported.
type metrics struct {
	batchEvents    prometheus.Histogram
	commitDuration prometheus.Histogram
	commitErrors   prometheus.Counter
	events         *prometheus.CounterVec
	invalid        *prometheus.CounterVec
	reportDuration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, s *Service) (*metrics, error) {
	m := &metrics{
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "adshare", Subsystem: "ingest", Name: "batch_events",
			Help:    "Events per group commit (the requests of one commit share a store write).",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000},
		}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "adshare", Subsystem: "ingest", Name: "commit_duration_seconds",
			Help:    "Time of one group commit's store write (every event of it is durable after).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "ingest", Name: "commit_errors_total",
			Help: "Group commits the store failed (their requests were answered with an error; nothing was acknowledged).",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "ingest", Name: "events_total",
			Help: "Reported events by type and result: valid, invalid (flagged by a rule, stored, never billed), duplicate (stored before), rejected (not stored).",
		}, []string{"type", "result"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "ingest", Name: "invalid_events_total",
			Help: "New events flagged as invalid traffic, by the rule that caught them.",
		}, []string{"rule"}),
		reportDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "adshare", Subsystem: "analytics", Name: "report_duration_seconds",
			Help:    "Time to answer a report from the rollups, by report: performance, revenue, users.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"report"}),
	}
	for _, t := range []EventType{Impression, Click, Conversion} {
		for _, r := range []string{"valid", "invalid", "duplicate", "rejected"} {
			m.events.WithLabelValues(string(t), r)
		}
	}
	for _, r := range []string{"performance", "revenue", "users"} {
		m.reportDuration.WithLabelValues(r)
	}
	if err := promreg.Register(reg, m.batchEvents, m.commitDuration, m.commitErrors, m.events, m.invalid, m.reportDuration,
		&business{s: s, every: s.cfg.BusinessEvery}); err != nil {
		return nil, fmt.Errorf("analytics: register metrics (one Service per registry): %w", err)
	}
	return m, nil
}

// committed counts a group commit's events: fresh ones by their verdict,
// the others as duplicates.
func (m *metrics) committed(events []Event, isNew []bool, took time.Duration) {
	m.batchEvents.Observe(float64(len(events)))
	m.commitDuration.Observe(took.Seconds())
	for i, e := range events {
		switch {
		case !isNew[i]:
			m.events.WithLabelValues(string(e.Type), "duplicate").Inc()
		case e.Valid:
			m.events.WithLabelValues(string(e.Type), "valid").Inc()
		default:
			m.events.WithLabelValues(string(e.Type), "invalid").Inc()
			m.invalid.WithLabelValues(e.Rule).Inc()
		}
	}
}

// rejected counts reports refused before the store.
func (m *metrics) rejected(t EventType) {
	if t != Impression && t != Click && t != Conversion {
		t = "unknown"
	}
	m.events.WithLabelValues(string(t), "rejected").Inc()
}

// timeReport observes a report's time since start.
func (m *metrics) timeReport(report string, start time.Time) {
	m.reportDuration.WithLabelValues(report).Observe(time.Since(start).Seconds())
}

// business exports today's figures (UTC) for the whole platform, read from
// the hourly rollups (never the raw events), at most once per every; a
// scrape between two reads gets the figures kept from the last one.
type business struct {
	s     *Service
	every time.Duration

	mu      sync.Mutex
	read    time.Time
	figures Counts
	err     error
}

var (
	businessImpressions = prometheus.NewDesc("adshare_business_impressions_today",
		"Billable impressions since 00:00 UTC, all spaces, from the hourly rollups.", nil, nil)
	businessClicks = prometheus.NewDesc("adshare_business_clicks_today",
		"Billable clicks since 00:00 UTC, all spaces, from the hourly rollups.", nil, nil)
	businessSpend = prometheus.NewDesc("adshare_business_spend_micros_today",
		"Advertisers' spend since 00:00 UTC, in micros of the currency, from the hourly rollups.", nil, nil)
	businessEarnings = prometheus.NewDesc("adshare_business_owner_earnings_micros_today",
		"Owners' estimated earnings since 00:00 UTC, in micros, from the hourly rollups.", nil, nil)
	businessFillRate = prometheus.NewDesc("adshare_business_fill_ratio_today",
		"Ads filled over ads requested since 00:00 UTC (0 before the first request).", nil, nil)
	businessUp = prometheus.NewDesc("adshare_business_rollups_read_ok",
		"1 when the last read of the rollups for the business figures succeeded, else 0.", nil, nil)
)

// Describe implements prometheus.Collector.
func (b *business) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{businessImpressions, businessClicks, businessSpend, businessEarnings, businessFillRate, businessUp} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (b *business) Collect(ch chan<- prometheus.Metric) {
	c, err := b.current()
	up := 1.0
	if err != nil {
		up = 0
	}
	fill := 0.0
	if c.Requested > 0 {
		fill = float64(c.Filled) / float64(c.Requested)
	}
	for _, g := range []struct {
		d *prometheus.Desc
		v float64
	}{
		{businessImpressions, float64(c.BillableImpressions)}, {businessClicks, float64(c.BillableClicks)},
		{businessSpend, float64(c.SpendMicros)}, {businessEarnings, float64(c.OwnerEarningsMicros)},
		{businessFillRate, fill}, {businessUp, up},
	} {
		ch <- prometheus.MustNewConstMetric(g.d, prometheus.GaugeValue, g.v)
	}
}

// current returns today's figures, read again when older than every (or
// when the UTC day changed since).
func (b *business) current() (Counts, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.s.now().UTC()
	day := now.Truncate(24 * time.Hour)
	if !b.read.IsZero() && now.Sub(b.read) < b.every && !b.read.Before(day) {
		return b.figures, b.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := b.s.cfg.Store.Report(ctx, Query{Granularity: Day, From: day, To: day.Add(24 * time.Hour), Location: time.UTC})
	b.read, b.err = now, err
	if err == nil {
		b.figures = sum(rows).Counts
	}
	return b.figures, b.err
}
