package auth

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/internal/promreg"
)

// metrics are the Service's collectors. Without a registry they are still
// made (the code needs no nil checks) but never exported.
type metrics struct {
	logins        *prometheus.CounterVec
	registrations *prometheus.CounterVec
	refreshes     *prometheus.CounterVec
	reuses        prometheus.Counter
	rejected      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "auth", Name: "logins_total",
			Help: "Password sign-ins by result: ok, or the problem code of the refusal (invalid_credentials, too_many_attempts, ...).",
		}, []string{"result"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "auth", Name: "registrations_total",
			Help: "Password sign-ups by result: ok, or the problem code of the refusal.",
		}, []string{"result"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "auth", Name: "refreshes_total",
			Help: "Refresh-token rotations by result: ok, or the problem code of the refusal (invalid_grant, ...).",
		}, []string{"result"}),
		reuses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "auth", Name: "refresh_reuse_detections_total",
			Help: "Refresh tokens used again after rotation (outside the grace window): each revoked its session.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "auth", Name: "rejected_tokens_total",
			Help: "Access tokens refused, by reason: expired, bad_signature, malformed, revoked, ...",
		}, []string{"reason"}),
	}
	for _, v := range []*prometheus.CounterVec{m.logins, m.registrations, m.refreshes} {
		v.WithLabelValues("ok")
	}
	if err := promreg.Register(reg, m.logins, m.registrations, m.refreshes, m.reuses, m.rejected); err != nil {
		return nil, fmt.Errorf("auth: register metrics (one Service per registry): %w", err)
	}
	return m, nil
}

// result labels an outcome: ok, the problem code of a refusal (a fixed
// set, so the label stays bounded), or internal.
func result(err error) string {
	if err == nil {
		return "ok"
	}
	if e := errs.As(err); e != nil && e.Code != "" {
		return e.Code
	}
	return "internal"
}
