package postgres

import (
	"bytes"
	"context"
	"encoding/json"
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
// over (see ledger_accounts in migration 00007).
const platformSlots = 16

// postSQL posts transactions in one statement: it inserts those whose key
// (or id) is not taken, and only for those, their entries and the balances
// they move, summed per account row. A balance that would go below zero
// where that is forbidden breaks ledger_accounts_balance_check and one
// that would overflow bigint raises numeric_value_out_of_range: either
// fails the statement, so nothing is posted. A key taken by a concurrent
// posting waits for it to end (ON CONFLICT) and then inserts nothing. The
// accounts are upserted in (account, slot) order, the order every posting
// locks them in, so concurrent postings never deadlock.
//
// Summed per row, the check sees each account's balance after all the
// postings: the same as after each in turn only when no account that may
// not go negative is both debited by one and credited by another, which
// postTogether makes sure of before it posts several at once; the ids of
// the transactions are distinct (the entries and balances join on them).
//
// The row an upsert proposes must pass the balance check before the
// conflict is found, so a user's account proposes no negative balance: a
// debit beyond an account that has no row yet calls
// ledger_insufficient_funds, and the update adds the net change from the
// proposed row's debits and credits.
//
// A platform account's slots are summed with the postings' amount and
// cast to bigint, so a total that would overflow fails too (against the
// other slots as this statement sees them: exact without concurrent
// postings on the same account, which is all an overflow check of 9.2e18
// micros needs).
//
// It returns the id and time of each transaction it inserted (the caller
// finds out why another was not). Every posting of one statement has the
// same PostedAt; the listing orders them by id.
const postSQL = `
WITH now AS (SELECT clock_timestamp() AS at),
tx AS (
	INSERT INTO ledger_transactions (id, key, hash, kind, effective_at, posted_at, reverses, memo, refs)
	SELECT g.id, g.key, g.hash, g.kind, g.effective_at, now.at, g.reverses, g.memo, g.refs::jsonb
	FROM now, unnest($1::uuid[], $2::text[], $3::bytea[], $4::text[], $5::timestamptz[], $6::uuid[], $7::text[], $8::text[])
		WITH ORDINALITY AS g(id, key, hash, kind, effective_at, reverses, memo, refs, n)
	ORDER BY g.n
	ON CONFLICT DO NOTHING
	RETURNING id, posted_at
), entries AS (
	INSERT INTO ledger_entries (tx_id, seq, account_id, account_kind, user_id, side, amount, posted_at)
	SELECT tx.id, e.seq, e.account_id, e.kind, e.user_id, e.side, e.amount, tx.posted_at
	FROM unnest($9::uuid[], $10::smallint[], $11::text[], $12::text[], $13::uuid[], $14::text[], $15::bigint[])
		AS e(tx_id, seq, account_id, kind, user_id, side, amount)
	JOIN tx ON tx.id = e.tx_id
), moved AS (
	SELECT d.account_id, d.slot, d.kind, d.user_id, d.currency, d.normal_side, d.may_go_negative,
		sum(d.delta) AS delta, sum(d.debits) AS debits, sum(d.credits) AS credits
	FROM unnest($16::uuid[], $17::text[], $18::smallint[], $19::text[], $20::uuid[], $21::text[], $22::text[],
		$23::boolean[], $24::bigint[], $25::bigint[], $26::bigint[])
		AS d(tx_id, account_id, slot, kind, user_id, currency, normal_side, may_go_negative, delta, debits, credits)
	JOIN tx ON tx.id = d.tx_id
	GROUP BY 1, 2, 3, 4, 5, 6, 7
), balances AS (
	INSERT INTO ledger_accounts AS a (account_id, slot, kind, user_id, currency, normal_side, may_go_negative,
		balance, debits, credits, updated_at)
	SELECT m.account_id, m.slot, m.kind, m.user_id, m.currency, m.normal_side, m.may_go_negative,
		(CASE WHEN m.may_go_negative THEN m.delta ELSE greatest(m.delta, 0) END)::bigint, m.debits, m.credits, now.at
	FROM moved m CROSS JOIN now
		-- LIMIT 1: one index probe per account, never a hash of the table.
		LEFT JOIN LATERAL (SELECT true AS present FROM ledger_accounts o WHERE o.account_id = m.account_id LIMIT 1) x ON true
	WHERE CASE WHEN m.may_go_negative
		THEN ((SELECT coalesce(sum(o.balance), 0) FROM ledger_accounts o WHERE o.account_id = m.account_id) + m.delta)::bigint IS NOT NULL
		ELSE m.delta >= 0 OR x.present OR ledger_insufficient_funds(m.account_id) END
	ORDER BY m.account_id, m.slot
	ON CONFLICT (account_id, slot) DO UPDATE SET
		balance = a.balance + CASE a.normal_side WHEN 'credit' THEN excluded.credits - excluded.debits
			ELSE excluded.debits - excluded.credits END,
		debits = a.debits + excluded.debits, credits = a.credits + excluded.credits, updated_at = excluded.updated_at
)
SELECT id, posted_at FROM tx`

// Post implements billing.Ledger: one statement, batched with concurrent
// postings (see ledger_batch.go), or for a reversal a database
// transaction that locks the transaction reversed first.
func (db *DB) Post(ctx context.Context, t billing.Transaction) (billing.Transaction, bool, error) {
	if t.Reverses != uuid.Nil {
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
	if err := t.Validate(); err != nil {
		return billing.Transaction{}, false, err
	}
	p, err := newPosting(t)
	if err != nil {
		return billing.Transaction{}, false, err
	}
	return db.postBatched(ctx, p)
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
	return postPending(ctx, q, p)
}

// postPending runs postSQL for p alone through q.
func postPending(ctx context.Context, q querier, p pending) (billing.Transaction, bool, error) {
	postedAt, err := postMany(ctx, q, []pending{p})
	if err != nil {
		return billing.Transaction{}, false, translatePosting(err)
	}
	if at, ok := postedAt[p.tx.ID]; ok {
		stored := p.tx.Clone()
		stored.PostedAt = at
		return stored, true, nil
	}
	return notInserted(ctx, q, p)
}

// postMany runs postSQL for ps (of distinct ids) through q and returns
// the time posted of those it inserted, by id.
func postMany(ctx context.Context, q querier, ps []pending) (map[uuid.UUID]time.Time, error) {
	rows, err := q.Query(ctx, postSQL, postArgs(ps)...)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]time.Time, len(ps))
	var id uuid.UUID
	var at time.Time
	if _, err := pgx.ForEachRow(rows, []any{&id, &at}, func() error {
		out[id] = at.UTC()
		return nil
	}); err != nil {
		return nil, err
	}
	return out, nil
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

// postArgs are postSQL's arguments for ps: one array per column.
func postArgs(ps []pending) []any {
	var (
		ids, reverses, entryTx, deltaTx                []pgtype.UUID
		keys, kinds, memos                             []string
		hashes                                         [][]byte
		effective                                      []time.Time
		refs                                           []*string
		seqs, slots                                    []int16
		entryAccounts, entryKinds, sides               []string
		entryUsers, deltaUsers                         []pgtype.UUID
		amounts, nets, debits, credits                 []int64
		deltaAccounts, deltaKinds, currencies, normals []string
		negative                                       []bool
	)
	for _, p := range ps {
		t := p.tx
		id := nullUUID(t.ID)
		ids, keys, hashes, kinds = append(ids, id), append(keys, t.Key), append(hashes, p.hash[:]), append(kinds, string(t.Kind))
		effective, reverses, memos = append(effective, t.EffectiveAt), append(reverses, nullUUID(t.Reverses)), append(memos, t.Memo)
		var r *string
		if len(t.Refs) > 0 {
			b, _ := json.Marshal(t.Refs) // a map of strings always marshals
			s := string(b)
			r = &s
		}
		refs = append(refs, r)
		for i, e := range t.Entries {
			a, _ := billing.ParseAccount(e.Account)
			entryTx, seqs, entryAccounts = append(entryTx, id), append(seqs, int16(i)), append(entryAccounts, string(e.Account))
			entryKinds, entryUsers = append(entryKinds, string(a.Kind)), append(entryUsers, nullUUID(a.User))
			sides, amounts = append(sides, string(e.Side)), append(amounts, e.Amount)
		}
		for _, d := range p.deltas {
			a := d.account
			deltaTx, deltaAccounts, slots = append(deltaTx, id), append(deltaAccounts, string(a.ID)), append(slots, d.slot)
			deltaKinds, deltaUsers, currencies = append(deltaKinds, string(a.Kind)), append(deltaUsers, nullUUID(a.User)), append(currencies, string(a.Currency))
			normals, negative = append(normals, string(a.Normal())), append(negative, !a.NonNegative())
			nets, debits, credits = append(nets, d.net), append(debits, d.debits), append(credits, d.credits)
		}
	}
	return []any{ids, keys, hashes, kinds, effective, reverses, memos, refs,
		entryTx, seqs, entryAccounts, entryKinds, entryUsers, sides, amounts,
		deltaTx, deltaAccounts, slots, deltaKinds, deltaUsers, currencies, normals, negative, nets, debits, credits}
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
