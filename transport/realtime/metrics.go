package realtime

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adshare/adshare/internal/promreg"
)

// metrics are the hub's collectors. Without a registry they are still made
// (the code needs no nil checks) but never exported.
type metrics struct {
	received *prometheus.CounterVec
	sent     prometheus.Counter
	closes   *prometheus.CounterVec
	resumes  *prometheus.CounterVec
}

// clientTypes are the client message types counted by name; anything else
// counts as "invalid", so a client cannot grow the label set.
var clientTypes = []string{TypePing, TypeAuth, TypeSubscribe, TypeUnsubscribe, TypeAck}

func newMetrics(reg prometheus.Registerer, h *Hub) (*metrics, error) {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "ws", Name: "messages_received_total",
			Help: "Client messages on the realtime channel, by type (invalid: unreadable, unknown or refused before its type was known).",
		}, []string{"type"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "ws", Name: "messages_sent_total",
			Help: "Messages queued to clients of the realtime channel (events, answers, errors).",
		}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "ws", Name: "closes_total",
			Help: "Realtime connections closed by the server or the client, by reason: closed, auth_failed, rate_limited, bad_request, revoked, slow (dropped: its send queue was full).",
		}, []string{"reason"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "ws", Name: "resumes_total",
			Help: "Subscriptions that resumed from a sequence, by result: replayed (the missed events sent), reload (the gap was too old or the epoch changed).",
		}, []string{"result"}),
	}
	for _, t := range append(clientTypes, "invalid") {
		m.received.WithLabelValues(t)
	}
	for _, r := range []string{"replayed", "reload"} {
		m.resumes.WithLabelValues(r)
	}
	conns := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "adshare", Subsystem: "ws", Name: "connections",
		Help: "Open realtime connections on this instance.",
	}, func() float64 { return float64(h.Connections()) })
	if err := promreg.Register(reg, m.received, m.sent, m.closes, m.resumes, conns); err != nil {
		return nil, fmt.Errorf("realtime: register metrics (one Hub per registry): %w", err)
	}
	return m, nil
}

// receivedType labels a client message's type.
func receivedType(t string) string {
	for _, known := range clientTypes {
		if t == known {
			return t
		}
	}
	return "invalid"
}

// closeReason labels a close for the metrics.
func closeReason(code int) string {
	if code == CloseSlow {
		return "slow"
	}
	e := closeEvent(code)
	return e[len("ws."):]
}
