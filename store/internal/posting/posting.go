// Package posting is what store/memory and store/postgres share about the
// ledger, so that the two cannot drift apart: the decision whether a
// billing.Transaction posts (a replay, a key conflict, a reversal that does
// not undo what it names, insufficient funds) and the balances it leaves.
//
// Memory keeps its whole ledger in a Book. PostgreSQL fills a Book, for one
// database transaction, with what that transaction locked and read (the
// balances of the accounts the postings touch, the transactions that share
// their keys or ids or that they reverse), decides every posting on it in
// order, and writes what was posted.
package posting

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/billing"
)

// Record is a transaction in the ledger, with its content hash and the
// transaction that reversed it (uuid.Nil when none has).
type Record struct {
	Tx         billing.Transaction
	Hash       [32]byte
	ReversedBy uuid.UUID
}

// Book is the part of a ledger postings are decided on. The zero value is
// not usable; call NewBook. It is not safe for concurrent use.
type Book struct {
	byKey    map[string]*Record
	byID     map[uuid.UUID]*Record
	balances map[billing.AccountID]billing.Balance
}

// NewBook returns an empty book.
func NewBook() *Book {
	return &Book{
		byKey:    map[string]*Record{},
		byID:     map[uuid.UUID]*Record{},
		balances: map[billing.AccountID]billing.Balance{},
	}
}

// Add records a transaction already in the ledger. A book that decides
// postings must hold every transaction that shares a key or an id with
// them or that they reverse: what it does not hold does not exist.
func (b *Book) Add(r Record) {
	r.Tx = r.Tx.Clone()
	b.byKey[r.Tx.Key] = &r
	b.byID[r.Tx.ID] = &r
}

// SetBalance records an account's balance. A book that decides postings
// must hold the balance of every account they touch: one it does not hold
// is zero.
func (b *Book) SetBalance(bal billing.Balance) { b.balances[bal.Account] = bal }

// Balance returns the account's balance (zero when it has none).
func (b *Book) Balance(id billing.AccountID) billing.Balance {
	if bal, ok := b.balances[id]; ok {
		return bal
	}
	return billing.Balance{Account: id}
}

// Fork returns a new book holding what deciding ts needs of b: the
// balances of every account they touch and the records that share their
// keys or ids or that they reverse. Deciding ts on the fork first tells
// whether all of them post, without changing b: how a store posts several
// transactions atomically.
func (b *Book) Fork(ts []billing.Transaction) *Book {
	f := NewBook()
	keep := func(r *Record) {
		if r != nil {
			c := *r
			c.Tx = r.Tx.Clone()
			f.byKey[c.Tx.Key], f.byID[c.Tx.ID] = &c, &c
		}
	}
	for _, t := range ts {
		keep(b.byKey[t.Key])
		if t.ID != uuid.Nil {
			keep(b.byID[t.ID])
		}
		if t.Reverses != uuid.Nil {
			keep(b.byID[t.Reverses])
		}
		for _, e := range t.Entries {
			if bal, ok := b.balances[e.Account]; ok {
				f.balances[e.Account] = bal
			}
		}
	}
	return f
}

// ByKey returns the transaction posted under key, and whether there is one.
func (b *Book) ByKey(key string) (billing.Transaction, bool) {
	r, ok := b.byKey[key]
	if !ok {
		return billing.Transaction{}, false
	}
	return r.Tx.Clone(), true
}

// ByID returns the transaction with id, and whether there is one.
func (b *Book) ByID(id uuid.UUID) (billing.Transaction, bool) {
	r, ok := b.byID[id]
	if !ok {
		return billing.Transaction{}, false
	}
	return r.Tx.Clone(), true
}

