package cache

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adshare/adshare/internal/promreg"
)

// metrics are the decorator's Prometheus collectors. With no registry they
// are still created but never exported. No label ever carries a key, a user
// key or a placement ID: labels are outcomes and reasons from fixed sets.
type metrics struct {
	lookups    *prometheus.CounterVec
	hit        prometheus.Counter
	miss       prometheus.Counter
	negative   prometheus.Counter
	stale      prometheus.Counter
	noFill     prometheus.Counter
	upCalls    *prometheus.CounterVec
	upSeconds  *prometheus.HistogramVec
	evicted    *prometheus.CounterVec
	sharedErrs *prometheus.CounterVec

	evictedExpired, evictedPoolFull, evictedKey, evictedDropped prometheus.Counter
}

// Eviction reasons (label values of adshare_decision_cache_evicted_ads_total).
const (
	reasonExpired  = "expired"   // the ad's TTL ran out before anyone asked
	reasonPoolFull = "pool_full" // more than MaxAdsPerKey ads under one key
	reasonKey      = "key"       // the key itself was evicted (MaxKeys, least recently used)
	reasonDropped  = "dropped"   // unreadable, unstorable, or a refill whose fate in the shared tier is unknown (see doc.go)
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "adshare", "decision_cache"
	m := &metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "lookups_total",
			Help: "Placements looked up in the pools, by outcome: hit (served from a pool), miss (a refill was needed), negative_hit (a remembered no-fill).",
		}, []string{"outcome"}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "stale_served_total",
			Help: "Non-billable copies of a recent ad served because the upstream Decider failed.",
		}),
		noFill: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "flight_no_fill_total",
			Help: "Placements that waited on a refill and got fewer ads than asked because the refill ran out.",
		}),
		upCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "upstream_calls_total",
			Help: "Calls to the upstream Decider, by outcome (ok or error).",
		}, []string{"outcome"}),
		upSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "upstream_duration_seconds",
			Help:    "Time the upstream Decider took to answer, by outcome (ok or error).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"outcome"}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "evicted_ads_total",
			Help: "Pooled ads discarded without being handed out, by reason: expired, pool_full, key, dropped.",
		}, []string{"reason"}),
		// Named for Redis, the shared tier it was written for; kept so that
		// dashboards and alerts built on it go on working with any tier.
		sharedErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "redis_errors_total",
			Help: "Failed operations of the shared tier (Config.Shared, Redis typically; the decorator fell back to memory and upstream), by operation: pop, lock, store, poll.",
		}, []string{"op"}),
	}
	m.hit = m.lookups.WithLabelValues("hit")
	m.miss = m.lookups.WithLabelValues("miss")
	m.negative = m.lookups.WithLabelValues("negative_hit")
	m.evictedExpired = m.evicted.WithLabelValues(reasonExpired)
	m.evictedPoolFull = m.evicted.WithLabelValues(reasonPoolFull)
	m.evictedKey = m.evicted.WithLabelValues(reasonKey)
	m.evictedDropped = m.evicted.WithLabelValues(reasonDropped)
	if err := promreg.Register(reg, m.lookups, m.stale, m.noFill, m.upCalls, m.upSeconds, m.evicted, m.sharedErrs); err != nil {
		return nil, fmt.Errorf("decision/cache: register metrics: %w", err)
	}
	return m, nil
}
