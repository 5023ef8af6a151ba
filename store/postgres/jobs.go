package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/adshare/adshare/internal/jobs"
)

// Defaults of JobsConfig.
const (
	// DefaultJobWorkers is how many jobs one instance runs at once: half
	// of DefaultMaxConns, so that jobs leave connections to requests.
	DefaultJobWorkers = 5
	// DefaultJobPollInterval is how often an idle instance looks for jobs
	// that fell due (retries, RunAt, snoozes).
	DefaultJobPollInterval = time.Second
	// DefaultJobRescueAfter is how long a job may run before it is taken
	// to be lost with its instance and run again.
	DefaultJobRescueAfter = time.Hour
	// DefaultJobRetention is how long a completed job's row, and so its
	// unique key, is kept.
	DefaultJobRetention = 24 * time.Hour
)

// riverKind is River's kind of every adshare job. River registers one
// worker per Go type of arguments, with the kind that type names, while
// adshare's kinds are strings registered at run time; so every job is of
// this one River kind, its adshare kind in its arguments (riverArgs.Name),
// and one worker hands it to the handler registered for that kind.
// Operators find a kind's jobs with args->>'kind'.
const riverKind = "adshare"

// JobsConfig configures DB.Jobs. The zero value (or nil) means every
// default.
type JobsConfig struct {
	// Workers is how many jobs this instance runs at once. Keep it below
	// Config.MaxConns when handlers use the database. It also bounds the
	// rate of short jobs: River fetches at most Workers jobs every 100ms,
	// so an instance runs at most ten times Workers jobs a second.
	// Defaults to DefaultJobWorkers.
	Workers int
	// PollInterval is how often an idle instance looks for jobs that fell
	// due: a new job is noticed at once (LISTEN/NOTIFY), a retry, a snooze
	// or a RunAt within PollInterval of its time (a RunAt or a snooze more
	// than five seconds away may be up to five seconds late). Defaults to
	// DefaultJobPollInterval.
	PollInterval time.Duration
	// RescueAfter is how long a job may be running before it is taken to
	// be lost (its instance died) and run again. Every kind's Timeout must
	// be shorter: Register refuses a kind whose Timeout is not. Defaults to
	// DefaultJobRescueAfter; it must exceed jobs.DefaultTimeout.
	RescueAfter time.Duration
	// Retention is how long a completed job is kept, and with it its
	// unique key (EnqueueOpts.UniqueKey): within it, Enqueue with the same
	// kind and key inserts nothing. Jobs that failed for good are kept
	// seven days, River's default, for operators. Defaults to
	// DefaultJobRetention.
	Retention time.Duration
	// Logger receives River's logs (the failed attempts among them).
	// Defaults to the DB's Config.Logger.
	Logger *slog.Logger
}

// Jobs is the DB's job queue: jobs.Queue on River over the DB's pool.
// Jobs are rows in River's tables in the DB's schema (see Migrate,
// migration 6), so they survive restarts and every instance on the schema
// shares them: a job is locked by the one instance that runs it, and
// periodic jobs are enqueued by the instance River elected leader, one run
// at a time (a unique key per periodic kind held while a run waits, runs or
// retries). Compound operations of the DB enqueue jobs in their own
// database transaction (enqueueTx), so a job and the write that calls for
// it commit or roll back together.
//
// Start starts River's client (its fetchers, the leader election, the
// maintenance of the leader); Stop stops it, and Stop of the DB stops the
// queue first.
type Jobs struct {
	db          *DB
	reg         jobs.Registry
	client      *river.Client[pgx.Tx]
	rescueAfter time.Duration

	mu      sync.Mutex
	started bool
	stopped bool
}

var _ jobs.Queue = (*Jobs)(nil)

// errJobsTwice is returned by a second call of DB.Jobs.
var errJobsTwice = errors.New("postgres: DB.Jobs was called already: use the queue its first call returned (one queue per DB, so that its compound operations enqueue in it)")

// errNoJobs is returned by the DB's compound operations that enqueue jobs
// when no queue was made.
var errNoJobs = errors.New("postgres: no job queue: call DB.Jobs before using operations that enqueue jobs")

