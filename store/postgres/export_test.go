package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/internal/jobs"
)

// EnqueueTx exposes enqueueTx, the compound operations' transactional
// enqueue, to the tests.
func (db *DB) EnqueueTx(ctx context.Context, tx pgx.Tx, kind string, args any, opts *jobs.EnqueueOpts) (bool, error) {
	return db.enqueueTx(ctx, tx, kind, args, opts)
}

// ErrNoJobs exposes errNoJobs to the tests.
var ErrNoJobs = errNoJobs
