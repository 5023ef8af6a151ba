package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Handler does the work of one job, given the job's arguments as they were
// encoded at Enqueue. It must be idempotent: see the package doc. Returning
// nil completes the job; returning an error fails the attempt, which is
// retried with backoff unless it was the kind's last attempt or the error
// is [Permanent]; returning [Snooze] runs the job again later without using
// up an attempt.
type Handler func(ctx context.Context, args json.RawMessage) error

// Queue runs durable background jobs. Implementations: store/postgres's
// Jobs (River) and [Local]. It is safe for concurrent use.
type Queue interface {
	// Register says that h runs the jobs of kind, with opts (nil for the
	// defaults). Every kind a queue enqueues or runs is registered on it,
	// before Start. It returns ErrStarted once Start (or Stop) was
	// called, ErrKindExists when kind is registered already, and
	// ErrInvalid for a malformed kind (see [ValidKind]) or opts that break
	// a rule (a negative field, MinBackoff above MaxBackoff, a Timeout the
	// queue cannot honour).
	Register(kind string, h Handler, opts *KindOpts) error

	// Enqueue adds a job of kind whose handler gets args encoded as JSON.
	// With opts.UniqueKey set and a job of the same kind and key waiting,
	// running, retrying, or completed within the queue's retention, it
	// inserts nothing and returns inserted=false and a nil error.
	//
	// It returns ErrUnknownKind when kind is not registered on this queue,
	// ErrInvalid when opts break a rule, an error when args cannot be
	// encoded, and the store's error (ctx's among them) when the insert
	// fails; then nothing was inserted. After Stop, [Local] returns
	// ErrStopped; a durable queue still inserts (another instance, or the
	// next start, runs the job).
	Enqueue(ctx context.Context, kind string, args any, opts *EnqueueOpts) (inserted bool, err error)

	// Every runs a job of kind with args every interval from Start on
	// (the first run one interval after Start), one run at a time: a run
	// that falls due while the previous one still waits, runs or retries
	// is skipped. With several instances, one of them enqueues the runs.
	// It returns ErrStarted once Start (or Stop) was called,
	// ErrUnknownKind when kind is not registered, ErrKindExists when kind
	// already runs periodically, ErrInvalid for an interval that is not
	// positive, and an error when args cannot be encoded.
	Every(kind string, interval time.Duration, args any) error

	// Start starts running jobs. ctx bounds the start only: the jobs'
	// contexts carry its values but not its cancellation. Start returns
	// nil when already started, ErrStopped after Stop, and the store's
	// error when it cannot be reached (then nothing was started).
	Start(ctx context.Context) error

	// Stop stops taking jobs and waits for the running ones to return.
	// When ctx ends first, it cancels the running jobs' contexts and
	// returns ctx's error without waiting further (they then end as their
	// handlers notice). Stop is idempotent and safe before Start; after
	// it, no job runs on this queue.
	Stop(ctx context.Context) error
}

// Errors of Queue methods.
var (
	// ErrStarted is returned by Register and Every once the queue started.
	ErrStarted = errors.New("jobs: the queue has started: register kinds and periodic jobs before Start")
	// ErrStopped is returned by Start after Stop, and by [Local]'s
	// Enqueue after Stop.
	ErrStopped = errors.New("jobs: the queue was stopped")
	// ErrKindExists is returned by Register for a kind registered
	// already, and by Every for a kind already run periodically.
	ErrKindExists = errors.New("jobs: kind already registered")
	// ErrUnknownKind is returned by Enqueue and Every for a kind not
	// registered on the queue.
	ErrUnknownKind = errors.New("jobs: unknown kind: register it on this queue first")
	// ErrInvalid is wrapped by errors that say which argument breaks
	// which rule.
	ErrInvalid = errors.New("jobs: invalid argument")
	// ErrFull is returned by [Local]'s Enqueue when it holds
	// LocalConfig.MaxJobs jobs already.
	ErrFull = errors.New("jobs: the queue is full")
)

// Defaults of KindOpts.
const (
	// DefaultTimeout bounds one attempt of a job.
	DefaultTimeout = time.Minute
	// DefaultMaxAttempts is how many times a job is tried before it
	// fails for good (about half a day of retries with the default
	// backoff).
	DefaultMaxAttempts = 25
	// DefaultMinBackoff is the wait before the first retry.
	DefaultMinBackoff = time.Second
	// DefaultMaxBackoff caps the wait before any retry.
	DefaultMaxBackoff = time.Hour
)

// MaxUniqueKeyLen is the longest EnqueueOpts.UniqueKey, in bytes.
const MaxUniqueKeyLen = 256

