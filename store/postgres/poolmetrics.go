package postgres

import (
	"github.com/prometheus/client_golang/prometheus"
)

// PoolCollector reports the connection pool's state as Prometheus
// metrics, read from the pool at each scrape (nothing is counted on the
// request path): connections by state, the pool's maximum, and the
// acquisitions that had to wait for a connection, and for how long in
// all. A soak test watches them stay steady; a growing wait says the
// pool is too small for the load.
func (db *DB) PoolCollector() prometheus.Collector { return poolCollector{db} }

type poolCollector struct{ db *DB }

var (
	poolConnsDesc = prometheus.NewDesc("adshare_db_pool_connections", "Connections of the PostgreSQL pool by state (acquired, idle, constructing).",
		[]string{"state"}, nil)
	poolMaxDesc      = prometheus.NewDesc("adshare_db_pool_max_connections", "Most connections the PostgreSQL pool opens.", nil, nil)
	poolAcquireDesc  = prometheus.NewDesc("adshare_db_pool_acquires_total", "Connections acquired from the PostgreSQL pool.", nil, nil)
	poolWaitsDesc    = prometheus.NewDesc("adshare_db_pool_waits_total", "Acquisitions that waited for a connection.", nil, nil)
	poolWaitTimeDesc = prometheus.NewDesc("adshare_db_pool_wait_seconds_total", "Time acquisitions spent waiting for a connection.", nil, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConnsDesc, poolMaxDesc, poolAcquireDesc, poolWaitsDesc, poolWaitTimeDesc} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.db.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(poolMaxDesc, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquireDesc, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaitsDesc, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaitTimeDesc, prometheus.CounterValue, s.AcquireDuration().Seconds())
}
