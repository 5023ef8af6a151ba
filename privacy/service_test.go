package privacy_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/privacy"
	"github.com/adshare/adshare/store/memory"
)

// accounts is a user system double: everyone may do everything, the
// password is "right", and it counts the sessions ends.
type accounts struct {
	mu    sync.Mutex
	ended map[uuid.UUID]int
}

func (a *accounts) Authorize(context.Context, auth.Principal, auth.Permission) error { return nil }

func (a *accounts) Reauthenticate(_ context.Context, _ auth.Principal, password string, _ time.Duration) error {
	if password != "right" {
		return auth.ErrInvalidCredentials
	}
	return nil
}

func (a *accounts) EndAllSessions(_ context.Context, user uuid.UUID, _ string) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ended[user]++
	return 1, nil
}

func (a *accounts) UserByID(context.Context, uuid.UUID) (auth.User, error) { return auth.User{}, nil }

func (a *accounts) ends(user uuid.UUID) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ended[user]
}

// TestErasureResumesAfterAFailedStep fails a step once: the job is
// retried and resumes at that step, without running the steps before it
// again, and finishes.
func TestErasureResumesAfterAFailedStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memory.New()
	q, err := jobs.NewLocal(&jobs.LocalConfig{})
	require.NoError(t, err)
	acc := &accounts{ended: map[uuid.UUID]int{}}
	var mu sync.Mutex
	calls := 0
	svc, err := privacy.NewService(privacy.Config{
		Store: store, Jobs: q, Accounts: acc, Audit: store, LinkKey: make([]byte, 32),
		Steps: []privacy.Step{{Name: "flaky", Run: func(context.Context, uuid.UUID) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				return errors.New("the ad server is down")
			}
			return nil
		}}},
	})
	require.NoError(t, err)
	require.NoError(t, q.Start(ctx))
	t.Cleanup(func() { _ = q.Stop(context.Background()) })

	user := uuid.New()
	p := auth.Principal{UserID: user, Role: auth.RoleUser}
	_, _, err = svc.RequestErasure(ctx, p, "wrong")
	require.ErrorIs(t, err, auth.ErrInvalidCredentials)
	e, created, err := svc.RequestErasure(ctx, p, "right")
	require.NoError(t, err)
	require.True(t, created)
	require.Eventually(t, func() bool {
		got, err := store.Erasure(ctx, e.ID)
		return err == nil && got.Status == privacy.ErasureDone
	}, 10*time.Second, 10*time.Millisecond, "the retry (after jobs.DefaultMinBackoff) finishes it")
	got, err := store.Erasure(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, []string{privacy.StepSessions, "flaky", privacy.StepStores}, got.Steps)
	require.Equal(t, 2, acc.ends(user), "the sessions step, done before the failure, did not run again (the stores step ends sessions once more)")
	mu.Lock()
	require.Equal(t, 2, calls)
	mu.Unlock()
	require.Equal(t, uuid.Nil, got.User)
}

// TestAStaleExportIsStartedOver: an export pending for longer than
// StaleExportAfter (its job failed for good) does not block a new one.
func TestAStaleExportIsStartedOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memory.New()
	q, err := jobs.NewLocal(&jobs.LocalConfig{})
	require.NoError(t, err)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	svc, err := privacy.NewService(privacy.Config{
		Store: store, Jobs: q, Accounts: &accounts{ended: map[uuid.UUID]int{}}, Audit: store, LinkKey: make([]byte, 32), Now: clock,
	})
	require.NoError(t, err) // the queue never starts: the export stays pending
	p := auth.Principal{UserID: uuid.New(), Role: auth.RoleUser}
	first, created, err := svc.RequestExport(ctx, p)
	require.NoError(t, err)
	require.True(t, created)
	again, created, err := svc.RequestExport(ctx, p)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, first.ID, again.ID)

	mu.Lock()
	now = now.Add(privacy.StaleExportAfter + time.Minute)
	mu.Unlock()
	next, created, err := svc.RequestExport(ctx, p)
	require.NoError(t, err)
	require.True(t, created)
	require.NotEqual(t, first.ID, next.ID)
	old, err := store.Export(ctx, first.ID)
	require.NoError(t, err)
	require.Equal(t, privacy.ExportFailed, old.Status)
}
