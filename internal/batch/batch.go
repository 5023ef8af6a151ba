// Package batch groups concurrent writes into one (group commit): callers
// hand in one item each and wait; a flush writes whatever has queued up in
// one call and tells every caller in that batch how it went.
//
// Under no load a batch holds one item and adds no delay; under load the
// batches grow by themselves while the previous flush runs, so the cost of
// a commit (a round trip and an fsync) is shared by many callers. Nothing is
// acknowledged before its batch's flush returns.
//
// Flushes run one at a time until the queue backs up: a second flush
// starting as soon as the first did would split the waiting items into two
// small batches, each paying the whole cost of a commit, which is what
// group commit is there to avoid. So another flush starts beside a running
// one only once Config.ParallelAt worth of items wait; until then they
// wait for the running flush and go out together after it.
package batch

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrClosed is returned by Do after Stop.
var ErrClosed = errors.New("batch: closed")

// FlushFunc writes a batch. Returning an error fails every item in it.
type FlushFunc[T any] func(ctx context.Context, items []T) error

// Config configures New. Sizes are in units of the weight New is given
// (one per item by default).
type Config struct {
	// MaxBatch caps the weight of one flush; an item heavier than that is
	// flushed alone. Defaults to 256.
	MaxBatch int
	// Flushers is how many flushes may run at once. Defaults to 1.
	Flushers int
	// ParallelAt is the weight that must be waiting for a flush to start
	// while another runs. Defaults to MaxBatch/4.
	ParallelAt int
	// FlushTimeout, when positive, bounds one flush: a store that holds
	// its connection without answering fails the flush (and every caller
	// waiting on it) instead of stalling the batcher for good.
	FlushTimeout time.Duration
}

type item[T any] struct {
	v      T
	weight int
	ctx    context.Context
	done   chan error
}

// Batcher groups items for a FlushFunc. It is safe for concurrent use.
type Batcher[T any] struct {
	flush  FlushFunc[T]
	weight func(T) int
	cfg    Config
	queue  chan item[T]
	// closing is closed by Stop; stopped when the dispatcher has flushed
	// everything and returned.
	closing chan struct{}
	stopped chan struct{}
	once    sync.Once
	// dispatching starts the dispatcher with the first item (or at Stop,
	// which then finds nothing to flush).
	dispatching sync.Once

	// mu orders enqueues before Stop: Do holds it for reading while it
	// queues, Stop takes it to mark the batcher closed, so every queued
	// item is in the queue before the dispatcher's final drain.
	mu     sync.RWMutex
	closed bool
}

// New returns a batcher in which every item weighs one. Stop ends it.
func New[T any](flush FlushFunc[T], cfg Config) *Batcher[T] {
	return NewWeighted(flush, nil, cfg)
}

// NewWeighted returns a batcher in which an item weighs weight(item) (at
// least one): a request carrying a hundred events can count as a hundred.
// A nil weight weighs every item one. Stop ends it.
func NewWeighted[T any](flush FlushFunc[T], weight func(T) int, cfg Config) *Batcher[T] {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.Flushers <= 0 {
		cfg.Flushers = 1
	}
	if cfg.ParallelAt <= 0 {
		cfg.ParallelAt = max(1, cfg.MaxBatch/4)
	}
	if weight == nil {
		weight = func(T) int { return 1 }
	}
	b := &Batcher[T]{
		flush: flush, weight: weight, cfg: cfg,
		queue:   make(chan item[T], cfg.MaxBatch),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	return b
}

// Do queues v and waits until its batch is flushed, returning the flush's
// error. When ctx ends first, Do returns ctx's error; the item may still be
// written (the flush does not observe a single caller's cancellation, so a
// batch is never half-cancelled).
func (b *Batcher[T]) Do(ctx context.Context, v T) error {
	it := item[T]{v: v, weight: max(1, b.weight(v)), ctx: ctx, done: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	b.dispatching.Do(func() { go b.dispatch() })
	select {
	case b.queue <- it:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop stops accepting items (Do then returns ErrClosed), flushes what is
// queued and waits for every flush to finish, or for ctx to end: then it
// returns ctx's error and the flushes finish in the background. It is
// idempotent and safe to call before any item was queued.
func (b *Batcher[T]) Stop(ctx context.Context) error {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.closing)
		b.dispatching.Do(func() { close(b.stopped) }) // never started: nothing queued
	})
	select {
	case <-b.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dispatch gathers queued items into batches and starts their flushes, at
// most cfg.Flushers at once.
func (b *Batcher[T]) dispatch() {
	defer close(b.stopped)
	var (
		pending  []item[T]
		weight   int // of pending
		running  int
		finished = make(chan struct{}, b.cfg.Flushers)
		closing  = b.closing
	)
	// take moves what is queued right now into pending, up to a bound that
	// keeps memory in check (the queue's own buffer then backs callers up).
	take := func() {
		for weight < b.cfg.MaxBatch*b.cfg.Flushers {
			select {
			case it := <-b.queue:
				pending = append(pending, it)
				weight += it.weight
			default:
				return
			}
		}
	}
	for {
		// Start flushes while allowed: the first at once, more only when
		// enough waits (or when closing, to finish sooner).
		for len(pending) > 0 && running < b.cfg.Flushers &&
			(running == 0 || weight >= b.cfg.ParallelAt || closing == nil) {
			n, w := 1, pending[0].weight
			for n < len(pending) && w+pending[n].weight <= b.cfg.MaxBatch {
				w += pending[n].weight
				n++
			}
			batch := make([]item[T], n)
			copy(batch, pending)
			pending, weight = pending[n:], weight-w
			running++
			go func() {
				b.write(batch)
				finished <- struct{}{}
			}()
		}
		if closing == nil && len(pending) == 0 && running == 0 {
			return
		}
		queue := b.queue
		if weight >= b.cfg.MaxBatch*b.cfg.Flushers {
			queue = nil // full: let callers wait in the queue's buffer
		}
		select {
		case it := <-queue:
			pending = append(pending, it)
			weight += it.weight
			take()
		case <-finished:
			running--
		case <-closing:
			// Stop holds no more enqueues back: what is queued is all
			// there will be.
			closing = nil
		drain:
			for {
				select {
				case it := <-b.queue:
					pending = append(pending, it)
					weight += it.weight
				default:
					break drain
				}
			}
		}
	}
}

func (b *Batcher[T]) write(batch []item[T]) {
	values := make([]T, len(batch))
	for i, it := range batch {
		values[i] = it.v
	}
	// The flush runs on its own context: one caller's cancellation must not
	// fail everyone else's write. The first item's values (deadline aside)
	// are kept for tracing.
	ctx := context.WithoutCancel(batch[0].ctx)
	if b.cfg.FlushTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.FlushTimeout)
		defer cancel()
	}
	err := b.flush(ctx, values)
	for _, it := range batch {
		it.done <- err
	}
}
