package jobs

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/adshare/adshare/internal/periodic"
)

// Defaults of LocalConfig.
const (
	// DefaultWorkers is how many jobs a Local runs at once.
	DefaultWorkers = 10
	// DefaultMaxJobs is how many jobs a Local holds (waiting, scheduled,
	// running or waiting for a retry) before Enqueue returns ErrFull.
	DefaultMaxJobs = 100_000
	// DefaultRetention is how long a completed job keeps its unique key.
	DefaultRetention = 24 * time.Hour
)

// LocalConfig configures NewLocal. The zero value (or nil) means every
// default.
type LocalConfig struct {
	// Workers is how many jobs run at once. Defaults to DefaultWorkers.
	Workers int
	// MaxJobs bounds the jobs held in memory (waiting, scheduled, running
	// or waiting for a retry): Enqueue returns ErrFull beyond it. Defaults
	// to DefaultMaxJobs.
	MaxJobs int
	// Retention is how long a completed job's unique key is remembered,
	// so that Enqueue with that key inserts nothing. Defaults to
	// DefaultRetention.
	Retention time.Duration
	// Logger receives failed attempts (warn) and jobs that failed for
	// good (error). Defaults to discarding.
	Logger *slog.Logger
}

// Local is the in-process Queue of the embedded defaults: jobs live in
// this process's memory and run on a bounded pool of goroutines, with the
// same retries, uniqueness, periodic runs and stop as the River queue of
// store/postgres. Nothing survives a restart and nothing is shared with
// another process: the jobs waiting when the process ends are lost, so it
// suits one process and tests, not a fleet. Its zero value is not usable;
// call NewLocal.
type Local struct {
	reg       Registry
	workers   int
	maxJobs   int
	retention time.Duration
	logger    *slog.Logger

	mu        sync.Mutex
	started   bool
	stopped   bool
	waiting   jobHeap // by run time, then by insertion
	seq       uint64
	held      int // waiting and running
	running   int
	active    map[uniqueKey]struct{} // keys of jobs held
	done      map[uniqueKey]time.Time
	doneOrder []doneKey // done's entries, oldest first
	tasks     []*periodic.Task
	runCtx    context.Context
	cancelRun context.CancelFunc

	wake    chan struct{} // the dispatcher has something to look at
	quit    chan struct{} // closed by Stop
	wg      sync.WaitGroup
	allDone chan struct{} // closed once the dispatcher and every job ended
}

var _ Queue = (*Local)(nil)

// uniqueKey is what a unique job holds. A periodic job's key is apart from
// every key a caller can give.
type uniqueKey struct {
	kind, key string
	periodic  bool
}

type doneKey struct {
	key uniqueKey
	at  time.Time
}

type localJob struct {
	Job
	attempt int // attempts made; snoozes do not count
	runAt   time.Time
	seq     uint64
	unique  *uniqueKey
}

// NewLocal returns a Local, which starts nothing until Start. It returns
// ErrInvalid for a negative field of cfg.
func NewLocal(cfg *LocalConfig) (*Local, error) {
	var c LocalConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Workers < 0 || c.MaxJobs < 0 || c.Retention < 0 {
		return nil, fmt.Errorf("%w: LocalConfig fields cannot be negative", ErrInvalid)
	}
	logger := c.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Local{
		workers:   cmp.Or(c.Workers, DefaultWorkers),
		maxJobs:   cmp.Or(c.MaxJobs, DefaultMaxJobs),
		retention: cmp.Or(c.Retention, DefaultRetention),
		logger:    logger,
		active:    make(map[uniqueKey]struct{}),
		done:      make(map[uniqueKey]time.Time),
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		allDone:   make(chan struct{}),
	}, nil
}

// Register implements Queue.
func (l *Local) Register(kind string, h Handler, opts *KindOpts) error {
	_, err := l.reg.Register(kind, h, opts)
	return err
}

// Every implements Queue: a goroutine per periodic job enqueues its runs
// from Start on.
func (l *Local) Every(kind string, interval time.Duration, args any) error {
	_, err := l.reg.Every(kind, interval, args)
	return err
}

// Enqueue implements Queue. It does no I/O; it returns ctx's error when
// ctx has ended, ErrStopped after Stop and ErrFull when MaxJobs jobs are
// held.
func (l *Local) Enqueue(ctx context.Context, kind string, args any, opts *EnqueueOpts) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	j, err := l.reg.Prepare(kind, args, opts)
	if err != nil {
		return false, err
	}
	var u *uniqueKey
	if j.UniqueKey != "" {
		u = &uniqueKey{kind: kind, key: j.UniqueKey}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return false, ErrStopped
	}
	return l.insertLocked(j, u, time.Now())
}

func (l *Local) insertLocked(j Job, u *uniqueKey, now time.Time) (bool, error) {
	if u != nil {
		l.purgeLocked(now)
		if _, ok := l.active[*u]; ok {
			return false, nil
		}
		if _, ok := l.done[*u]; ok {
			return false, nil
		}
	}
	if l.held >= l.maxJobs {
		return false, ErrFull
	}
	if u != nil {
		l.active[*u] = struct{}{}
	}
	l.seq++
	lj := &localJob{Job: j, runAt: j.RunAt, seq: l.seq, unique: u}
	if lj.runAt.IsZero() {
		lj.runAt = now
	}
	heap.Push(&l.waiting, lj)
	l.held++
	l.signal()
	return true, nil
}

