package kevel

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a Decide call (the outcome label).
const (
	outcomeOK          = "ok"
	outcomeInvalid     = "invalid_request"
	outcomeTimeout     = "timeout"
	outcomeRateLimited = "rate_limited" // Kevel answered 429
	outcomeThrottled   = "throttled"    // refused locally: token bucket or Retry-After
	outcomeUnavailable = "unavailable"
	outcomeCircuitOpen = "circuit_open"
)

// clientMetrics are the Client's collectors. Without a registry they are
// still created (so the code needs no nil checks) but never exported.
type clientMetrics struct {
	decisions  *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	circuit    prometheus.Gauge
	placements *prometheus.CounterVec
	filled     *prometheus.CounterVec
	unknown    prometheus.Counter
	filtered   *prometheus.CounterVec
	retries    prometheus.Counter
	userdb     *prometheus.CounterVec
	labels     *labelSet
}

func newClientMetrics(reg prometheus.Registerer, maxLabels int) (*clientMetrics, error) {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "adshare", Subsystem: "kevel", Name: name, Help: help}
	}
	m := &clientMetrics{
		decisions: prometheus.NewCounterVec(opts("decisions_total",
			"Decide calls by outcome: ok, invalid_request, timeout, rate_limited, throttled, unavailable, circuit_open."), []string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "adshare", Subsystem: "kevel", Name: "decision_duration_seconds",
			Help:    "Time of Decide calls that reached the network, retries included, by outcome.",
			Buckets: []float64{.005, .01, .025, .05, .075, .1, .15, .2, .3, .5, .8, 1, 2},
		}, []string{"outcome"}),
		circuit: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "adshare", Subsystem: "kevel", Name: "circuit_state",
			Help: "State of the Decision API circuit breaker: 0 closed, 1 half-open, 2 open.",
		}),
		placements: prometheus.NewCounterVec(opts("placements_total",
			"Placements asked of Kevel in successful calls; with placements_filled_total, the fill rate."), []string{"placement"}),
		filled: prometheus.NewCounterVec(opts("placements_filled_total",
			"Placements that got at least one ad."), []string{"placement"}),
		unknown: prometheus.NewCounter(opts("unknown_placement_decisions_total",
			"Decisions for a divName the request did not have (ignored).")),
		filtered: prometheus.NewCounterVec(opts("ads_filtered_total",
			"Ads dropped after Kevel chose them, by reason: advertiser, category, creative (exclusions), over_count."), []string{"reason"}),
		retries: prometheus.NewCounter(opts("decision_retries_total",
			"Decision requests re-sent after a dial error.")),
		userdb: prometheus.NewCounterVec(opts("userdb_requests_total",
			"UserDB calls by operation and outcome."), []string{"op", "outcome"}),
		labels: newLabelSet(maxLabels),
	}
	return m, register(reg, m.decisions, m.duration, m.circuit, m.placements, m.filled, m.unknown, m.filtered, m.retries, m.userdb)
}

func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("kevel: register metrics (one client or firer per registry; wrap it with prometheus.WrapRegistererWith to run several): %w", err)
		}
	}
	return nil
}

// labelSet bounds a label's values: the first max distinct values are
// kept, later ones become "other", so that caller-chosen placement names
// cannot grow the metrics without bound.
type labelSet struct {
	max  int
	mu   sync.Mutex
	seen map[string]struct{}
}

func newLabelSet(max int) *labelSet { return &labelSet{max: max, seen: map[string]struct{}{}} }

func (l *labelSet) value(v string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[v]; ok {
		return v
	}
	if len(l.seen) >= l.max {
		return "other"
	}
	l.seen[v] = struct{}{}
	return v
}
