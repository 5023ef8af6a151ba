// Package promreg registers a part's Prometheus collectors.
package promreg

import "github.com/prometheus/client_golang/prometheus"

// Register registers cs on reg in order and returns the first error. A nil
// reg registers nothing: the collectors still count, and nothing exports
// them.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
