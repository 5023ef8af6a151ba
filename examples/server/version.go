package main

import "github.com/prometheus/client_golang/prometheus"

// version names the build; a release sets it at link time:
//
//	go build -ldflags "-X main.version=v1.4.2" ./examples/server
var version = "dev"

// buildInfo is adshare_build_info{version} 1, so that a dashboard (or a
// rollout's check) sees which build each instance runs.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "adshare_build_info",
		Help: "Always 1; the version label names the build of the running server (set with -ldflags -X main.version).",
	}, []string{"version"})
	g.WithLabelValues(version).Set(1)
	return g
}
