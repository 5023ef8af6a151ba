package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/batch"
)

// Group commit of postings. Every commit waits for a WAL flush, so
// postings committed one by one are bound by the disk (about the rate of
// trivial one-row inserts), whatever the statement. Concurrent Post calls
// are therefore gathered into batches, and a batch posts in one statement
// (postSQL over all of them: one insert of the transactions, one of the
// entries, one upsert of each account row touched, one commit). Under no
// load a batch holds one posting and posts alone. When a batch cannot be
// summed in one statement, or its statement fails (a posting short of
// funds, an overflow), each of its postings posts alone, so that one
// posting's failure is its own and every other posts as it would have.
const (
	// postBatchMax caps a batch: postings in one statement. Settlement
	// posts faster with more workers and larger batches (BenchmarkSettleADay:
	// 148 s with 256 of each, 238 s with 64).
	postBatchMax = 256
	// postFlushers is how many batches post at once; another starts beside
	// a running one once postParallelAt postings wait, so that while one
	// batch waits for its commit's WAL flush the next one executes. (With
	// 64, fewer and larger batches, both benchmarks posted less: 742
	// against 1,806 tx/s in BenchmarkPost, 309 against about 450 owners/s
	// in BenchmarkSettleADay.)
	postFlushers   = 4
	postParallelAt = 4
	// postFlushTimeout bounds one batch (its callers may have gone).
	postFlushTimeout = 30 * time.Second
)

// postReq is one Post in a batch: the posting, and what became of it.
type postReq struct {
	p      pending
	stored billing.Transaction
	posted bool
	err    error
}

// newPostBatcher returns the batcher of db's postings.
func newPostBatcher(db *DB) *batch.Batcher[*postReq] {
	return batch.New(db.flushPosts, batch.Config{MaxBatch: postBatchMax, Flushers: postFlushers, ParallelAt: postParallelAt})
}

// postBatched posts p through the batcher.
func (db *DB) postBatched(ctx context.Context, p pending) (billing.Transaction, bool, error) {
	r := &postReq{p: p}
	if err := db.posts.Do(ctx, r); err != nil {
		return billing.Transaction{}, false, err
	}
	return r.stored, r.posted, r.err
}

// flushPosts posts a batch, each request's outcome set on it.
func (db *DB) flushPosts(ctx context.Context, reqs []*postReq) error {
	ctx, cancel := context.WithTimeout(ctx, postFlushTimeout)
	defer cancel()
	if len(reqs) == 1 || db.postTogether(ctx, reqs) != nil {
		for _, r := range reqs {
			r.stored, r.posted, r.err = postPending(ctx, db.pool, r.p)
		}
	}
	return nil
}

// postTogether posts reqs in one statement, or nothing: then it returns
// an error and sets no outcome. It refuses (errNotTogether) a batch whose
// ids repeat, or in which an account that may not go negative is debited
// by one posting and credited by another (postSQL's check sees the sum).
func (db *DB) postTogether(ctx context.Context, reqs []*postReq) error {
	// A platform account takes one slot for the whole batch: one row
	// updated once.
	slots := map[billing.AccountID]int16{}
	sign := map[billing.AccountID]int64{}
	ids := make(map[uuid.UUID]bool, len(reqs))
	ps := make([]pending, len(reqs))
	for i, r := range reqs {
		if ids[r.p.tx.ID] {
			return errNotTogether
		}
		ids[r.p.tx.ID] = true
		for j := range r.p.deltas {
			d := &r.p.deltas[j]
			if d.account.NonNegative() {
				if s := sign[d.account.ID]; (s < 0 && d.net > 0) || (s > 0 && d.net < 0) {
					return errNotTogether
				}
				if d.net != 0 {
					sign[d.account.ID] = d.net
				}
				continue
			}
			s, ok := slots[d.account.ID]
			if !ok {
				s = int16(rand.IntN(platformSlots))
				slots[d.account.ID] = s
			}
			d.slot = s
		}
		ps[i] = r.p
	}
	postedAt, err := postMany(ctx, db.pool, ps)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		if at, ok := postedAt[r.p.tx.ID]; ok {
			r.stored, r.posted = r.p.tx.Clone(), true
			r.stored.PostedAt = at
			continue
		}
		r.stored, r.posted, r.err = notInserted(ctx, db.pool, r.p)
	}
	return nil
}

// errNotTogether: the batch must post one by one.
var errNotTogether = errors.New("postgres: these postings cannot be summed in one statement")
