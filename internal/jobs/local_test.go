package jobs_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/internal/jobs/jobstest"
)

func newLocal(t *testing.T, cfg *jobs.LocalConfig) *jobs.Local {
	t.Helper()
	q, err := jobs.NewLocal(cfg)
	require.NoError(t, err)
	return q
}

func TestLocal(t *testing.T) {
	t.Parallel()
	jobstest.Run(t, func(t *testing.T) jobs.Queue { return newLocal(t, nil) })
}

// Not parallel: goleak sees the whole process.
func TestLocalStopLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	q := newLocal(t, &jobs.LocalConfig{Workers: 3})
	ran := make(chan struct{}, 10)
	require.NoError(t, q.Register("test.leak", func(ctx context.Context, _ json.RawMessage) error {
		ran <- struct{}{}
		return nil
	}, nil))
	require.NoError(t, q.Every("test.leak", 10*time.Millisecond, nil))
	require.NoError(t, q.Start(ctx))
	for range 5 {
		_, err := q.Enqueue(ctx, "test.leak", nil, nil)
		require.NoError(t, err)
	}
	for range 6 {
		<-ran
	}
	require.NoError(t, q.Stop(ctx))
}

func TestLocalBoundsTheJobsItHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := newLocal(t, &jobs.LocalConfig{MaxJobs: 2})
	require.NoError(t, q.Register("test.held", func(context.Context, json.RawMessage) error { return nil }, nil))
	for range 2 {
		inserted, err := q.Enqueue(ctx, "test.held", nil, nil)
		require.NoError(t, err)
		require.True(t, inserted)
	}
	inserted, err := q.Enqueue(ctx, "test.held", nil, nil)
	require.ErrorIs(t, err, jobs.ErrFull)
	require.False(t, inserted)
	require.NoError(t, q.Stop(ctx))
	_, err = q.Enqueue(ctx, "test.held", nil, nil)
	require.ErrorIs(t, err, jobs.ErrStopped)
}

func TestLocalForgetsCompletedKeysAfterTheRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const retention = 200 * time.Millisecond
	q := newLocal(t, &jobs.LocalConfig{Retention: retention})
	done := make(chan struct{}, 2)
	require.NoError(t, q.Register("test.kept", func(context.Context, json.RawMessage) error {
		done <- struct{}{}
		return nil
	}, nil))
	require.NoError(t, q.Start(ctx))
	defer func() { require.NoError(t, q.Stop(ctx)) }()
	key := &jobs.EnqueueOpts{UniqueKey: "k"}
	inserted, err := q.Enqueue(ctx, "test.kept", nil, key)
	require.NoError(t, err)
	require.True(t, inserted)
	<-done
	completed := time.Now()
	require.Eventually(t, func() bool {
		inserted, err := q.Enqueue(ctx, "test.kept", nil, key)
		return err == nil && inserted
	}, 10*time.Second, 10*time.Millisecond)
	require.GreaterOrEqual(t, time.Since(completed), retention/2, "the key was kept after the job completed")
	<-done
}

func TestNewLocalRefusesNegativeConfig(t *testing.T) {
	t.Parallel()
	_, err := jobs.NewLocal(&jobs.LocalConfig{Workers: -1})
	require.ErrorIs(t, err, jobs.ErrInvalid)
}
