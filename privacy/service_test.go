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

// eagerQueue is a job queue whose Enqueue returns only once the erasure
// it enqueued is done (the fastest worker there can be), or fails the
// first failFirst enqueues as a store out of reach would.
type eagerQueue struct {
	jobs.Queue
	store     *memory.Store
	failFirst int
}

func (q *eagerQueue) Enqueue(ctx context.Context, kind string, args any, opts *jobs.EnqueueOpts) (bool, error) {
	if q.failFirst > 0 {
		q.failFirst--
		return false, errors.New("the queue's database is out of reach")
	}
	inserted, err := q.Queue.Enqueue(ctx, kind, args, opts)
	if err != nil || kind != privacy.ErasureJobKind {
		return inserted, err
	}
	id := uuid.MustParse(opts.UniqueKey[len("erasure:"):])
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if e, err := q.store.Erasure(ctx, id); err == nil && e.Status == privacy.ErasureDone {
			return inserted, nil
		}
	}
	return inserted, errors.New("the erasure did not finish")
}

// eagerErasures is a privacy service on a memory store whose queue is an
// eagerQueue failing its first failFirst enqueues, started for t.
func eagerErasures(t *testing.T, failFirst int) (*privacy.Service, *memory.Store) {
	t.Helper()
	store := memory.New()
	local, err := jobs.NewLocal(&jobs.LocalConfig{})
	require.NoError(t, err)
	q := &eagerQueue{Queue: local, store: store, failFirst: failFirst}
	svc, err := privacy.NewService(privacy.Config{
		Store: store, Jobs: q, Accounts: &accounts{ended: map[uuid.UUID]int{}}, Audit: store, LinkKey: make([]byte, 32),
	})
	require.NoError(t, err)
	require.NoError(t, q.Start(context.Background()))
	t.Cleanup(func() { _ = q.Stop(context.Background()) })
	return svc, store
}

// TestErasureRequestedIsAuditedBeforeTheJobRuns: the erasure job may run
// to its end before Enqueue returns; the "requested" record, which names
// the user, is then already in the log and rewritten with the rest, so
// no audit record names the erased user.
func TestErasureRequestedIsAuditedBeforeTheJobRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, store := eagerErasures(t, 0)

	user := uuid.New()
	e, created, err := svc.RequestErasure(ctx, auth.Principal{UserID: user, Role: auth.RoleUser}, "right")
	require.NoError(t, err)
	require.True(t, created)
	events, err := store.AuditEvents(ctx, auth.AuditFilter{Limit: 1000})
	require.NoError(t, err)
	var requested bool
	for _, ev := range events {
		require.NotEqual(t, user, ev.ActorID, "audit record %d (%s) names the erased user", ev.ID, ev.Action)
		require.NotEqual(t, user.String(), ev.TargetID, "audit record %d (%s) names the erased user", ev.ID, ev.Action)
		if ev.Action == privacy.AuditErasureRequested {
			requested = true
			require.Equal(t, e.Pseudonym, ev.ActorID, "the requester is the pseudonym now")
		}
	}
	require.True(t, requested, "the request is in the log")
}

// TestARepeatedErasureRequestStartsAnUnqueuedOne: the first request's
// enqueue fails after its record was made; the user's next request gets
// that pending erasure and starts its job, and it is done once.
func TestARepeatedErasureRequestStartsAnUnqueuedOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, store := eagerErasures(t, 1)

	p := auth.Principal{UserID: uuid.New(), Role: auth.RoleUser}
	_, _, err := svc.RequestErasure(ctx, p, "right")
	require.ErrorContains(t, err, "out of reach")
	e, created, err := svc.RequestErasure(ctx, p, "right")
	require.NoError(t, err)
	require.False(t, created, "the second request gets the first, pending erasure")
	got, err := store.Erasure(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, privacy.ErasureDone, got.Status, "the second request started its job")
	events, err := store.AuditEvents(ctx, auth.AuditFilter{Action: privacy.AuditErasureRequested})
	require.NoError(t, err)
	require.Len(t, events, 1, "one request is on record, not two")
}
