package periodic_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/adshare/adshare/internal/periodic"
)

// Not parallel: goleak sees the whole process.
func TestNothingRunsBeforeStartNorAfterStop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	before := goleak.IgnoreCurrent()
	var runs atomic.Int64
	task := periodic.New(time.Millisecond, func(context.Context) { runs.Add(1) })
	time.Sleep(10 * time.Millisecond)
	require.Zero(t, runs.Load(), "New starts nothing")
	require.NoError(t, goleak.Find(before))

	ctx := context.Background()
	require.NoError(t, task.Start(ctx))
	require.NoError(t, task.Start(ctx), "a second Start is a no-op")
	require.Eventually(t, func() bool { return runs.Load() >= 3 }, 5*time.Second, time.Millisecond)
	require.NoError(t, task.Stop(ctx))
	n := runs.Load()
	time.Sleep(10 * time.Millisecond)
	require.Equal(t, n, runs.Load(), "nothing runs after Stop")
	require.NoError(t, task.Stop(ctx), "a second Stop is a no-op")
	require.ErrorIs(t, task.Start(ctx), periodic.ErrStopped)
}

func TestStopCancelsTheRunInProgress(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	var cancelled atomic.Bool
	task := periodic.New(time.Millisecond, func(ctx context.Context) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		cancelled.Store(true)
	})
	require.NoError(t, task.Start(context.Background()))
	<-started
	require.NoError(t, task.Stop(context.Background()))
	require.True(t, cancelled.Load())
}

func TestStopBeforeStartAndAStartContextThatEnds(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	task := periodic.New(time.Millisecond, func(context.Context) { runs.Add(1) })
	require.NoError(t, task.Stop(context.Background()))
	require.ErrorIs(t, task.Start(context.Background()), periodic.ErrStopped)

	other := periodic.New(time.Millisecond, func(context.Context) { runs.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, other.Start(ctx))
	cancel()
	n := runs.Load()
	require.Eventually(t, func() bool { return runs.Load() > n+2 }, 5*time.Second, time.Millisecond,
		"only Stop ends the task, not the end of Start's context")
	require.NoError(t, other.Stop(context.Background()))
}

func TestStopGivesUpWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	task := periodic.New(time.Millisecond, func(context.Context) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-release // ignores its context
	})
	require.NoError(t, task.Start(context.Background()))
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, task.Stop(ctx), context.DeadlineExceeded)
	close(release)
	require.NoError(t, task.Stop(context.Background()))
}