// Jobs returns the DB's job queue, configured by cfg (nil for the
// defaults). It starts nothing: Start the queue once its kinds are
// registered. A DB has one queue, which its compound operations enqueue
// in; a second call returns an error. It also returns an error for a
// schema name River cannot use (River wants letters, digits and
// underscores, starting with a letter or underscore, at most 46 bytes).
// The schema must have been migrated (Migrate) before the queue starts or
// enqueues.
func (db *DB) Jobs(cfg *JobsConfig) (*Jobs, error) {
	var c JobsConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Workers < 0 || c.PollInterval < 0 || c.RescueAfter < 0 || c.Retention < 0 {
		return nil, errors.New("postgres: JobsConfig fields cannot be negative")
	}
	c.Workers = cmp.Or(c.Workers, DefaultJobWorkers)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultJobPollInterval)
	c.RescueAfter = cmp.Or(c.RescueAfter, DefaultJobRescueAfter)
	c.Retention = cmp.Or(c.Retention, DefaultJobRetention)
	if c.Logger == nil {
		c.Logger = db.logger
	}
	if c.RescueAfter <= jobs.DefaultTimeout {
		return nil, fmt.Errorf("postgres: JobsConfig.RescueAfter (%s) must exceed jobs.DefaultTimeout (%s)", c.RescueAfter, jobs.DefaultTimeout)
	}

	q := &Jobs{db: db, rescueAfter: c.RescueAfter}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &riverWorker{q: q}); err != nil {
		return nil, fmt.Errorf("postgres: jobs: %w", err)
	}
	client, err := river.NewClient(riverpgxv5.New(db.pool), &river.Config{
		CompletedJobRetentionPeriod: c.Retention,
		FetchCooldown:               min(river.FetchCooldownDefault, c.PollInterval),
		FetchPollInterval:           c.PollInterval,
		JobTimeout:                  jobs.DefaultTimeout, // each kind says its own (riverWorker.Timeout)
		Logger:                      c.Logger,
		MaxAttempts:                 jobs.DefaultMaxAttempts,
		Queues:                      map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: c.Workers}},
		RescueStuckJobsAfter:        c.RescueAfter,
		// Explicit rather than left to search_path: River prefixes its
		// LISTEN/NOTIFY topics with it, so that instances on other schemas
		// of the database (other tenants, other tests) never hear them.
		Schema:  db.schema,
		Workers: workers,
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: jobs: %w", err)
	}
	q.client = client
	if !db.jobs.CompareAndSwap(nil, q) {
		return nil, errJobsTwice
	}
	return q, nil
}

// Register implements jobs.Queue. It also returns jobs.ErrInvalid for a
// Timeout not shorter than JobsConfig.RescueAfter.
func (q *Jobs) Register(kind string, h jobs.Handler, opts *jobs.KindOpts) error {
	o, err := opts.WithDefaults()
	if err != nil {
		return fmt.Errorf("kind %q: %w", kind, err)
	}
	if o.Timeout >= q.rescueAfter {
		return fmt.Errorf("%w: kind %q: Timeout (%s) must be shorter than JobsConfig.RescueAfter (%s), or a running job would be run again", jobs.ErrInvalid, kind, o.Timeout, q.rescueAfter)
	}
	_, err = q.reg.Register(kind, h, &o)
	return err
}

// Every implements jobs.Queue with a River periodic job: the leader
// enqueues a run every interval, which is skipped while the previous run
// holds the kind's periodic key. After a change of leader the schedule
// starts again from the new leader's start.
func (q *Jobs) Every(kind string, interval time.Duration, args any) error {
	p, err := q.reg.Every(kind, interval, args)
	if err != nil {
		return err
	}
	q.client.PeriodicJobs().Add(river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
		return riverArgs{Name: p.Kind.Name, Periodic: true, Args: p.Args}, &river.InsertOpts{
			MaxAttempts: p.Kind.Opts.MaxAttempts,
			UniqueOpts:  river.UniqueOpts{ByArgs: true, ByState: heldStates},
		}
	}, nil))
	return nil
}

// Enqueue implements jobs.Queue: one INSERT into River's table. After Stop
// it still inserts; another instance, or this one's next start, runs the
// job.
func (q *Jobs) Enqueue(ctx context.Context, kind string, args any, opts *jobs.EnqueueOpts) (bool, error) {
	return q.insert(ctx, nil, kind, args, opts)
}

// insert enqueues a job in tx, or on its own when tx is nil.
func (q *Jobs) insert(ctx context.Context, tx pgx.Tx, kind string, args any, opts *jobs.EnqueueOpts) (bool, error) {
	j, err := q.reg.Prepare(kind, args, opts)
	if err != nil {
		return false, err
	}
	a := riverArgs{Name: j.Kind.Name, Key: j.UniqueKey, Args: j.Args}
	o := &river.InsertOpts{MaxAttempts: j.MaxAttempts, ScheduledAt: j.RunAt}
	if j.UniqueKey != "" {
		o.UniqueOpts = river.UniqueOpts{ByArgs: true, ByState: keptStates}
	}
	var res *rivertype.JobInsertResult
	if tx == nil {
		res, err = q.client.Insert(ctx, a, o)
	} else {
		res, err = q.client.InsertTx(ctx, tx, a, o)
	}
	if err != nil {
		return false, fmt.Errorf("postgres: enqueue %s: %w", kind, err)
	}
	return !res.UniqueSkippedAsDuplicate, nil
}

