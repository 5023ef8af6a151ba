package transport

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adshare/adshare/internal/promreg"
)

// httpMetrics are the handler's Prometheus collectors. With no registry
// they are still created but never exported.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	ready    prometheus.Gauge
	checks   *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "adshare", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method, route pattern and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "adshare", Subsystem: "http", Name: "requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "adshare", Name: "ready",
			Help: "1 when the last GET /readyz found every dependency answering, 0 when it did not (a flapping value is an alert).",
		}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Name: "readiness_checks_total",
			Help: "Readiness checks run by GET /readyz, by check (postgres, redis, ...) and result: ok, unavailable.",
		}, []string{"check", "result"}),
	}
	if err := promreg.Register(reg, m.requests, m.duration, m.inFlight, m.ready, m.checks); err != nil {
		return nil, fmt.Errorf("transport: register metrics: %w", err)
	}
	return m, nil
}

// begin counts a request in flight and returns the function that records
// its outcome. Unknown methods share one label so that a client cannot
// grow the label set.
func (m *httpMetrics) begin(method string) func(route string, status int, elapsed time.Duration) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
	default:
		method = "OTHER"
	}
	m.inFlight.Inc()
	return func(route string, status int, elapsed time.Duration) {
		m.inFlight.Dec()
		code := strconv.Itoa(status)
		m.requests.WithLabelValues(method, route, code).Inc()
		m.duration.WithLabelValues(method, route, code).Observe(elapsed.Seconds())
	}
}
