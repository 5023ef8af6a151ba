package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/adshare/adshare/billing"
)

var _ billing.Ledger = (*DB)(nil)

// querier is what posting needs of a connection: the pool (one statement,
// its own transaction) or a database transaction (Apply's).
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// platformSlots is how many rows a platform account's balance is spread
// over (see ledger_accounts in migration 00006).
const platformSlots = 16

// postSQL posts one transaction in one statement: it inserts the
// transaction unless its key (or id) is taken, and only when it did, its
// entries and the balances they move. A balance that would go below zero
// where that is forbidden breaks ledger_accounts_balance_check and one
// that would overflow bigint raises numeric_value_out_of_range: either
// fails the statement, so nothing is posted. A key taken by a concurrent
// posting waits for it to end (ON CONFLICT) and then inserts nothing. The
// accounts are upserted in (account, slot) order, the order every posting
// locks them in, so concurrent postings never deadlock.
//
// The row an upsert proposes must pass the balance check before the
// conflict is found, so a user's account proposes no negative balance: a
// debit beyond an account that has no row yet calls
// ledger_insufficient_funds, and the update adds the net change from the
// proposed row's debits and credits.
//
// A platform account's slots are summed with this posting's amount and
// cast to bigint, so a total that would overflow fails too (against the
// other slots as this statement sees them: exact without concurrent
// postings on the same account, which is all an overflow check of 9.2e18
// micros needs).
//
// It returns the time posted, and no row when the transaction was not
// inserted (the caller finds out why). It replaced a transaction of
// several statements (lock the accounts, read them, decide, write) that
// posted at a seventh of the rate: see BenchmarkPost.
const postSQL = `
WITH now AS (SELECT clock_timestamp() AS at),
tx AS (
	INSERT INTO ledger_transactions (id, key, hash, kind, effective_at, posted_at, reverses, memo, refs)
	SELECT $1, $2, $3, $4, $5, now.at, $6, $7, $8 FROM now
	ON CONFLICT DO NOTHING
	RETURNING id, posted_at
), entries AS (
	INSERT INTO ledger_entries (tx_id, seq, account_id, account_kind, user_id, side, amount, posted_at)
	SELECT tx.id, e.ord - 1, e.account_id, e.kind, e.user_id, e.side, e.amount, tx.posted_at
	FROM tx, unnest($9::text[], $10::text[], $11::uuid[], $12::text[], $13::bigint[])
		WITH ORDINALITY AS e(account_id, kind, user_id, side, amount, ord)
), balances AS (
	INSERT INTO ledger_accounts AS a (account_id, slot, kind, user_id, currency, normal_side, may_go_negative,
		balance, debits, credits, updated_at)
	SELECT d.account_id, d.slot, d.kind, d.user_id, d.currency, d.normal_side, d.may_go_negative,
		CASE WHEN d.may_go_negative THEN d.delta ELSE greatest(d.delta, 0) END, d.debits, d.credits, tx.posted_at
	FROM tx, unnest($14::text[], $15::smallint[], $16::text[], $17::uuid[], $18::text[], $19::text[],
		$20::boolean[], $21::bigint[], $22::bigint[], $23::bigint[])
		AS d(account_id, slot, kind, user_id, currency, normal_side, may_go_negative, delta, debits, credits)
	WHERE CASE WHEN d.may_go_negative
		THEN ((SELECT coalesce(sum(o.balance), 0) FROM ledger_accounts o WHERE o.account_id = d.account_id) + d.delta)::bigint IS NOT NULL
		ELSE d.delta >= 0 OR EXISTS (SELECT 1 FROM ledger_accounts o WHERE o.account_id = d.account_id)
			OR ledger_insufficient_funds(d.account_id) END
	ORDER BY d.account_id, d.slot
	ON CONFLICT (account_id, slot) DO UPDATE SET
		balance = a.balance + CASE a.normal_side WHEN 'credit' THEN excluded.credits - excluded.debits
			ELSE excluded.debits - excluded.credits END,
		debits = a.debits + excluded.debits, credits = a.credits + excluded.credits, updated_at = excluded.updated_at
)
SELECT posted_at FROM tx`