// Start implements jobs.Queue. It checks that the database answers within
// ctx, then starts River's client, whose services run until Stop.
func (q *Jobs) Start(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.stopped:
		return jobs.ErrStopped
	case q.started:
		return nil
	}
	if err := q.db.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: jobs start: %w", err)
	}
	q.reg.Freeze()
	// River stops hard when its start context ends: only Stop ends it.
	if err := q.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("postgres: jobs start: %w", err)
	}
	q.started = true
	return nil
}

// Stop implements jobs.Queue: River stops fetching, waits for the running
// jobs and their completions to be written, and the leader resigns. When
// ctx ends first, the running jobs' contexts are cancelled.
func (q *Jobs) Stop(ctx context.Context) error {
	q.mu.Lock()
	q.stopped = true
	q.reg.Freeze()
	started := q.started
	q.mu.Unlock()
	if !started {
		return nil
	}
	if err := q.client.Stop(ctx); err != nil {
		// ctx has ended: StopAndCancel cancels the running jobs' contexts
		// and returns at once.
		_ = q.client.StopAndCancel(ctx)
		return fmt.Errorf("postgres: jobs stop: %w", err)
	}
	return nil
}

// enqueueTx enqueues a job in tx, the database transaction of one of the
// DB's compound operations, so that the job commits or rolls back with
// the operation's writes (a payout's record with the job that pays it, a
// settlement's postings with the hold release after it). It returns
// errNoJobs when DB.Jobs was never called, and otherwise what
// jobs.Queue.Enqueue returns; a failed insert leaves tx to be rolled back.
func (db *DB) enqueueTx(ctx context.Context, tx pgx.Tx, kind string, args any, opts *jobs.EnqueueOpts) (bool, error) {
	q := db.jobs.Load()
	if q == nil {
		return false, errNoJobs
	}
	return q.insert(ctx, tx, kind, args, opts)
}

// riverArgs are the arguments of every adshare job in River's table. The
// fields tagged unique make a unique job's key: its kind, its UniqueKey,
// and whether it is a periodic run (whose key a caller cannot give).
type riverArgs struct {
	Name     string          `json:"kind" river:"unique"`
	Key      string          `json:"key,omitempty" river:"unique"`
	Periodic bool            `json:"periodic,omitempty" river:"unique"`
	Args     json.RawMessage `json:"args"`
}

// Kind implements river.JobArgs.
func (riverArgs) Kind() string { return riverKind }

// The states in which a unique job holds its key: heldStates while it
// waits, runs or retries (periodic runs), keptStates also once it
// completed, until River's cleaner deletes it (EnqueueOpts.UniqueKey). A
// job that failed for good (discarded, or cancelled by jobs.Permanent)
// holds none.
var (
	heldStates = []rivertype.JobState{
		rivertype.JobStateAvailable,
		rivertype.JobStatePending,
		rivertype.JobStateRetryable,
		rivertype.JobStateRunning,
		rivertype.JobStateScheduled,
	}
	keptStates = append(append([]rivertype.JobState(nil), heldStates...), rivertype.JobStateCompleted)
)

// riverWorker runs every adshare job: it finds the handler of the job's
// kind and maps what the handler returns to River's outcomes.
type riverWorker struct {
	river.WorkerDefaults[riverArgs]
	q *Jobs
}

// Work implements river.Worker. A kind this instance does not know (one
// registered by a newer version in a rolling deploy) fails the attempt,
// and River's own backoff retries it.
func (w *riverWorker) Work(ctx context.Context, job *river.Job[riverArgs]) error {
	k := w.q.reg.Kind(job.Args.Name)
	if k == nil {
		return fmt.Errorf("postgres: jobs: no handler for kind %q on this instance", job.Args.Name)
	}
	err := k.Run(ctx, job.Args.Args)
	if err == nil {
		return nil
	}
	if jobs.IsPermanent(err) {
		return river.JobCancel(err)
	}
	if d, ok := jobs.SnoozedFor(err); ok {
		return river.JobSnooze(d)
	}
	return err
}

// NextRetry implements river.Worker with the kind's backoff.
func (w *riverWorker) NextRetry(job *river.Job[riverArgs]) time.Time {
	k := w.q.reg.Kind(job.Args.Name)
	if k == nil {
		return time.Time{} // River's default policy
	}
	return time.Now().Add(k.Opts.Backoff(job.Attempt))
}

// Timeout implements river.Worker with the kind's Timeout (which
// jobs.Kind.Run applies too), so that River knows when a job overran.
func (w *riverWorker) Timeout(job *river.Job[riverArgs]) time.Duration {
	if k := w.q.reg.Kind(job.Args.Name); k != nil {
		return k.Opts.Timeout
	}
	return 0 // the client's JobTimeout
}
