package auth

import (
	"context"
	"time"
)

// Limit is a rate: Rate events per Period on average, with bursts of up
// to Burst events at once. Limiters implement it as GCRA (the generic cell
// rate algorithm): one stored timestamp per key, no counters to reset, and a
// precise RetryAfter.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// Valid reports whether the limit can be enforced.
func (l Limit) Valid() bool { return l.Rate > 0 && l.Period > 0 && l.Burst > 0 }

// Interval is the time one event's allowance takes to replenish.
func (l Limit) Interval() time.Duration { return l.Period / time.Duration(l.Rate) }

// LimitResult is a limiter's answer for one event.
type LimitResult struct {
	// Allowed is true when the event fits the limit (and was counted).
	Allowed bool
	// Remaining is how many more events would be allowed right now.
	Remaining int
	// RetryAfter, when not allowed, is how long until one event would be.
	RetryAfter time.Duration
	// ResetAfter is how long until the key is back to a full burst.
	ResetAfter time.Duration
}

// Limiter counts events per key against a Limit. Implementations: in
// process (store/memory) and shared by every instance (store/redis).
type Limiter interface {
	// Allow counts one event for key if the limit allows it, and says so.
	// A refused event is not counted. It returns an error only when the
	// limiter cannot answer (for example, Redis is down); callers decide
	// whether to fail open or closed.
	Allow(ctx context.Context, key string, l Limit) (LimitResult, error)
}
