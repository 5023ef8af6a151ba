package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/store/internal/posting"
)

// txSelect reads transactions (alias t) with their entries in order; the
// caller appends WHERE and ORDER BY.
const txSelect = `SELECT t.id, t.key, t.hash, t.kind, t.effective_at, t.posted_at, t.reverses, t.memo, t.refs,
	e.accounts, e.sides, e.amounts
FROM ledger_transactions t, LATERAL (
	SELECT array_agg(account_id ORDER BY seq) AS accounts, array_agg(side ORDER BY seq) AS sides,
		array_agg(amount ORDER BY seq) AS amounts
	FROM ledger_entries WHERE tx_id = t.id) e`

// scanTx reads one row of txSelect.
func scanTx(row pgx.Row) (billing.Transaction, []byte, error) {
	var (
		t        billing.Transaction
		hash     []byte
		reverses pgtype.UUID
		accounts []string
		sides    []string
		amounts  []int64
	)
	err := row.Scan(&t.ID, &t.Key, &hash, &t.Kind, &t.EffectiveAt, &t.PostedAt, &reverses, &t.Memo, &t.Refs,
		&accounts, &sides, &amounts)
	if err != nil {
		return billing.Transaction{}, nil, err
	}
	t.EffectiveAt, t.PostedAt = t.EffectiveAt.UTC(), t.PostedAt.UTC()
	if reverses.Valid {
		t.Reverses = reverses.Bytes
	}
	if len(t.Refs) == 0 {
		t.Refs = nil
	}
	t.Entries = make([]billing.Entry, len(accounts))
	for i := range accounts {
		t.Entries[i] = billing.Entry{Account: billing.AccountID(accounts[i]), Side: billing.Side(sides[i]), Amount: amounts[i]}
	}
	return t, hash, nil
}

// readTx returns the transaction where cond holds, with its content hash;
// ErrTransactionNotFound when there is none.
func readTx(ctx context.Context, q querier, cond string, args ...any) (billing.Transaction, []byte, error) {
	t, hash, err := scanTx(q.QueryRow(ctx, txSelect+` WHERE `+cond, args...))
	if err != nil {
		return billing.Transaction{}, nil, translate(err, billing.ErrTransactionNotFound)
	}
	return t, hash, nil
}

// Balances implements billing.Ledger: a platform account's slots summed.
func (db *DB) Balances(ctx context.Context, ids []billing.AccountID) (map[billing.AccountID]billing.Balance, error) {
	names := make([]string, len(ids))
	for i, id := range ids {
		if _, err := billing.ParseAccount(id); err != nil {
			return nil, err
		}
		names[i] = string(id)
	}
	rows, err := db.pool.Query(ctx, `SELECT account_id, sum(balance)::bigint, max(updated_at) FROM ledger_accounts
		WHERE account_id = ANY($1) GROUP BY account_id`, names)
	if err != nil {
		return nil, fmt.Errorf("postgres: balances: %w", err)
	}
	out := make(map[billing.AccountID]billing.Balance, len(ids))
	for _, id := range ids {
		out[id] = billing.Balance{Account: id}
	}
	var b billing.Balance
	_, err = pgx.ForEachRow(rows, []any{&b.Account, &b.Micros, &b.UpdatedAt}, func() error {
		b.UpdatedAt = b.UpdatedAt.UTC()
		out[b.Account] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: balances: %w", err)
	}
	return out, nil
}

// TransactionByKey implements billing.Ledger.
func (db *DB) TransactionByKey(ctx context.Context, key string) (billing.Transaction, error) {
	t, _, err := readTx(ctx, db.pool, `t.key = $1`, key)
	return t, err
}

// Transactions implements billing.Ledger. A filtered listing pages on the
// entries' indexes (by account, or by user) and reads the page's
// transactions after.
func (db *DB) Transactions(ctx context.Context, f billing.TxFilter) ([]billing.Transaction, error) {
	if f.Account != "" {
		if _, err := billing.ParseAccount(f.Account); err != nil {
			return nil, err
		}
	}
	var before *time.Time
	if !f.Before.PostedAt.IsZero() {
		at := f.Before.PostedAt.UTC()
		before = &at
	}
	limit := posting.PageSize(f.Limit)
	var sql string
	var args []any
	switch {
	case f.Account == "" && f.User == uuid.Nil:
		sql = txSelect + ` WHERE ($1::timestamptz IS NULL OR (t.posted_at, t.id) < ($1, $2))
			ORDER BY t.posted_at DESC, t.id DESC LIMIT $3`
		args = []any{before, f.Before.ID, limit}
	default:
		// A transaction with several entries on the account (or the
		// user's accounts) is listed once.
		cond := `e.user_id = $1`
		args = []any{f.User}
		if f.Account != "" {
			cond, args = `e.account_id = $1`, []any{string(f.Account)}
			if f.User != uuid.Nil {
				cond += ` AND EXISTS (SELECT 1 FROM ledger_entries u WHERE u.tx_id = e.tx_id AND u.user_id = $4)`
			}
		}
		sql = `WITH page AS (
			SELECT DISTINCT e.posted_at, e.tx_id FROM ledger_entries e
			WHERE ` + cond + ` AND ($2::timestamptz IS NULL OR (e.posted_at, e.tx_id) < ($2, $3))
			ORDER BY e.posted_at DESC, e.tx_id DESC LIMIT ` + strconv.Itoa(limit) + `)
		` + txSelect + ` WHERE t.id IN (SELECT tx_id FROM page) ORDER BY t.posted_at DESC, t.id DESC`
		args = append(args, before, f.Before.ID)
		if f.Account != "" && f.User != uuid.Nil {
			args = append(args, f.User)
		}
	}
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: transactions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (billing.Transaction, error) {
		t, _, err := scanTx(row)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: transactions: %w", err)
	}
	if out == nil {
		out = []billing.Transaction{}
	}
	return out, nil
}

// Totals implements billing.Ledger from the accounts' running sums.
func (db *DB) Totals(ctx context.Context) (map[billing.Currency]billing.DebitsCredits, error) {
	rows, err := db.pool.Query(ctx, `SELECT currency, sum(debits)::bigint, sum(credits)::bigint FROM ledger_accounts GROUP BY currency`)
	if err != nil {
		return nil, fmt.Errorf("postgres: totals: %w", err)
	}
	out := map[billing.Currency]billing.DebitsCredits{}
	var c billing.Currency
	var dc billing.DebitsCredits
	if _, err := pgx.ForEachRow(rows, []any{&c, &dc.Debits, &dc.Credits}, func() error {
		out[c] = dc
		return nil
	}); err != nil {
		return nil, fmt.Errorf("postgres: totals: %w", err)
	}
	return out, nil
}
