package loadtest

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CapacityConfig is a capacity search: runs of Config.Mix at rising
// rates until one breaks the budget.
type CapacityConfig struct {
	// Config is the run at each rate (its Rate is ignored); Duration is
	// each step's length.
	Config
	// Start is the first rate tried; each step multiplies it by Growth
	// (default 1.5) until a step fails, then Refine steps (default 3)
	// bisect between the last rate that held and the first that did not.
	Start  int
	Growth float64
	Refine int
	// Max stops the search (the last rate tried is then the answer).
	Max int
	// Route's p99 must stay at or under MaxP99 (default 50 ms).
	Route  string
	MaxP99 time.Duration
	// MaxErrorRate bounds every route's share of errors (default 0.001).
	MaxErrorRate float64
	// Pause between steps lets the server drain (default 1 s).
	Pause time.Duration
	// Retries runs a failed step again up to this many times (default 0)
	// before the search counts the rate as failed: on a shared machine
	// one step can fail on a neighbour's burst rather than the server's
	// limit. Every try is kept in Steps.
	Retries int
}

// Step is one rate tried.
type Step struct {
	Rate   int     `json:"rate_per_s"`
	Held   bool    `json:"held"`
	Why    string  `json:"why,omitempty"`
	P99    float64 `json:"route_p99_ms"`
	Report *Report `json:"-"`
}

// CapacityResult is the highest rate that held, with every step.
type CapacityResult struct {
	Route string `json:"route"`
	// Sustained is the highest rate that held (0: even Start failed).
	Sustained int    `json:"sustained_per_s"`
	Steps     []Step `json:"steps"`
}

// Capacity steps the rate up until the route's p99 passes MaxP99 or
// errors pass MaxErrorRate, and reports the highest rate that held.
func Capacity(ctx context.Context, cc CapacityConfig) (CapacityResult, error) {
	if cc.Start <= 0 || cc.Route == "" {
		return CapacityResult{}, errors.New("loadtest: a capacity search needs a start rate and a route")
	}
	if cc.Growth <= 1 {
		cc.Growth = 1.5
	}
	if cc.Refine <= 0 {
		cc.Refine = 3
	}
	if cc.MaxP99 <= 0 {
		cc.MaxP99 = 50 * time.Millisecond
	}
	if cc.MaxErrorRate <= 0 {
		cc.MaxErrorRate = 0.001
	}
	if cc.Pause <= 0 {
		cc.Pause = time.Second
	}
	res := CapacityResult{Route: cc.Route}
	try := func(rate int) (bool, error) {
		cfg := cc.Config
		cfg.Rate = rate
		rep, err := Run(ctx, cfg)
		if err != nil {
			return false, err
		}
		st := Step{Rate: rate, Held: true, Report: rep}
		if r := rep.Route(cc.Route); r != nil {
			st.P99 = r.Latency.P99
		}
		if fails := rep.Failures(cc.MaxErrorRate); len(fails) > 0 {
			st.Held, st.Why = false, fails[0]
		} else if st.P99 > float64(cc.MaxP99)/1e6 {
			st.Held, st.Why = false, fmt.Sprintf("%s p99 %.1f ms over %v", cc.Route, st.P99, cc.MaxP99)
		}
		res.Steps = append(res.Steps, st)
		if st.Held && rate > res.Sustained {
			res.Sustained = rate
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(cc.Pause):
		}
		return st.Held, nil
	}
	confirmed := func(rate int) (bool, error) {
		for i := 0; ; i++ {
			ok, err := try(rate)
			if ok || err != nil || i >= cc.Retries {
				return ok, err
			}
		}
	}
	held, failed := 0, 0
	for rate := cc.Start; ; rate = int(float64(rate) * cc.Growth) {
		if cc.Max > 0 && rate > cc.Max {
			rate = cc.Max
		}
		ok, err := confirmed(rate)
		if err != nil {
			return res, err
		}
		if !ok {
			failed = rate
			break
		}
		held = rate
		if cc.Max > 0 && rate == cc.Max {
			return res, nil
		}
	}
	for i := 0; i < cc.Refine && failed-held > max(held/20, 1); i++ {
		mid := (held + failed) / 2
		ok, err := confirmed(mid)
		if err != nil {
			return res, err
		}
		if ok {
			held = mid
		} else {
			failed = mid
		}
	}
	return res, nil
}
