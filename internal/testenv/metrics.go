package testenv

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric returns the value of the sample named name whose labels include
// the given name/value pairs, from g: a counter's or gauge's value, a
// histogram's sample count. A sample that is not there is 0, as a counter
// not yet incremented would be.
func Metric(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("testenv.Metric: labels come in name/value pairs, got %q", labels)
	}
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("testenv.Metric: gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	samples:
		for _, m := range mf.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				if !found {
					continue samples
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			case m.GetUntyped() != nil:
				return m.GetUntyped().GetValue()
			}
		}
	}
	return 0
}
