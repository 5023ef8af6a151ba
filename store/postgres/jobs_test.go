package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"

	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/internal/jobs/jobstest"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// testJobs is the queue config of the tests: retries and RunAt are noticed
// within 50ms rather than a second.
var testJobs = &postgres.JobsConfig{PollInterval: 50 * time.Millisecond}

func newJobs(t *testing.T, db *postgres.DB) *postgres.Jobs {
	t.Helper()
	q, err := db.Jobs(testJobs)
	require.NoError(t, err)
	return q
}

func TestJobs(t *testing.T) {
	t.Parallel()
	jobstest.Run(t, func(t *testing.T) jobs.Queue { return newJobs(t, postgrestest.New(t)) })
}

// Two instances on one schema share its jobs: each job runs once in all,
// and a periodic job's runs never overlap, whichever instance runs them.
func TestJobsTwoInstancesRunEachJobOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := postgrestest.URL(t)
	var (
		mu         sync.Mutex
		runs       = make(map[string]int)
		byInstance [2]int
		ticks      atomic.Int64
		overlap    jobstest.Gauge
	)
	queues := make([]*postgres.Jobs, 2)
	for i := range queues {
		db, err := postgres.Open(ctx, url, nil)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, db.Stop(context.Background())) })
		_, err = db.Migrate(ctx)
		require.NoError(t, err)
		q := newJobs(t, db)
		require.NoError(t, q.Register("test.settle", jobs.Typed(func(_ context.Context, key string) error {
			mu.Lock()
			runs[key]++
			byInstance[i]++
			mu.Unlock()
			time.Sleep(time.Millisecond) // long enough for the other instance to try
			return nil
		}), nil))
		require.NoError(t, q.Register("test.tick", func(context.Context, json.RawMessage) error {
			overlap.Enter()
			time.Sleep(200 * time.Millisecond) // longer than the interval
			overlap.Leave()
			ticks.Add(1)
			return nil
		}, nil))
		require.NoError(t, q.Every("test.tick", 50*time.Millisecond, nil))
		queues[i] = q
	}
	for _, q := range queues {
		require.NoError(t, q.Start(ctx))
	}

	// Both instances enqueue the same 100 settlements, at once.
	const n = 100
	var inserted atomic.Int64
	var g errgroup.Group
	for _, q := range queues {
		for i := range n {
			g.Go(func() error {
				key := fmt.Sprintf("owner-%d/2026-01-01", i)
				ok, err := q.Enqueue(ctx, "test.settle", key, &jobs.EnqueueOpts{UniqueKey: key})
				if ok {
					inserted.Add(1)
				}
				return err
			})
		}
	}
	require.NoError(t, g.Wait())
	require.EqualValues(t, n, inserted.Load(), "each settlement is inserted once")

	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		var sum int
		for _, c := range runs {
			sum += c
		}
		return sum
	}
	require.Eventually(t, func() bool { return total() >= n }, time.Minute, 10*time.Millisecond)
	require.Eventually(t, func() bool { return ticks.Load() >= 3 }, time.Minute, 10*time.Millisecond)
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, runs, n)
	for key, c := range runs {
		require.Equal(t, 1, c, "%s ran once in all", key)
	}
	t.Logf("runs by instance: %v; periodic runs: %d", byInstance, ticks.Load())
	require.EqualValues(t, 1, overlap.Most(), "the periodic job's runs never overlap across instances")
}

