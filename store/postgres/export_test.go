package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/jobs"
)

// EnqueueTx exposes enqueueTx, the compound operations' transactional
// enqueue, to the tests.
func (db *DB) EnqueueTx(ctx context.Context, tx pgx.Tx, kind string, args any, opts *jobs.EnqueueOpts) (bool, error) {
	return db.enqueueTx(ctx, tx, kind, args, opts)
}

// ErrNoJobs exposes errNoJobs to the tests.
var ErrNoJobs = errNoJobs

// PostResult is what became of one posting of PostTogether.
type PostResult struct {
	Stored billing.Transaction
	Posted bool
	Err    error
}

// PostTogether posts ts as one batch of the posting batcher would (they
// must be valid and no reversals), for tests of the batch's rules.
func (db *DB) PostTogether(ctx context.Context, ts []billing.Transaction) []PostResult {
	reqs := make([]*postReq, len(ts))
	for i, t := range ts {
		p, err := newPosting(t)
		if err != nil {
			panic(err)
		}
		reqs[i] = &postReq{p: p}
	}
	_ = db.flushPosts(ctx, reqs)
	out := make([]PostResult, len(reqs))
	for i, r := range reqs {
		out[i] = PostResult{r.stored, r.posted, r.err}
	}
	return out
}

// SealedTableCount is how many tables a reseal run walks (and records in
// keyring_reseal).
var SealedTableCount = len(sealedTables)