// Post implements billing.Ledger: one statement, or for a reversal a
// database transaction that locks the transaction reversed first.
func (db *DB) Post(ctx context.Context, t billing.Transaction) (billing.Transaction, bool, error) {
	if t.Reverses == uuid.Nil {
		return post(ctx, db.pool, t)
	}
	var stored billing.Transaction
	var posted bool
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		stored, posted, err = post(ctx, tx, t)
		return err
	})
	if err != nil {
		return billing.Transaction{}, false, err
	}
	return stored, posted, nil
}

// post posts t through q as billing.Ledger.Post documents it; a reversal
// needs q to be a database transaction.
func post(ctx context.Context, q querier, t billing.Transaction) (billing.Transaction, bool, error) {
	if err := t.Validate(); err != nil {
		return billing.Transaction{}, false, err
	}
	p, err := newPosting(t)
	if err != nil {
		return billing.Transaction{}, false, err
	}
	if t.Reverses != uuid.Nil {
		if stored, found, err := replay(ctx, q, p); found || err != nil {
			return stored, false, err
		}
		if err := checkReversal(ctx, q, p.tx); err != nil {
			return billing.Transaction{}, false, err
		}
	}
	var postedAt time.Time
	err = q.QueryRow(ctx, postSQL, p.args()...).Scan(&postedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return notInserted(ctx, q, p)
	case err != nil:
		return billing.Transaction{}, false, translatePosting(err)
	}
	stored := p.tx.Clone()
	stored.PostedAt = postedAt.UTC()
	return stored, true, nil
}

// pending is a valid transaction ready for postSQL: its id set, its
// content hash, and the net change of each account it touches.
type pending struct {
	tx     billing.Transaction // as it will be stored, PostedAt aside
	hash   [32]byte
	deltas []delta // by account id
}

// delta is what a posting changes in one account's row.
type delta struct {
	account         billing.Account
	slot            int16
	net             int64 // on the account's normal side
	debits, credits int64
}

// newPosting prepares a valid t; ErrInvalidTransaction when an account's
// net change overflows.
func newPosting(t billing.Transaction) (pending, error) {
	p := pending{tx: t.Clone(), hash: t.ContentHash()}
	if p.tx.ID == uuid.Nil {
		p.tx.ID = uuid.Must(uuid.NewV7())
	}
	p.tx.EffectiveAt = p.tx.EffectiveAt.UTC().Truncate(time.Microsecond)
	if len(p.tx.Refs) == 0 {
		p.tx.Refs = nil
	}
	byAccount := map[billing.AccountID]*delta{}
	for _, e := range t.Entries {
		d := byAccount[e.Account]
		if d == nil {
			a, _ := billing.ParseAccount(e.Account) // t is valid
			d = &delta{account: a}
			if !a.NonNegative() {
				d.slot = int16(rand.IntN(platformSlots))
			}
			byAccount[e.Account] = d
		}
		signed := d.account.Signed(e)
		if (signed > 0 && d.net > maxInt64-signed) || (signed < 0 && d.net < minInt64-signed) {
			return pending{}, errOverflow(e.Account)
		}
		d.net += signed
		if e.Side == billing.Debit {
			d.debits += e.Amount // Validate checked that each side's sum fits
		} else {
			d.credits += e.Amount
		}
	}
	for _, id := range slices.Sorted(maps.Keys(byAccount)) {
		p.deltas = append(p.deltas, *byAccount[id])
	}
	return p, nil
}

const (
	maxInt64 = 1<<63 - 1
	minInt64 = -1 << 63
)

// errOverflow is the error of a balance that would overflow.
func errOverflow(id billing.AccountID) error {
	return billing.ErrInvalidTransaction.WithFields(map[string]string{
		"entries": "the balance of " + string(id) + " would overflow"})
}

