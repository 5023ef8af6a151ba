package memory

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/store/internal/posting"
)

var _ billing.Ledger = (*Store)(nil)

// ledgerState is the ledger part of the store, under a lock of its own.
// A compound operation that writes the store's other data together with a
// posting (a payout and its reserve) takes the store's lock first, then
// this one, and posts with postLocked. Nothing is evicted: memory grows
// with the number of transactions.
type ledgerState struct {
	mu   sync.RWMutex
	book *posting.Book
	// order is every transaction's id in posting order, which is also the
	// order of PostedAt: postLocked makes each PostedAt later than the one
	// before.
	order     []uuid.UUID
	byAccount map[billing.AccountID][]int // positions in order
	byUser    map[uuid.UUID][]int
	totals    map[billing.Currency]billing.DebitsCredits
	last      time.Time // the newest PostedAt
}

func newLedgerState() ledgerState {
	return ledgerState{
		book:      posting.NewBook(),
		byAccount: map[billing.AccountID][]int{},
		byUser:    map[uuid.UUID][]int{},
		totals:    map[billing.Currency]billing.DebitsCredits{},
	}
}

// Post implements billing.Ledger.
func (s *Store) Post(ctx context.Context, t billing.Transaction) (billing.Transaction, bool, error) {
	if err := ctx.Err(); err != nil {
		return billing.Transaction{}, false, err
	}
	l := &s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.postLocked(t)
}

// postLocked is Post with l.mu held. PostedAt is the clock's time, or a
// microsecond after the previous transaction's when the clock has not
// moved past it, so that the listing's order is the posting order.
func (l *ledgerState) postLocked(t billing.Transaction) (billing.Transaction, bool, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	if !now.After(l.last) {
		now = l.last.Add(time.Microsecond)
	}
	stored, posted, err := l.book.Post(t, now)
	if err != nil || !posted {
		return stored, posted, err
	}
	l.last = now
	at := len(l.order)
	l.order = append(l.order, stored.ID)
	users := map[uuid.UUID]bool{}
	for _, e := range stored.Entries {
		a, _ := billing.ParseAccount(e.Account) // posted, so valid
		if list := l.byAccount[e.Account]; len(list) == 0 || list[len(list)-1] != at {
			l.byAccount[e.Account] = append(list, at)
		}
		if a.User != uuid.Nil && !users[a.User] {
			users[a.User] = true
			l.byUser[a.User] = append(l.byUser[a.User], at)
		}
		dc := l.totals[a.Currency]
		if e.Side == billing.Debit {
			dc.Debits += e.Amount
		} else {
			dc.Credits += e.Amount
		}
		l.totals[a.Currency] = dc
	}
	return stored, true, nil
}

// Balances implements billing.Ledger.
func (s *Store) Balances(ctx context.Context, ids []billing.AccountID) (map[billing.AccountID]billing.Balance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, err := billing.ParseAccount(id); err != nil {
			return nil, err
		}
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make(map[billing.AccountID]billing.Balance, len(ids))
	for _, id := range ids {
		out[id] = l.book.Balance(id)
	}
	return out, nil
}

// TransactionByKey implements billing.Ledger.
func (s *Store) TransactionByKey(ctx context.Context, key string) (billing.Transaction, error) {
	if err := ctx.Err(); err != nil {
		return billing.Transaction{}, err
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	t, ok := l.book.ByKey(key)
	if !ok {
		return billing.Transaction{}, billing.ErrTransactionNotFound
	}
	return t, nil
}

// Transactions implements billing.Ledger.
func (s *Store) Transactions(ctx context.Context, f billing.TxFilter) ([]billing.Transaction, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.Account != "" {
		if _, err := billing.ParseAccount(f.Account); err != nil {
			return nil, err
		}
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	var positions []int // ascending
	switch {
	case f.Account != "":
		positions = l.byAccount[f.Account]
	case f.User != uuid.Nil:
		positions = l.byUser[f.User]
	}
	byFilter := f.Account != "" || f.User != uuid.Nil
	n := len(l.order)
	if byFilter {
		n = len(positions)
	}
	tx := func(i int) billing.Transaction {
		if byFilter {
			i = positions[i]
		}
		t, _ := l.book.ByID(l.order[i])
		return t
	}
	if !f.Before.PostedAt.IsZero() { // the first at or after the cursor ends the page
		n = searchBefore(n, func(i int) billing.TxCursor { return tx(i).Cursor() }, f.Before)
	}
	limit := posting.PageSize(f.Limit)
	out := []billing.Transaction{}
	for i := n - 1; i >= 0 && len(out) < limit; i-- {
		t := tx(i)
		if f.User != uuid.Nil && f.Account != "" && !touchesUser(t, f.User) {
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

// searchBefore is the number of the n transactions, in listing order
// reversed, whose place comes before c.
func searchBefore(n int, at func(int) billing.TxCursor, c billing.TxCursor) int {
	lo, hi := 0, n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if compareCursors(at(mid), c) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// compareCursors orders places in the listing as PostgreSQL does:
// (posted_at, id).
func compareCursors(a, b billing.TxCursor) int {
	if c := a.PostedAt.Compare(b.PostedAt); c != 0 {
		return c
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}

// touchesUser reports whether t has an entry on one of user's accounts.
func touchesUser(t billing.Transaction, user uuid.UUID) bool {
	return slices.ContainsFunc(t.Entries, func(e billing.Entry) bool {
		a, _ := billing.ParseAccount(e.Account)
		return a.User == user
	})
}

// Totals implements billing.Ledger.
func (s *Store) Totals(ctx context.Context) (map[billing.Currency]billing.DebitsCredits, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	return maps.Clone(l.totals), nil
}