// KindOpts configures a kind of job at Register. The zero value (or nil)
// means every default.
type KindOpts struct {
	// Timeout bounds one attempt: the handler's context ends then.
	// Defaults to DefaultTimeout; it cannot be unbounded.
	Timeout time.Duration
	// MaxAttempts is how many times a job of the kind is tried (its first
	// run included) before it fails for good, unless
	// EnqueueOpts.MaxAttempts says otherwise. Defaults to
	// DefaultMaxAttempts.
	MaxAttempts int
	// MinBackoff is the wait before the first retry; each later retry
	// waits twice as long as the one before, up to MaxBackoff, less a
	// random part of up to half of it (jitter, so that jobs that failed
	// together do not all come back together). Defaults to
	// DefaultMinBackoff.
	MinBackoff time.Duration
	// MaxBackoff caps the wait before a retry. Defaults to
	// DefaultMaxBackoff (or MinBackoff, when that is larger and
	// MaxBackoff is not set).
	MaxBackoff time.Duration
}

// WithDefaults returns a copy of o (nil for the zero value) with every
// unset field given its default, and ErrInvalid when a field breaks a
// rule: a negative field, or MinBackoff above MaxBackoff.
func (o *KindOpts) WithDefaults() (KindOpts, error) {
	var out KindOpts
	if o != nil {
		out = *o
	}
	if out.Timeout < 0 || out.MaxAttempts < 0 || out.MinBackoff < 0 || out.MaxBackoff < 0 {
		return KindOpts{}, fmt.Errorf("%w: KindOpts fields cannot be negative", ErrInvalid)
	}
	out.Timeout = cmp.Or(out.Timeout, DefaultTimeout)
	out.MaxAttempts = cmp.Or(out.MaxAttempts, DefaultMaxAttempts)
	out.MinBackoff = cmp.Or(out.MinBackoff, DefaultMinBackoff)
	if out.MaxBackoff == 0 {
		out.MaxBackoff = max(DefaultMaxBackoff, out.MinBackoff)
	}
	if out.MinBackoff > out.MaxBackoff {
		return KindOpts{}, fmt.Errorf("%w: KindOpts.MinBackoff (%s) is above MaxBackoff (%s)", ErrInvalid, out.MinBackoff, out.MaxBackoff)
	}
	return out, nil
}

// Backoff returns how long to wait before retrying a job whose attempt
// number attempt (1 for the first run) failed: MinBackoff doubled for each
// attempt after the first, capped at MaxBackoff, less a random jitter of up
// to half of it. o has its defaults applied (see WithDefaults).
func (o KindOpts) Backoff(attempt int) time.Duration {
	d := o.MinBackoff
	for i := 1; i < attempt && d < o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, o.MaxBackoff)
	if half := d / 2; half > 0 {
		d -= rand.N(half + 1)
	}
	return d
}

// EnqueueOpts configures one Enqueue. The zero value (or nil) enqueues a
// job that is not unique, runs as soon as a worker is free and gets its
// kind's MaxAttempts.
type EnqueueOpts struct {
	// UniqueKey, when set, makes the job unique for its kind: while a job
	// of the same kind and key waits, is scheduled, runs or waits for a
	// retry, or completed less than the queue's retention ago (24 hours
	// by default), Enqueue inserts nothing and returns inserted=false. A
	// job that failed for good (Permanent, or out of attempts) holds its
	// key no longer, so enqueuing it again tries again. At most
	// MaxUniqueKeyLen bytes.
	UniqueKey string
	// RunAt is the earliest time the job runs; zero or past means now.
	// Jobs run at RunAt or a little later (a few seconds with River).
	RunAt time.Time
	// MaxAttempts overrides the kind's MaxAttempts for this job.
	MaxAttempts int
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix: a handler that
// returns it fails the job for good at once. errors.Is and errors.As still
// see err through it. Permanent(nil) is a permanent failure too.
func Permanent(err error) error {
	if err == nil {
		err = errors.New("failed")
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, came from
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// snoozeError asks for the job to be run again after d.
type snoozeError struct{ d time.Duration }

func (e *snoozeError) Error() string { return "snoozed for " + e.d.String() }

// Snooze, returned by a handler, runs the job again after d (a negative d
// counts as zero) without counting the attempt: for a job that waits on
// something outside (a payout the processor has not settled yet) rather
// than one that failed.
func Snooze(d time.Duration) error { return &snoozeError{d: max(d, 0)} }

// SnoozedFor returns the duration asked for when err, or an error it
// wraps, came from Snooze.
func SnoozedFor(err error) (time.Duration, bool) {
	var s *snoozeError
	if errors.As(err, &s) {
		return s.d, true
	}
	return 0, false
}

// Typed adapts a function over decoded arguments to a Handler. Arguments
// that do not decode into T fail the job for good ([Permanent]): no retry
// can fix them.
func Typed[T any](f func(ctx context.Context, args T) error) Handler {
	return func(ctx context.Context, raw json.RawMessage) error {
		var args T
		if err := json.Unmarshal(raw, &args); err != nil {
			return Permanent(fmt.Errorf("jobs: decode args: %w", err))
		}
		return f(ctx, args)
	}
}