// args are postSQL's arguments.
func (p pending) args() []any {
	t := p.tx
	n := len(t.Entries)
	accounts, kinds, users, sides, amounts := make([]string, n), make([]string, n), make([]pgtype.UUID, n), make([]string, n), make([]int64, n)
	for i, e := range t.Entries {
		a, _ := billing.ParseAccount(e.Account)
		accounts[i], kinds[i], users[i], sides[i], amounts[i] = string(e.Account), string(a.Kind), nullUUID(a.User), string(e.Side), e.Amount
	}
	m := len(p.deltas)
	ids, slots, dkinds, dusers, currencies, normals := make([]string, m), make([]int16, m), make([]string, m), make([]pgtype.UUID, m), make([]string, m), make([]string, m)
	negative, nets, debits, credits := make([]bool, m), make([]int64, m), make([]int64, m), make([]int64, m)
	for i, d := range p.deltas {
		a := d.account
		ids[i], slots[i], dkinds[i], dusers[i], currencies[i], normals[i] = string(a.ID), d.slot, string(a.Kind), nullUUID(a.User), string(a.Currency), string(a.Normal())
		negative[i], nets[i], debits[i], credits[i] = !a.NonNegative(), d.net, d.debits, d.credits
	}
	var refs map[string]string
	if len(t.Refs) > 0 {
		refs = t.Refs
	}
	return []any{t.ID, t.Key, p.hash[:], string(t.Kind), t.EffectiveAt, nullUUID(t.Reverses), t.Memo, refs,
		accounts, kinds, users, sides, amounts,
		ids, slots, dkinds, dusers, currencies, normals, negative, nets, debits, credits}
}

// nullUUID maps uuid.Nil to SQL NULL.
func nullUUID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: id != uuid.Nil} }

// replay returns the transaction posted before under p's key, found true,
// when there is one with p's content; ErrKeyConflict when its content
// differs.
func replay(ctx context.Context, q querier, p pending) (billing.Transaction, bool, error) {
	stored, hash, err := readTx(ctx, q, `t.key = $1`, p.tx.Key)
	switch {
	case errors.Is(err, billing.ErrTransactionNotFound):
		return billing.Transaction{}, false, nil
	case err != nil:
		return billing.Transaction{}, false, err
	case !bytes.Equal(hash, p.hash[:]):
		return billing.Transaction{}, true, billing.ErrKeyConflict
	}
	return stored, true, nil
}

// notInserted says why postSQL inserted nothing: the key was posted
// before (a replay, or a conflict), or the id or the transaction reversed
// is another's.
func notInserted(ctx context.Context, q querier, p pending) (billing.Transaction, bool, error) {
	stored, found, err := replay(ctx, q, p)
	if found || err != nil {
		return stored, false, err
	}
	var idTaken, reversed bool
	err = q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ledger_transactions WHERE id = $1),
		EXISTS (SELECT 1 FROM ledger_transactions WHERE reverses = $2)`, p.tx.ID, nullUUID(p.tx.Reverses)).Scan(&idTaken, &reversed)
	switch {
	case err != nil:
		return billing.Transaction{}, false, fmt.Errorf("postgres: post: %w", err)
	case idTaken:
		return billing.Transaction{}, false, billing.ErrKeyConflict.WithMessage("this transaction id was posted under another key")
	case reversed:
		return billing.Transaction{}, false, billing.ErrAlreadyReversed
	}
	return billing.Transaction{}, false, fmt.Errorf("postgres: post %s: not inserted, and no transaction holds its key or id", p.tx.Key)
}

// checkReversal locks the transaction t reverses (until q's transaction
// ends, so that two reversals of it wait for each other) and checks that
// t may reverse it.
func checkReversal(ctx context.Context, q querier, t billing.Transaction) error {
	_, err := q.Exec(ctx, `SELECT 1 FROM ledger_transactions WHERE id = $1 FOR UPDATE`, t.Reverses)
	if err != nil {
		return fmt.Errorf("postgres: post: %w", err)
	}
	orig, _, err := readTx(ctx, q, `t.id = $1`, t.Reverses)
	if errors.Is(err, billing.ErrTransactionNotFound) {
		return billing.ErrTransactionNotFound.WithMessage("the transaction to reverse does not exist")
	}
	if err != nil {
		return err
	}
	var reversed bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ledger_transactions WHERE reverses = $1)`, t.Reverses).Scan(&reversed); err != nil {
		return fmt.Errorf("postgres: post: %w", err)
	}
	switch {
	case reversed:
		return billing.ErrAlreadyReversed
	case !t.Undoes(orig):
		return billing.ErrInvalidTransaction.WithFields(map[string]string{
			"entries": "a reversal has the entries of the transaction it reverses, on the other side"})
	}
	return nil
}

// translatePosting turns postSQL's failures into the ledger's errors.
func translatePosting(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeNumericOutOfRange {
		return billing.ErrInvalidTransaction.WithFields(map[string]string{"entries": "a balance would overflow"}).WithCause(err)
	}
	return translate(err, nil)
}
