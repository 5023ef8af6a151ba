// Package jobstest is the contract suite of jobs.Queue: every
// implementation (jobs.Local, store/postgres's River queue) runs it, so
// that they keep the same promises.
package jobstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/jobs"
)

// How long the suite waits for something that must happen, and how long it
// watches for something that must not.
const (
	eventually = 30 * time.Second
	tick       = 10 * time.Millisecond
	quiet      = 500 * time.Millisecond
	stopWithin = 30 * time.Second
)

// fast retries, so that the suite does not wait for the default backoff.
var fast = jobs.KindOpts{MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}

// NewQueue returns a fresh, unstarted queue that shares nothing with any
// other; the suite stops it when the test ends.
type NewQueue func(t *testing.T) jobs.Queue

// Run runs the contract suite against the queues newQueue makes. Its
// subtests run in parallel, each on a queue of its own. A queue must pick
// up a new job within a second or so and a retry within PollInterval-ish
// delays; the suite waits up to 30 seconds for what must happen.
func Run(t *testing.T, newQueue NewQueue) {
	setup := func(t *testing.T) jobs.Queue {
		t.Helper()
		q := newQueue(t)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), stopWithin)
			defer cancel()
			require.NoError(t, q.Stop(ctx))
		})
		return q
	}
	start := func(t *testing.T, q jobs.Queue) {
		t.Helper()
		require.NoError(t, q.Start(context.Background()))
	}

	t.Run("EachJobRunsOnceAndNothingBeforeStart", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		calls := newCounter()
		require.NoError(t, q.Register("test.once", jobs.Typed(func(_ context.Context, a arg) error {
			calls.add(a.ID)
			return nil
		}), nil))
		ctx := context.Background()
		for i := range 10 {
			inserted, err := q.Enqueue(ctx, "test.once", arg{ID: fmt.Sprint(i)}, nil)
			require.NoError(t, err)
			require.True(t, inserted)
		}
		time.Sleep(quiet)
		require.Zero(t, calls.total(), "no job runs before Start")

		start(t, q)
		for i := 10; i < 20; i++ {
			_, err := q.Enqueue(ctx, "test.once", arg{ID: fmt.Sprint(i)}, nil)
			require.NoError(t, err)
		}
		require.Eventually(t, func() bool { return calls.total() == 20 }, eventually, tick)
		time.Sleep(quiet)
		require.Equal(t, 20, calls.total())
		for i := range 20 {
			require.Equal(t, 1, calls.get(fmt.Sprint(i)), "job %d ran once, with its own args", i)
		}
	})

	t.Run("AFailedAttemptIsRetriedUntilItSucceeds", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		var calls atomic.Int64
		var mu sync.Mutex
		var at []time.Time
		require.NoError(t, q.Register("test.flaky", func(context.Context, json.RawMessage) error {
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
			if calls.Add(1) < 3 {
				return errors.New("not yet")
			}
			return nil
		}, &fast))
		start(t, q)
		_, err := q.Enqueue(context.Background(), "test.flaky", nil, nil)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return calls.Load() == 3 }, eventually, tick)
		time.Sleep(quiet)
		require.EqualValues(t, 3, calls.Load(), "a job that succeeded is not run again")
		mu.Lock()
		defer mu.Unlock()
		for i := 1; i < len(at); i++ {
			require.GreaterOrEqual(t, at[i].Sub(at[i-1]), fast.MinBackoff/2, "a retry waits its backoff")
		}
		require.Less(t, at[len(at)-1].Sub(at[0]), 5*time.Second, "the retries wait the kind's backoff, not a default one")
	})

	t.Run("AJobFailsForGoodAfterMaxAttempts", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		calls := newCounter()
		opts := fast
		opts.MaxAttempts = 3
		require.NoError(t, q.Register("test.failing", jobs.Typed(func(_ context.Context, a arg) error {
			calls.add(a.ID)
			return errors.New("always")
		}), &opts))
		start(t, q)
		ctx := context.Background()
		_, err := q.Enqueue(ctx, "test.failing", arg{ID: "kind"}, nil)
		require.NoError(t, err)
		_, err = q.Enqueue(ctx, "test.failing", arg{ID: "job"}, &jobs.EnqueueOpts{MaxAttempts: 2})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return calls.get("kind") == 3 && calls.get("job") == 2 }, eventually, tick)
		time.Sleep(quiet)
		require.Equal(t, 3, calls.get("kind"), "the kind's MaxAttempts")
		require.Equal(t, 2, calls.get("job"), "the job's MaxAttempts overrides its kind's")
	})

	t.Run("PermanentStopsRetryingAndFreesTheKey", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		var calls atomic.Int64
		cause := errors.New("bad input")
		opts := fast
		opts.MaxAttempts = 5
		require.NoError(t, q.Register("test.permanent", func(context.Context, json.RawMessage) error {
			calls.Add(1)
			return jobs.Permanent(cause)
		}, &opts))
		start(t, q)
		ctx := context.Background()
		inserted, err := q.Enqueue(ctx, "test.permanent", nil, &jobs.EnqueueOpts{UniqueKey: "k"})
		require.NoError(t, err)
		require.True(t, inserted)
		require.Eventually(t, func() bool { return calls.Load() == 1 }, eventually, tick)
		time.Sleep(quiet)
		require.EqualValues(t, 1, calls.Load(), "a permanent failure is not retried")

		// A job that failed for good holds its key no longer.
		require.Eventually(t, func() bool {
			inserted, err := q.Enqueue(ctx, "test.permanent", nil, &jobs.EnqueueOpts{UniqueKey: "k"})
			return err == nil && inserted
		}, eventually, 50*time.Millisecond)
		require.Eventually(t, func() bool { return calls.Load() == 2 }, eventually, tick)
	})

	t.Run("SnoozeRunsAgainLaterWithoutUsingAnAttempt", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		var mu sync.Mutex
		var at []time.Time
		const snooze = 300 * time.Millisecond
		require.NoError(t, q.Register("test.snooze", func(context.Context, json.RawMessage) error {
			mu.Lock()
			defer mu.Unlock()
			at = append(at, time.Now())
			switch len(at) {
			case 1, 2:
				return jobs.Snooze(snooze)
			case 3:
				return errors.New("the first real failure")
			}
			return nil
		}, &jobs.KindOpts{MaxAttempts: 2, MinBackoff: snooze, MaxBackoff: 2 * snooze}))
		start(t, q)
		_, err := q.Enqueue(context.Background(), "test.snooze", nil, nil)
		require.NoError(t, err)
		calls := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(at)
		}
		require.Eventually(t, func() bool { return calls() == 4 }, eventually, tick,
			"after two snoozes, a failure is the first of two attempts and is retried")
		time.Sleep(quiet)
		require.Equal(t, 4, calls())
		mu.Lock()
		defer mu.Unlock()
		for i := 1; i < 3; i++ {
			require.GreaterOrEqual(t, at[i].Sub(at[i-1]), snooze, "a snoozed job waits")
		}
	})

	t.Run("UniqueKeysDedupe", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		calls := newCounter()
		release := make(chan struct{})
		running := make(chan string, 10)
		handler := func(kind string) jobs.Handler {
			return jobs.Typed(func(ctx context.Context, a arg) error {
				calls.add(kind + "/" + a.ID)
				running <- a.ID
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		}
		require.NoError(t, q.Register("test.unique", handler("u"), nil))
		require.NoError(t, q.Register("test.unique2", handler("v"), nil))
		ctx := context.Background()
		enqueue := func(kind, key string) bool {
			t.Helper()
			inserted, err := q.Enqueue(ctx, kind, arg{ID: key}, &jobs.EnqueueOpts{UniqueKey: key})
			require.NoError(t, err)
			return inserted
		}
		require.True(t, enqueue("test.unique", "a"))
		require.False(t, enqueue("test.unique", "a"), "a waiting job holds its key")
		require.True(t, enqueue("test.unique", "b"), "another key is another job")
		require.True(t, enqueue("test.unique2", "a"), "keys are per kind")
		start(t, q)
		for range 3 {
			Receive(t, running, "the start of the unique jobs")
		}
		require.False(t, enqueue("test.unique", "a"), "a running job holds its key")
		close(release)
		require.Eventually(t, func() bool { return calls.total() == 3 }, eventually, tick)
		time.Sleep(quiet) // for the completions to be recorded
		require.False(t, enqueue("test.unique", "a"), "a completed job holds its key for the retention")

		// Concurrent enqueues of one key insert one job.
		var inserted atomic.Int64
		errs := make(chan error, 20)
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				ok, err := q.Enqueue(ctx, "test.unique", arg{ID: "c"}, &jobs.EnqueueOpts{UniqueKey: "c"})
				if ok {
					inserted.Add(1)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.EqualValues(t, 1, inserted.Load())
		require.Eventually(t, func() bool { return calls.get("u/c") == 1 }, eventually, tick)
		time.Sleep(quiet)
		require.Equal(t, 1, calls.get("u/a"))
		require.Equal(t, 1, calls.get("u/b"))
		require.Equal(t, 1, calls.get("v/a"))
		require.Equal(t, 1, calls.get("u/c"))
	})

	t.Run("PeriodicFiresAndDoesNotOverlapItself", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		var runs atomic.Int64
		var overlap Gauge
		require.NoError(t, q.Register("test.tick", jobs.Typed(func(_ context.Context, a arg) error {
			if a.ID != "tick" {
				return jobs.Permanent(fmt.Errorf("args %+v", a))
			}
			overlap.Enter()
			time.Sleep(250 * time.Millisecond) // longer than the interval
			overlap.Leave()
			runs.Add(1)
			return nil
		}), nil))
		require.NoError(t, q.Every("test.tick", 50*time.Millisecond, arg{ID: "tick"}))
		time.Sleep(quiet)
		require.Zero(t, runs.Load(), "nothing runs before Start")
		start(t, q)
		require.Eventually(t, func() bool { return runs.Load() >= 3 }, eventually, tick)
		require.EqualValues(t, 1, overlap.Most(), "runs of a periodic job never overlap")
	})

	t.Run("StopWaitsForRunningJobsThenRunsNone", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		var calls atomic.Int64
		var finished atomic.Bool
		started := make(chan struct{}, 1)
		release := make(chan struct{})
		require.NoError(t, q.Register("test.slow", func(ctx context.Context, _ json.RawMessage) error {
			calls.Add(1)
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			finished.Store(true)
			return nil
		}, nil))
		start(t, q)
		ctx := context.Background()
		_, err := q.Enqueue(ctx, "test.slow", nil, nil)
		require.NoError(t, err)
		Receive(t, started, "the job's start")

		stopped := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), stopWithin)
			defer cancel()
			stopped <- q.Stop(ctx)
		}()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned (%v) while a job was running", err)
		case <-time.After(quiet):
		}
		close(release)
		require.NoError(t, Receive(t, stopped, "Stop's return after the job's"))
		require.True(t, finished.Load(), "Stop returned after the running job")

		// After Stop nothing runs here; a durable queue may still insert.
		if _, err := q.Enqueue(ctx, "test.slow", nil, nil); err != nil {
			require.ErrorIs(t, err, jobs.ErrStopped)
		}
		time.Sleep(quiet)
		require.EqualValues(t, 1, calls.Load())
		require.ErrorIs(t, q.Start(ctx), jobs.ErrStopped)
		require.NoError(t, q.Stop(ctx), "a second Stop is a no-op")
	})

	t.Run("StopCancelsRunningJobsWhenItsContextEnds", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		started := make(chan struct{}, 1)
		ended := make(chan error, 1)
		require.NoError(t, q.Register("test.stuck", func(ctx context.Context, _ json.RawMessage) error {
			started <- struct{}{}
			<-ctx.Done()
			ended <- ctx.Err()
			return ctx.Err()
		}, &jobs.KindOpts{Timeout: time.Hour - time.Minute}))
		start(t, q)
		_, err := q.Enqueue(context.Background(), "test.stuck", nil, nil)
		require.NoError(t, err)
		Receive(t, started, "the job's start")
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		require.ErrorIs(t, q.Stop(ctx), context.DeadlineExceeded)
		err = Receive(t, ended, "the end of the running job's context")
		require.ErrorIs(t, err, context.Canceled, "the job's context is cancelled, not timed out")
	})

	t.Run("StopBeforeStart", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		ctx := context.Background()
		require.NoError(t, q.Stop(ctx))
		require.NoError(t, q.Stop(ctx))
		require.ErrorIs(t, q.Start(ctx), jobs.ErrStopped)
		require.ErrorIs(t, q.Register("test.late", func(context.Context, json.RawMessage) error { return nil }, nil), jobs.ErrStarted)
	})

	t.Run("APanicIsAFailedAttempt", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		var calls, others atomic.Int64
		require.NoError(t, q.Register("test.panic", func(context.Context, json.RawMessage) error {
			if calls.Add(1) == 1 {
				panic("boom")
			}
			return nil
		}, &fast))
		require.NoError(t, q.Register("test.other", func(context.Context, json.RawMessage) error {
			others.Add(1)
			return nil
		}, nil))
		start(t, q)
		ctx := context.Background()
		_, err := q.Enqueue(ctx, "test.panic", nil, nil)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return calls.Load() == 2 }, eventually, tick, "the job is retried after its panic")
		_, err = q.Enqueue(ctx, "test.other", nil, nil)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return others.Load() == 1 }, eventually, tick, "the queue goes on after a panic")
		time.Sleep(quiet)
		require.EqualValues(t, 2, calls.Load())
	})

	t.Run("AJobsContextEndsAtItsTimeout", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		const timeout = 300 * time.Millisecond
		type result struct {
			err     error
			elapsed time.Duration
		}
		results := make(chan result, 1)
		require.NoError(t, q.Register("test.timeout", func(ctx context.Context, _ json.RawMessage) error {
			begun := time.Now()
			select {
			case <-ctx.Done():
			case <-time.After(eventually):
			}
			results <- result{ctx.Err(), time.Since(begun)}
			return ctx.Err()
		}, &jobs.KindOpts{Timeout: timeout, MaxAttempts: 1}))
		start(t, q)
		_, err := q.Enqueue(context.Background(), "test.timeout", nil, nil)
		require.NoError(t, err)
		r := Receive(t, results, "the job's end")
		require.ErrorIs(t, r.err, context.DeadlineExceeded)
		require.GreaterOrEqual(t, r.elapsed, timeout-50*time.Millisecond)
		require.Less(t, r.elapsed, 10*timeout)
	})

	t.Run("RunAtDelaysAJob", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		ran := make(chan time.Time, 1)
		require.NoError(t, q.Register("test.later", func(context.Context, json.RawMessage) error {
			ran <- time.Now()
			return nil
		}, nil))
		start(t, q)
		runAt := time.Now().Add(time.Second)
		_, err := q.Enqueue(context.Background(), "test.later", nil, &jobs.EnqueueOpts{RunAt: runAt})
		require.NoError(t, err)
		at := Receive(t, ran, "the job's run")
		require.False(t, at.Before(runAt), "ran %s before its RunAt", runAt.Sub(at))
	})

	t.Run("MisuseIsRefused", func(t *testing.T) {
		t.Parallel()
		q := setup(t)
		ctx := context.Background()
		h := func(context.Context, json.RawMessage) error { return nil }
		for _, kind := range []string{"", "Billing", "billing.", "billing settle", ".x", "a..b"} {
			require.ErrorIs(t, q.Register(kind, h, nil), jobs.ErrInvalid, "kind %q", kind)
		}
		require.ErrorIs(t, q.Register("test.nil", nil, nil), jobs.ErrInvalid)
		require.ErrorIs(t, q.Register("test.neg", h, &jobs.KindOpts{MaxAttempts: -1}), jobs.ErrInvalid)
		require.ErrorIs(t, q.Register("test.backoff", h, &jobs.KindOpts{MinBackoff: time.Minute, MaxBackoff: time.Second}), jobs.ErrInvalid)
		require.NoError(t, q.Register("test.ok", h, nil))
		require.ErrorIs(t, q.Register("test.ok", h, nil), jobs.ErrKindExists)

		inserted, err := q.Enqueue(ctx, "test.unknown", nil, nil)
		require.ErrorIs(t, err, jobs.ErrUnknownKind)
		require.False(t, inserted)
		_, err = q.Enqueue(ctx, "test.ok", nil, &jobs.EnqueueOpts{MaxAttempts: -1})
		require.ErrorIs(t, err, jobs.ErrInvalid)
		_, err = q.Enqueue(ctx, "test.ok", func() {}, nil)
		require.Error(t, err, "args that cannot be encoded")

		require.ErrorIs(t, q.Every("test.unknown", time.Second, nil), jobs.ErrUnknownKind)
		require.ErrorIs(t, q.Every("test.ok", 0, nil), jobs.ErrInvalid)
		require.NoError(t, q.Every("test.ok", time.Hour, nil))
		require.ErrorIs(t, q.Every("test.ok", time.Hour, nil), jobs.ErrKindExists)

		start(t, q)
		require.NoError(t, q.Start(ctx), "a second Start is a no-op")
		require.ErrorIs(t, q.Register("test.late", h, nil), jobs.ErrStarted)
		require.ErrorIs(t, q.Every("test.ok", time.Hour, nil), jobs.ErrStarted)
	})
}

// Receive returns the next value from ch, and fails t when none comes
// within the suite's patience (30 seconds); what names the awaited event.
func Receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(eventually):
		t.Fatalf("jobstest: no %s within %s", what, eventually)
		panic("unreachable")
	}
}

// Gauge counts the runs in progress and keeps the most it saw at once. Its
// zero value is ready to use; it is safe for concurrent use.
type Gauge struct {
	now, most atomic.Int64
}

// Enter counts a run that begins.
func (g *Gauge) Enter() {
	n := g.now.Add(1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
}

// Leave counts a run that ends.
func (g *Gauge) Leave() { g.now.Add(-1) }

// Most returns the most runs that were in progress at once.
func (g *Gauge) Most() int64 { return g.most.Load() }

// arg is the suite's job arguments.
type arg struct {
	ID string `json:"id"`
}

// counter counts calls by key.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func newCounter() *counter { return &counter{n: make(map[string]int)} }

func (c *counter) add(key string) {
	c.mu.Lock()
	c.n[key]++
	c.mu.Unlock()
}

func (c *counter) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t int
	for _, n := range c.n {
		t += n
	}
	return t
}