// Post decides t as billing.Ledger.Post documents it and, when t posts,
// records it at now (the caller's clock, in UTC to the microsecond): the
// transaction as stored, whether it was posted now, or the error, in which
// case nothing changed.
func (b *Book) Post(t billing.Transaction, now time.Time) (billing.Transaction, bool, error) {
	if err := t.Validate(); err != nil {
		return billing.Transaction{}, false, err
	}
	hash := t.ContentHash()
	if r, ok := b.byKey[t.Key]; ok {
		if r.Hash != hash {
			return billing.Transaction{}, false, billing.ErrKeyConflict
		}
		return r.Tx.Clone(), false, nil
	}
	if t.ID == uuid.Nil {
		t.ID = uuid.Must(uuid.NewV7())
	} else if _, taken := b.byID[t.ID]; taken {
		return billing.Transaction{}, false, billing.ErrKeyConflict.WithMessage("this transaction id was posted under another key")
	}
	var reversed *Record
	if t.Reverses != uuid.Nil {
		reversed = b.byID[t.Reverses]
		switch {
		case reversed == nil:
			return billing.Transaction{}, false, billing.ErrTransactionNotFound.WithMessage("the transaction to reverse does not exist")
		case reversed.ReversedBy != uuid.Nil:
			return billing.Transaction{}, false, billing.ErrAlreadyReversed
		case !t.Undoes(reversed.Tx):
			return billing.Transaction{}, false, billing.ErrInvalidTransaction.WithFields(map[string]string{
				"entries": "a reversal has the entries of the transaction it reverses, on the other side"})
		}
	}
	after, err := b.apply(t)
	if err != nil {
		return billing.Transaction{}, false, err
	}

	t = t.Clone()
	t.PostedAt = now
	t.EffectiveAt = t.EffectiveAt.UTC().Truncate(time.Microsecond)
	if len(t.Refs) == 0 {
		t.Refs = nil
	}
	for id, micros := range after {
		b.balances[id] = billing.Balance{Account: id, Micros: micros, UpdatedAt: now}
	}
	if reversed != nil {
		reversed.ReversedBy = t.ID
	}
	b.Add(Record{Tx: t, Hash: hash})
	return t.Clone(), true, nil
}

// apply returns the balances t's accounts would have after it, or
// billing.ErrInsufficientFunds when one that may not go negative would.
// What counts is each account's balance after the whole transaction.
func (b *Book) apply(t billing.Transaction) (map[billing.AccountID]int64, error) {
	after := make(map[billing.AccountID]int64, len(t.Entries))
	accounts := make(map[billing.AccountID]billing.Account, len(t.Entries))
	for _, e := range t.Entries {
		a, ok := accounts[e.Account]
		if !ok {
			a, _ = billing.ParseAccount(e.Account) // t is valid
			accounts[e.Account] = a
			after[e.Account] = b.Balance(e.Account).Micros
		}
		sum, ok := add(after[e.Account], a.Signed(e))
		if !ok {
			return nil, billing.ErrInvalidTransaction.WithFields(map[string]string{
				"entries": "the balance of " + string(e.Account) + " would overflow"})
		}
		after[e.Account] = sum
	}
	for _, id := range slices.Sorted(maps.Keys(after)) { // the first account short is always the same one
		if accounts[id].NonNegative() && after[id] < 0 {
			return nil, billing.ErrInsufficientFunds.WithCause(
				fmt.Errorf("%s holds %d micros and would hold %d", id, b.Balance(id).Micros, after[id]))
		}
	}
	return after, nil
}

// add is x + y, and false when that overflows.
func add(x, y int64) (int64, bool) {
	s := x + y
	if (y > 0 && s < x) || (y < 0 && s > x) {
		return 0, false
	}
	return s, true
}

// PageSize is the number of transactions a TxFilter's Limit lists: 1 to
// 500, 50 when Limit is below 1.
func PageSize(limit int) int {
	switch {
	case limit < 1:
		return 50
	case limit > 500:
		return 500
	}
	return limit
}

// MaxSweepPage is the largest page of the listings that billing's sweeps
// page through to the end (DailySpend, AccountsAtLeast): above
// PageSize's 500, so that a sweep's page of 1,000 is not cut short.
const MaxSweepPage = 10_000

// SweepPageSize is the number of rows such a listing's limit lists: 1 to
// MaxSweepPage, 50 when limit is below 1.
func SweepPageSize(limit int) int {
	if limit < 1 {
		return 50
	}
	return min(limit, MaxSweepPage)
}
