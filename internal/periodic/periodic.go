// Package periodic runs a function at a fixed interval on one goroutine,
// with the Start/Stop lifecycle every adshare component has: nothing runs
// until Start, Stop ends the goroutine and waits for it, and both are
// idempotent.
package periodic

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrStopped is returned by Start after Stop: a stopped task cannot start
// again.
var ErrStopped = errors.New("periodic: stopped")

// Task calls a function every interval. Its zero value is not usable; call
// New.
type Task struct {
	interval time.Duration
	run      func(ctx context.Context)

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// New returns a task that calls run every interval once started. run gets
// a context that is cancelled by Stop, so a long run can end early; runs
// never overlap.
func New(interval time.Duration, run func(ctx context.Context)) *Task {
	return &Task{interval: interval, run: run, done: make(chan struct{})}
}

// Start starts the goroutine: the first call is one interval from now. The
// goroutine's context carries ctx's values but not its cancellation (only
// Stop ends it). Start returns nil when already started and ErrStopped
// after Stop.
func (t *Task) Start(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.stopped:
		return ErrStopped
	case t.started:
		return nil
	}
	t.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.cancel = cancel
	go t.loop(runCtx)
	return nil
}

func (t *Task) loop(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.run(ctx)
		}
	}
}

// Stop cancels the run in progress, if any, and waits for the goroutine to
// end, or for ctx to end (then it returns ctx's error). It is idempotent and
// safe before Start.
func (t *Task) Stop(ctx context.Context) error {
	t.mu.Lock()
	if !t.stopped {
		t.stopped = true
		if t.started {
			t.cancel()
		} else {
			close(t.done)
		}
	}
	t.mu.Unlock()
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
