// Package batch groups concurrent writes into one (group commit): callers
// hand in one item each and wait; a flusher writes whatever has queued up
// in one call and tells every caller in that batch how it went.
//
// Under no load a batch holds one item and adds no delay; under load the
// batches grow by themselves while the previous flush runs, so the cost of
// a commit (a round trip and an fsync) is shared by many callers. Nothing is
// acknowledged before its batch's flush returns.
package batch

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("batch: closed")

// FlushFunc writes a batch. Returning an error fails every item in it.
type FlushFunc[T any] func(ctx context.Context, items []T) error

// Config configures New.
type Config struct {
	// MaxBatch caps the items in one flush. Defaults to 256.
	MaxBatch int
	// Flushers is how many flushes may run at once. Defaults to 1; more
	// overlap round trips when one flush cannot keep the queue short.
	Flushers int
}

type item[T any] struct {
	v    T
	ctx  context.Context
	done chan error
}

// Batcher groups items for a FlushFunc. It is safe for concurrent use.
type Batcher[T any] struct {
	flush    FlushFunc[T]
	maxBatch int
	queue    chan item[T]
	closing  chan struct{}
	once     sync.Once
	wg       sync.WaitGroup

	// mu orders enqueues before Close: Do holds it for reading while it
	// queues, Close takes it to mark the batcher closed, so every queued
	// item is queued before the flushers start their final drain.
	mu     sync.RWMutex
	closed bool
}

// New starts a batcher with its flushers. Close stops it.
func New[T any](flush FlushFunc[T], cfg Config) *Batcher[T] {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.Flushers <= 0 {
		cfg.Flushers = 1
	}
	b := &Batcher[T]{flush: flush, maxBatch: cfg.MaxBatch, queue: make(chan item[T], cfg.MaxBatch*cfg.Flushers), closing: make(chan struct{})}
	for range cfg.Flushers {
		b.wg.Go(b.run)
	}
	return b
}

// Do queues v and waits until its batch is flushed, returning the flush's
// error. When ctx ends first, Do returns ctx's error; the item may still be
// written (the flush does not observe a single caller's cancellation, so a
// batch is never half-cancelled).
func (b *Batcher[T]) Do(ctx context.Context, v T) error {
	it := item[T]{v: v, ctx: ctx, done: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
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

// Close stops accepting items, flushes what is queued and waits for the
// flushers. It is idempotent.
func (b *Batcher[T]) Close() {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.closing)
	})
	b.wg.Wait()
}

func (b *Batcher[T]) run() {
	batch := make([]item[T], 0, b.maxBatch)
	for {
		batch = batch[:0]
		select {
		case it := <-b.queue:
			batch = append(batch, it)
		case <-b.closing:
			// Drain what is left, then stop.
			for {
				select {
				case it := <-b.queue:
					batch = append(batch, it)
					if len(batch) == b.maxBatch {
						b.write(batch)
						batch = batch[:0]
					}
				default:
					if len(batch) > 0 {
						b.write(batch)
					}
					return
				}
			}
		}
	fill:
		for len(batch) < b.maxBatch {
			select {
			case it := <-b.queue:
				batch = append(batch, it)
			default:
				break fill
			}
		}
		b.write(batch)
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
	err := b.flush(ctx, values)
	for _, it := range batch {
		it.done <- err
	}
}
