// Package jobs is adshare's durable background work: settlement, hold
// release, payouts and their retries, reconciliation, and later export,
// erasure, retention and key re-encryption. The domain packages register
// a [Handler] per kind of job and enqueue jobs through the small [Queue]
// interface; they never see how jobs are stored.
//
// Two implementations keep the same promises (the contract suite in
// jobs/jobstest runs against both):
//
//   - store/postgres's Jobs, on River (github.com/riverqueue/river) over
//     the DB's own pool: jobs are rows in the DB's schema, survive
//     restarts, and are shared by every instance on that schema. A job is
//     locked by the one instance that runs it, periodic jobs are enqueued
//     by the elected leader only, and a job can be enqueued in the same
//     database transaction as the write that calls for it, so that the
//     follow-up work is neither lost (write committed, job not) nor done
//     for nothing (job committed, write rolled back).
//   - [Local], the in-process runner of the embedded defaults: a bounded
//     worker pool in memory. Nothing survives a restart and nothing is
//     shared between processes; it suits one process and tests.
//
// # What a handler must do
//
// A job runs at least once: an instance that dies while a job runs leaves
// it to be run again, and an attempt that fails is retried with
// exponential backoff and jitter up to its kind's MaxAttempts. So a
// handler is idempotent (running it twice has the effect of running it
// once: ledger postings carry idempotency keys, payouts the payout's id)
// and resumable (it finds where an earlier attempt stopped and goes on
// from there). Within those limits:
//
//   - A job with a UniqueKey is not inserted while another of its kind
//     and key waits, runs or retries, nor for a retention period after one
//     completed (Enqueue reports inserted=false). Two instances enqueuing
//     the same settlement insert it once.
//   - A handler's context ends at its kind's Timeout, and when the queue
//     stops hard (Stop's context ended before the job returned).
//   - A handler that panics fails that attempt like an error would; the
//     process goes on.
//   - A handler returns [Permanent](err) when trying again cannot help
//     (the job fails for good at once), and [Snooze](d) to be run again
//     after d without using up an attempt (waiting on something outside).
//   - [Queue.Every] runs a job periodically, one run at a time across
//     every instance: a run that falls due while the previous one still
//     waits, runs or retries is skipped.
//
// Registering kinds and periodic jobs happens before Start; enqueuing may
// happen before Start too (the job waits). Start and Stop are the
// lifecycle every adshare component has: nothing runs before Start, Stop
// lets the running jobs finish within its context and then runs none.
package jobs
