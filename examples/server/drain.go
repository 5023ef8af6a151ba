package main

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/transport"
)

// errDraining is the drain readiness check's answer once the server was
// told to stop.
var errDraining = errors.New("draining: the server is stopping")

// drainer fails readiness from the moment the server is told to stop, so
// that a load balancer that polls GET /readyz takes the instance out
// before it stops accepting (-drain-delay later).
type drainer struct{ draining atomic.Bool }

// install adds the drain readiness check to the assembly's configuration.
func (d *drainer) install(c *adshare.Config) {
	c.HTTP.ReadinessChecks = append(c.HTTP.ReadinessChecks, transport.ReadinessCheck{
		Name: "drain",
		Check: func(context.Context) error {
			if d.draining.Load() {
				return errDraining
			}
			return nil
		},
	})
}

// start makes readiness fail from now on; nil does nothing.
func (d *drainer) start() {
	if d != nil {
		d.draining.Store(true)
	}
}
