package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/internal/promreg"
)

// metrics are the Service's collectors. Without a registry they are still
// made (so the code needs no nil checks) but never exported.
type metrics struct {
	postings     *prometheus.CounterVec
	payouts      *prometheus.CounterVec
	topUps       *prometheus.CounterVec
	events       *prometheus.CounterVec
	jobs         *prometheus.CounterVec
	jobDuration  *prometheus.HistogramVec
	backlog      prometheus.Gauge
	backlogAge   prometheus.Gauge
	differences  prometheus.Gauge
	reconciledAt prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		postings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "billing", Name: "ledger_postings_total",
			Help: "Ledger transactions posted by billing, by kind (a replay of an idempotency key is not counted).",
		}, []string{"kind"}),
		payouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "billing", Name: "payouts_total",
			Help: "Payouts by the state they reached: requested (reserved), paid, voided.",
		}, []string{"state"}),
		topUps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "billing", Name: "topups_total",
			Help: "Top-ups by the state they reached: started, succeeded (credited), failed.",
		}, []string{"state"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "billing", Name: "webhook_events_total",
			Help: "Processor events by what became of them: stored, duplicate, refused (bad signature or version), store_failed; applied, parked (waiting for an earlier one), failed.",
		}, []string{"result"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "billing", Name: "jobs_total",
			Help: "Runs of billing's jobs by kind and outcome: ok, snoozed, error.",
		}, []string{"kind", "outcome"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "adshare", Subsystem: "billing", Name: "job_duration_seconds",
			Help:    "Time of billing's job runs (a day's settlement, a payout, an event...), by kind.",
			Buckets: []float64{.005, .025, .1, .5, 2, 10, 60, 300, 1800},
		}, []string{"kind"}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "adshare", Subsystem: "billing", Name: "webhook_backlog_events",
			Help: "Stored processor events not applied yet, as the last sweep found them (at most 500).",
		}),
		backlogAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "adshare", Subsystem: "billing", Name: "webhook_backlog_oldest_seconds",
			Help: "Age of the oldest processor event not applied yet, as the last sweep found it (0: none).",
		}),
		differences: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "adshare", Subsystem: "billing", Name: "reconciliation_differences",
			Help: "Differences between the ledger and the processor found by this instance's last reconciliation.",
		}),
		reconciledAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "adshare", Subsystem: "billing", Name: "reconciliation_last_run_timestamp_seconds",
			Help: "When this instance last reconciled the ledger with the processor (0: never).",
		}),
	}
	if err := promreg.Register(reg, m.postings, m.payouts, m.topUps, m.events, m.jobs, m.jobDuration,
		m.backlog, m.backlogAge, m.differences, m.reconciledAt); err != nil {
		return nil, fmt.Errorf("billing: register metrics (one Service per registry): %w", err)
	}
	return m, nil
}

// timed wraps a job's handler to count its runs and time them.
func (m *metrics) timed(kind string, h jobs.Handler) jobs.Handler {
	return func(ctx context.Context, args json.RawMessage) error {
		start := time.Now()
		err := h(ctx, args)
		m.jobDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
		outcome := "ok"
		if _, snoozed := jobs.SnoozedFor(err); snoozed {
			outcome = "snoozed"
		} else if err != nil {
			outcome = "error"
		}
		m.jobs.WithLabelValues(kind, outcome).Inc()
		return err
	}
}

// countingStore counts what billing posts to the ledger.
type countingStore struct {
	Store
	m *metrics
}

func (c countingStore) Post(ctx context.Context, t Transaction) (Transaction, bool, error) {
	stored, posted, err := c.Store.Post(ctx, t)
	if posted {
		c.m.postings.WithLabelValues(string(t.Kind)).Inc()
	}
	return stored, posted, err
}

func (c countingStore) Apply(ctx context.Context, w Write) error {
	err := c.Store.Apply(ctx, w)
	if err == nil {
		for _, t := range w.Post {
			c.m.postings.WithLabelValues(string(t.Kind)).Inc()
		}
	}
	return err
}

// eventResult is the result label of a received event.
func eventResult(isNew bool, err error) string {
	switch {
	case err == nil && isNew:
		return "stored"
	case err == nil:
		return "duplicate"
	case errors.Is(err, ErrWebhookSignature), errors.Is(err, ErrWebhookVersion), errors.Is(err, ErrInvalidEvent):
		return "refused"
	}
	return "store_failed"
}