// River's tables are in the DB's own schema: two schemas share none, and
// migrating down past migration 6 removes them.
func TestJobsTablesLiveInTheDBSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := postgrestest.New(t), postgrestest.New(t)
	schemaOf := func(db *postgres.DB) string {
		var s string
		require.NoError(t, db.Pool().QueryRow(ctx, `SELECT current_schema()`).Scan(&s))
		return s
	}
	riverTables := func(db *postgres.DB, schema string) int {
		var n int
		require.NoError(t, db.Pool().QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
			WHERE table_schema = $1 AND table_name IN ('river_job', 'river_leader', 'river_migration', 'river_queue')`, schema).Scan(&n))
		return n
	}
	for _, db := range []*postgres.DB{a, b} {
		require.Equal(t, 4, riverTables(db, schemaOf(db)))
	}
	require.NotEqual(t, schemaOf(a), schemaOf(b))

	qa := newJobs(t, a)
	require.NoError(t, qa.Register("test.here", func(context.Context, json.RawMessage) error { return nil }, nil))
	_, err := qa.Enqueue(ctx, "test.here", nil, nil)
	require.NoError(t, err)
	count := func(db *postgres.DB) int {
		var n int
		require.NoError(t, db.Pool().QueryRow(ctx, `SELECT count(*) FROM river_job WHERE args->>'kind' = 'test.here'`).Scan(&n))
		return n
	}
	require.Equal(t, 1, count(a))
	require.Zero(t, count(b), "another schema does not see the job")

	statuses, err := b.MigrationStatuses(ctx)
	require.NoError(t, err)
	var found bool
	for _, s := range statuses {
		if s.Version == 6 {
			found = true
			require.True(t, s.Applied)
			require.Contains(t, s.Name, "river")
		}
	}
	require.True(t, found, "River's tables are migration 6")
	for {
		v, err := b.MigrateDown(ctx)
		require.NoError(t, err)
		if v == 6 {
			break
		}
	}
	require.Zero(t, riverTables(b, schemaOf(b)), "migrating down past 6 drops River's tables")
	require.Equal(t, 4, riverTables(a, schemaOf(a)), "and only in its own schema")
	_, err = b.Migrate(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, riverTables(b, schemaOf(b)))
}

// A job enqueued in a transaction commits or rolls back with it.
func TestJobsEnqueueTxCommitsWithTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.New(t)
	_, err := db.EnqueueTx(ctx, nil, "test.tx", nil, nil)
	require.ErrorIs(t, err, postgres.ErrNoJobs)

	q := newJobs(t, db)
	ran := make(chan string, 10)
	require.NoError(t, q.Register("test.tx", jobs.Typed(func(_ context.Context, s string) error {
		ran <- s
		return nil
	}), nil))
	_, err = db.Pool().Exec(ctx, `CREATE TABLE scratch (note text)`)
	require.NoError(t, err)
	write := func(note string, commit bool) {
		t.Helper()
		tx, err := db.Pool().Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		_, err = tx.Exec(ctx, `INSERT INTO scratch VALUES ($1)`, note)
		require.NoError(t, err)
		inserted, err := db.EnqueueTx(ctx, tx, "test.tx", note, &jobs.EnqueueOpts{UniqueKey: note})
		require.NoError(t, err)
		require.True(t, inserted)
		if commit {
			require.NoError(t, tx.Commit(ctx))
		}
	}
	write("rolled back", false)
	write("committed", true)
	require.NoError(t, q.Start(ctx))
	require.Equal(t, "committed", jobstest.Receive(t, ran, "run of the committed job"))
	var jobsLeft int
	require.NoError(t, db.Pool().QueryRow(ctx, `SELECT count(*) FROM river_job WHERE args->>'key' = 'rolled back'`).Scan(&jobsLeft))
	require.Zero(t, jobsLeft, "the rolled-back job was never inserted")
	select {
	case s := <-ran:
		t.Fatalf("%q ran", s)
	case <-time.After(500 * time.Millisecond):
	}
}

func TestJobsConfigAndMisuse(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	_, err := db.Jobs(&postgres.JobsConfig{RescueAfter: time.Minute})
	require.Error(t, err, "RescueAfter must exceed the default timeout")
	_, err = db.Jobs(&postgres.JobsConfig{Workers: -1})
	require.Error(t, err)
	q, err := db.Jobs(&postgres.JobsConfig{RescueAfter: 2 * time.Hour})
	require.NoError(t, err)
	_, err = db.Jobs(nil)
	require.Error(t, err, "one queue per DB")
	h := func(context.Context, json.RawMessage) error { return nil }
	require.ErrorIs(t, q.Register("test.long", h, &jobs.KindOpts{Timeout: 2 * time.Hour}), jobs.ErrInvalid,
		"a Timeout past RescueAfter would have a running job run again")
	require.NoError(t, q.Register("test.long", h, &jobs.KindOpts{Timeout: time.Hour}))
}

// A River upgrade that brings migrations of its own needs an adshare
// migration that applies them: this test fails until there is one.
func TestRiverSchemaVersionIsRiversLatest(t *testing.T) {
	t.Parallel()
	m, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	require.NoError(t, err)
	all := m.AllVersions()
	require.Equal(t, postgres.RiverSchemaVersion, all[len(all)-1].Version)
}

// Stop of the DB stops its queue, and leaves none of River's goroutines.
// Not parallel: goleak sees the whole process.
func TestJobsStopLeavesNoGoroutine(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ctx := context.Background()
	url := postgrestest.URL(t)
	db, err := postgres.Open(ctx, url, nil)
	require.NoError(t, err)
	_, err = db.Migrate(ctx)
	require.NoError(t, err)
	q := newJobs(t, db)
	ran := make(chan struct{}, 100)
	require.NoError(t, q.Register("test.leak", func(context.Context, json.RawMessage) error {
		ran <- struct{}{}
		return nil
	}, nil))
	require.NoError(t, q.Every("test.leak", 20*time.Millisecond, nil))
	require.NoError(t, q.Start(ctx))
	_, err = q.Enqueue(ctx, "test.leak", nil, nil)
	require.NoError(t, err)
	for range 3 { // the enqueued job and two periodic runs
		jobstest.Receive(t, ran, "run")
	}
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, db.Stop(stopCtx))
	goleak.VerifyNone(t, ignore)
}
