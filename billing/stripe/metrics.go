package stripe

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adshare/adshare/internal/promreg"
)

// Outcomes of a call (the outcome label).
const (
	outcomeOK        = "ok"
	outcomeDefinite  = "definite"  // Stripe refused: nothing was done
	outcomeAmbiguous = "ambiguous" // Stripe may have acted
)

// metrics are the Client's collectors. Without a registry they are still
// created (so the code needs no nil checks) but never exported.
type metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "stripe", Name: "calls_total",
			Help: "Calls to Stripe by operation and outcome: ok, definite (refused, nothing done), ambiguous (may have acted).",
		}, []string{"op", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "adshare", Subsystem: "stripe", Name: "call_duration_seconds",
			Help:    "Time of calls to Stripe, stripe-go's retries and every page of a listing included, by operation.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 120},
		}, []string{"op"}),
	}
	if err := promreg.Register(reg, m.calls, m.duration); err != nil {
		return nil, fmt.Errorf("stripe: register metrics (one Client per registry; wrap it with prometheus.WrapRegistererWith to run several): %w", err)
	}
	return m, nil
}

func (m *metrics) observe(op, outcome string, d time.Duration) {
	m.calls.WithLabelValues(op, outcome).Inc()
	m.duration.WithLabelValues(op).Observe(d.Seconds())
}
