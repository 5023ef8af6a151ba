package batch_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/adshare/adshare/internal/batch"
)

func TestConcurrentItemsShareFlushes(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		written []int
		flushes atomic.Int64
	)
	release := make(chan struct{})
	b := batch.New(func(ctx context.Context, items []int) error {
		if flushes.Add(1) == 1 {
			<-release // hold the first flush so the others queue up
		}
		mu.Lock()
		written = append(written, items...)
		mu.Unlock()
		return nil
	}, batch.Config{MaxBatch: 64})
	defer func() { _ = b.Stop(context.Background()) }()

	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() { require.NoError(t, b.Do(context.Background(), i)) })
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	require.Len(t, written, 100, "every item written once")
	require.Less(t, flushes.Load(), int64(10), "items were grouped")
}

func TestFlushErrorFailsTheWholeBatch(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk full")
	b := batch.New(func(ctx context.Context, items []string) error { return boom }, batch.Config{})
	defer func() { _ = b.Stop(context.Background()) }()
	require.ErrorIs(t, b.Do(context.Background(), "x"), boom)
}

func TestCallerCancellationDoesNotCancelTheFlush(t *testing.T) {
	t.Parallel()
	var sawCancel atomic.Bool
	started := make(chan struct{})
	b := batch.New(func(ctx context.Context, items []int) error {
		close(started)
		time.Sleep(20 * time.Millisecond)
		sawCancel.Store(ctx.Err() != nil)
		return nil
	}, batch.Config{})
	defer func() { _ = b.Stop(context.Background()) }()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	require.ErrorIs(t, b.Do(ctx, 1), context.Canceled)
	require.NoError(t, b.Stop(context.Background()))
	require.False(t, sawCancel.Load())
}

func TestStopFlushesWhatIsQueuedThenRefuses(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	b := batch.New(func(ctx context.Context, items []int) error {
		time.Sleep(time.Millisecond)
		n.Add(int64(len(items)))
		return nil
	}, batch.Config{MaxBatch: 4, Flushers: 2})
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() { _ = b.Do(context.Background(), i) })
	}
	wg.Wait()
	require.NoError(t, b.Stop(context.Background()))
	require.NoError(t, b.Stop(context.Background()))
	require.Equal(t, int64(40), n.Load())
	require.ErrorIs(t, b.Do(context.Background(), 1), batch.ErrClosed)
}

func TestWeightCapsABatch(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		batches [][]int
	)
	release := make(chan struct{})
	var first atomic.Bool
	b := batch.NewWeighted(func(ctx context.Context, items []int) error {
		if first.CompareAndSwap(false, true) {
			<-release
		}
		mu.Lock()
		batches = append(batches, items)
		mu.Unlock()
		return nil
	}, func(v int) int { return v }, batch.Config{MaxBatch: 10})
	defer func() { _ = b.Stop(context.Background()) }()

	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, b.Do(context.Background(), 1)) })
	require.Eventually(t, first.Load, time.Second, time.Millisecond)
	for _, w := range []int{4, 4, 4, 25, 3, 3} {
		wg.Go(func() { require.NoError(t, b.Do(context.Background(), w)) })
	}
	time.Sleep(20 * time.Millisecond) // let them queue behind the held flush
	close(release)
	wg.Wait()

	total := 0
	for _, items := range batches {
		sum := 0
		for _, w := range items {
			sum += w
		}
		total += sum
		require.True(t, sum <= 10 || len(items) == 1, "batch %v weighs %d", items, sum)
	}
	require.Equal(t, 1+4+4+4+25+3+3, total, "every item written once")
}

func TestSecondFlushWaitsForABackedUpQueue(t *testing.T) {
	t.Parallel()
	started := make(chan int, 10)
	release := make(chan struct{})
	b := batch.New(func(ctx context.Context, items []int) error {
		started <- len(items)
		<-release
		return nil
	}, batch.Config{MaxBatch: 100, Flushers: 2, ParallelAt: 5})
	defer func() { _ = b.Stop(context.Background()) }()

	var wg sync.WaitGroup
	do := func(n int) {
		for range n {
			wg.Go(func() { require.NoError(t, b.Do(context.Background(), 0)) })
		}
	}
	do(1)
	require.Equal(t, 1, <-started, "the first item is flushed at once")
	do(4)
	select {
	case n := <-started:
		t.Fatalf("a second flush of %d started with less than ParallelAt waiting", n)
	case <-time.After(50 * time.Millisecond):
	}
	do(1)
	select {
	case n := <-started:
		require.Equal(t, 5, n, "the waiting items go out together")
	case <-time.After(5 * time.Second):
		t.Fatal("no second flush once ParallelAt items waited")
	}
	close(release)
	wg.Wait()
}

// Not parallel: goleak sees every goroutine of the process, and the
// parallel tests only start once the sequential ones are done.
func TestNoGoroutineBeforeTheFirstItemNorAfterStop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	before := goleak.IgnoreCurrent()
	b := batch.New(func(ctx context.Context, items []int) error { return nil }, batch.Config{})
	require.NoError(t, goleak.Find(before), "a new batcher must not start a goroutine")
	require.NoError(t, b.Do(context.Background(), 1))
	require.Error(t, goleak.Find(before), "the first item starts the dispatcher")
	require.NoError(t, b.Stop(context.Background()))

	unused := batch.New(func(ctx context.Context, items []int) error { return nil }, batch.Config{})
	require.NoError(t, unused.Stop(context.Background()), "Stop before any item returns at once")
	require.ErrorIs(t, unused.Do(context.Background(), 1), batch.ErrClosed)
}

func TestStopGivesUpWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	b := batch.New(func(ctx context.Context, items []int) error {
		close(started)
		<-release
		return nil
	}, batch.Config{})
	done := make(chan error, 1)
	go func() { done <- b.Do(context.Background(), 1) }()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, b.Stop(ctx), context.DeadlineExceeded)
	close(release)
	require.NoError(t, <-done, "the flush in progress still completes")
	require.NoError(t, b.Stop(context.Background()))
}

func TestFlushTimeoutFailsAHungFlush(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	b := batch.New(func(ctx context.Context, items []int) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-release:
			return nil
		}
	}, batch.Config{FlushTimeout: 50 * time.Millisecond})
	defer func() { _ = b.Stop(context.Background()) }()
	began := time.Now()
	err := b.Do(context.Background(), 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(began), 2*time.Second)
	// The batcher is not stalled: the next flush runs (and times out too).
	require.ErrorIs(t, b.Do(context.Background(), 2), context.DeadlineExceeded)
}
