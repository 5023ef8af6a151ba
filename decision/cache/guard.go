package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// sharedBackoff is how long the shared tier is left alone after it failed.
const sharedBackoff = time.Second

var errSharedSkipped = errors.New("decision/cache: shared tier skipped after a recent failure")

// guarded is the resilience policy around the shared tier, whatever tier
// the host configured: every call is bounded by timeout whatever the tier
// does with its ctx (the call runs in its own goroutine, abandoned at the
// deadline; a panic in it is an error), and a failure is counted, logged
// at warn, and makes the tier skipped for sharedBackoff: the decorator
// then works from memory and upstream alone. ErrLockLost is an answer, not
// a failure.
type guarded struct {
	tier    Tier
	timeout time.Duration
	stats   *metrics
	log     *slog.Logger

	downUntil atomic.Int64 // wall-clock Unix nanoseconds
}

var _ Tier = (*guarded)(nil)

// do runs f with a ctx bounded by g.timeout and returns at that deadline
// even if f has not. f must write only to variables the caller reads after
// do returns nil: an abandoned f may still be running.
func (g *guarded) do(ctx context.Context, op string, f func(context.Context) error) error {
	if time.Now().UnixNano() < g.downUntil.Load() {
		return errSharedSkipped
	}
	tctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// A host's tier runs here, outside the caller's goroutine: its
		// panic is a failure like any other, not the end of the process.
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("decision/cache: shared tier panicked: %v", r)
			}
		}()
		done <- f(tctx)
	}()
	var err error
	select {
	case err = <-done:
	case <-tctx.Done():
		err = tctx.Err()
	}
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrLockLost) {
		return err
	}
	g.downUntil.Store(time.Now().Add(sharedBackoff).UnixNano())
	g.stats.sharedErrs.WithLabelValues(op).Inc()
	g.log.WarnContext(ctx, "decision/cache: shared tier "+op+" failed; serving from memory and upstream",
		slog.String("error", err.Error()), slog.Duration("shared_tier_skipped_for", sharedBackoff))
	return err
}

// Pop implements Tier. The tier pops into a copy of pops, copied back on
// success: an abandoned call must not write to the caller's.
func (g *guarded) Pop(ctx context.Context, now time.Time, pops []Pop) error {
	in := make([]Pop, len(pops))
	for i := range pops {
		in[i] = Pop{Key: pops[i].Key, N: pops[i].N}
	}
	if err := g.do(ctx, "pop", func(ctx context.Context) error { return g.tier.Pop(ctx, now, in) }); err != nil {
		return err
	}
	copy(pops, in)
	return nil
}

// Lock implements Tier.
func (g *guarded) Lock(ctx context.Context, token string, ttl time.Duration, keys []Key) ([]bool, error) {
	return call(ctx, g, "lock", func(ctx context.Context) ([]bool, error) { return g.tier.Lock(ctx, token, ttl, keys) })
}

// Locked implements Tier.
func (g *guarded) Locked(ctx context.Context, keys []Key) ([]bool, error) {
	return call(ctx, g, "poll", func(ctx context.Context) ([]bool, error) { return g.tier.Locked(ctx, keys) })
}

// EndRefill implements Tier.
func (g *guarded) EndRefill(ctx context.Context, r Refill) (RefillResult, error) {
	return call(ctx, g, "store", func(ctx context.Context) (RefillResult, error) { return g.tier.EndRefill(ctx, r) })
}

// call runs f through g.do and returns its result, or the zero value with
// do's error (an abandoned f's result is never read).
func call[T any](ctx context.Context, g *guarded, op string, f func(context.Context) (T, error)) (T, error) {
	var v T
	err := g.do(ctx, op, func(ctx context.Context) (err error) {
		v, err = f(ctx)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}