// purgeLocked forgets the keys of jobs completed longer than the retention
// ago.
func (l *Local) purgeLocked(now time.Time) {
	for len(l.doneOrder) > 0 && now.Sub(l.doneOrder[0].at) >= l.retention {
		d := l.doneOrder[0]
		if at, ok := l.done[d.key]; ok && at.Equal(d.at) {
			delete(l.done, d.key)
		}
		l.doneOrder = l.doneOrder[1:]
	}
}

func (l *Local) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Start implements Queue: it starts the dispatcher and the periodic jobs.
func (l *Local) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.stopped:
		return ErrStopped
	case l.started:
		return nil
	}
	l.reg.Freeze()
	l.started = true
	l.runCtx, l.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	l.wg.Add(1)
	go l.dispatch()
	for _, p := range l.reg.Periodic() {
		t := periodic.New(p.Interval, func(context.Context) { l.enqueuePeriodic(p) })
		if err := t.Start(ctx); err != nil { // a new task always starts
			return fmt.Errorf("jobs: start: %w", err)
		}
		l.tasks = append(l.tasks, t)
	}
	return nil
}

// enqueuePeriodic enqueues one run of p unless the previous one is still
// held.
func (l *Local) enqueuePeriodic(p Periodic) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	j := Job{Kind: p.Kind, Args: p.Args, MaxAttempts: p.Kind.Opts.MaxAttempts}
	if _, err := l.insertLocked(j, &uniqueKey{kind: p.Kind.Name, periodic: true}, time.Now()); err != nil {
		l.logger.WarnContext(l.runCtx, "jobs: periodic run not enqueued", slog.String("kind", p.Kind.Name), slog.Any("error", err))
	}
}

// dispatch starts the jobs that are due while workers are free, and sleeps
// until the next one is due or something changes.
func (l *Local) dispatch() {
	defer l.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		l.mu.Lock()
		now := time.Now()
		for !l.stopped && l.running < l.workers && len(l.waiting) > 0 && !l.waiting[0].runAt.After(now) {
			j := heap.Pop(&l.waiting).(*localJob)
			l.running++
			l.wg.Add(1)
			go l.work(j)
		}
		next := time.Duration(-1)
		if l.running < l.workers && len(l.waiting) > 0 {
			next = l.waiting[0].runAt.Sub(now)
		}
		l.mu.Unlock()
		if next >= 0 {
			timer.Reset(next)
		}
		select {
		case <-l.quit:
			timer.Stop()
			return
		case <-l.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// work runs one attempt of j and settles what comes of it.
func (l *Local) work(j *localJob) {
	defer l.wg.Done()
	j.attempt++
	err := j.Kind.Run(l.runCtx, j.Args)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running--
	l.settleLocked(j, err, time.Now())
	l.signal()
}

func (l *Local) settleLocked(j *localJob, err error, now time.Time) {
	attrs := []any{slog.String("kind", j.Kind.Name), slog.Int("attempt", j.attempt)}
	if err != nil {
		attrs = append(attrs, slog.Any("error", err))
		var p *PanicError
		if errors.As(err, &p) {
			attrs = append(attrs, slog.String("stack", string(p.Stack)))
		}
	}
	if d, ok := SnoozedFor(err); ok && !IsPermanent(err) {
		j.attempt--
		j.runAt = now.Add(d)
		heap.Push(&l.waiting, j)
		return
	}
	switch {
	case err == nil:
		l.releaseLocked(j, true, now)
	case IsPermanent(err) || j.attempt >= j.MaxAttempts:
		l.logger.ErrorContext(l.runCtx, "jobs: job failed for good", attrs...)
		l.releaseLocked(j, false, now)
	default:
		l.logger.WarnContext(l.runCtx, "jobs: attempt failed; will retry", attrs...)
		j.runAt = now.Add(j.Kind.Opts.Backoff(j.attempt))
		heap.Push(&l.waiting, j)
	}
}

// releaseLocked lets go of a job that completed or failed for good.
func (l *Local) releaseLocked(j *localJob, completed bool, now time.Time) {
	l.held--
	if j.unique == nil {
		return
	}
	delete(l.active, *j.unique)
	if completed && !j.unique.periodic {
		l.done[*j.unique] = now
		l.doneOrder = append(l.doneOrder, doneKey{key: *j.unique, at: now})
	}
}

// Stop implements Queue. The jobs still waiting are dropped with the
// Local.
func (l *Local) Stop(ctx context.Context) error {
	l.mu.Lock()
	if !l.stopped {
		l.stopped = true
		l.reg.Freeze()
		close(l.quit)
		if l.started {
			go func() {
				l.wg.Wait()
				close(l.allDone)
			}()
		} else {
			close(l.allDone)
		}
	}
	tasks := l.tasks
	l.mu.Unlock()

	var errs []error
	for _, t := range tasks {
		errs = append(errs, t.Stop(ctx))
	}
	select {
	case <-l.allDone:
	case <-ctx.Done():
		select {
		case <-l.allDone:
		default:
			l.cancelRun()
			return fmt.Errorf("jobs: stop: %w", ctx.Err())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("jobs: stop: %w", err)
	}
	return nil
}

// jobHeap orders jobs by run time, then by insertion.
type jobHeap []*localJob

func (h jobHeap) Len() int { return len(h) }
func (h jobHeap) Less(i, j int) bool {
	if !h[i].runAt.Equal(h[j].runAt) {
		return h[i].runAt.Before(h[j].runAt)
	}
	return h[i].seq < h[j].seq
}
func (h jobHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)   { *h = append(*h, x.(*localJob)) }
func (h *jobHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return x
}
