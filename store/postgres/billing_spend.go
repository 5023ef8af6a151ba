package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/store/internal/posting"
	"github.com/adshare/adshare/store/internal/rollup"
)

// AccountsAtLeast implements billing.Store (a platform account's slots
// summed), on ledger_accounts_kind_idx.
func (db *DB) AccountsAtLeast(ctx context.Context, k billing.AccountKind, c billing.Currency, floor int64, after billing.AccountID, limit int) ([]billing.Balance, error) {
	rows, err := db.pool.Query(ctx, `SELECT account_id, sum(balance)::bigint, max(updated_at) FROM ledger_accounts
		WHERE kind = $1 AND currency = $2 AND account_id > $3
		GROUP BY account_id HAVING sum(balance) >= $4 ORDER BY account_id LIMIT $5`,
		string(k), string(c), string(after), floor, posting.SweepPageSize(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: accounts at least: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (billing.Balance, error) {
		var b billing.Balance
		err := r.Scan(&b.Account, &b.Micros, &b.UpdatedAt)
		b.UpdatedAt = b.UpdatedAt.UTC()
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: accounts at least: %w", err)
	}
	return out, nil
}

// EntryTotals implements billing.Store: the entries' sums by kind of
// account and side, signed here by each kind's normal side.
func (db *DB) EntryTotals(ctx context.Context, kinds []billing.TxKind, user uuid.UUID, from, to time.Time) (map[billing.AccountKind]int64, error) {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	rows, err := db.pool.Query(ctx, `SELECT e.account_kind, e.side, sum(e.amount)::bigint
		FROM ledger_transactions t JOIN ledger_entries e ON e.tx_id = t.id
		WHERE t.kind = ANY($1) AND t.effective_at >= $2 AND t.effective_at < $3
		  AND ($4::uuid IS NULL OR e.user_id IS NULL OR e.user_id = $4)
		GROUP BY 1, 2`, names, from.UTC(), to.UTC(), nullUUID(user))
	if err != nil {
		return nil, fmt.Errorf("postgres: entry totals: %w", err)
	}
	out := map[billing.AccountKind]int64{}
	var kind billing.AccountKind
	var e billing.Entry
	if _, err := pgx.ForEachRow(rows, []any{&kind, &e.Side, &e.Amount}, func() error {
		out[kind] += billing.Account{Kind: kind}.Signed(e)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("postgres: entry totals: %w", err)
	}
	return out, nil
}

// dailySpendSQL reads one page of a day's spend from the rollups. The
// page's owners are the first $3 after $2 with events that day: the first
// $3 of each of the day's 24 hours, each read in owner order from the
// rollups' primary key (hour, owner_id, ...), merged. Their rows of the
// day are then read owner by owner (a LATERAL kept from being flattened by
// OFFSET 0: an index probe of rollups_hourly_owner_idx each, never a scan
// of the table, which a join let the planner hash at over a second a page
// with 800,000 rows) and summed per source and advertiser. The hours are
// an integer series, whose 24 rows the planner knows (a timestamp series
// it guesses at 1,000, and then JIT-compiles the query for a second).
// Rollup hours are whole UTC hours.
const dailySpendSQL = `
WITH owners AS (
	SELECT DISTINCT o.owner_id FROM generate_series(0, 23) AS h(n), LATERAL (
		SELECT DISTINCT r.owner_id FROM rollups_hourly r
		WHERE r.hour = $1::timestamptz + h.n * interval '1 hour' AND r.owner_id > $2 AND r.ad_key <> ''
		ORDER BY r.owner_id LIMIT $3) o
	ORDER BY o.owner_id LIMIT $3
)
SELECT owners.owner_id, split_part(r.ad_key, ':', 1) COLLATE "C", r.advertiser_id COLLATE "C",
	sum(r.impressions + r.clicks)::bigint,
	sum(r.impressions - r.valid_impressions + r.clicks - r.valid_clicks)::bigint,
	sum(r.spend_micros)::bigint, sum(r.owner_earnings_micros)::bigint
FROM owners, LATERAL (
	SELECT * FROM rollups_hourly r
	WHERE r.owner_id = owners.owner_id AND r.hour >= $1 AND r.hour < $1::timestamptz + interval '1 day' AND r.ad_key <> ''
	OFFSET 0) r
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`

// DailySpend implements billing.Store from the rollups (see
// dailySpendSQL).
func (db *DB) DailySpend(ctx context.Context, day time.Time, after uuid.UUID, limit int) ([]billing.OwnerSpend, error) {
	from := day.UTC().Truncate(24 * time.Hour)
	var out []billing.OwnerSpend
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// The planner's guess at the page's cost can pass jit_above_cost
		// (on rollups not vacuumed yet): compiling then costs more than
		// the query.
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, dailySpendSQL, from, after, posting.SweepPageSize(limit))
		if err != nil {
			return err
		}
		out, err = collectSpend(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: daily spend: %w", err)
	}
	return out, nil
}

// collectSpend reads dailySpendSQL's rows (by owner, source, advertiser)
// into each owner's spend.
func collectSpend(rows pgx.Rows) ([]billing.OwnerSpend, error) {
	var out []billing.OwnerSpend
	var (
		owner           uuid.UUID
		line            billing.SpendLine
		events, invalid int64
	)
	_, err := pgx.ForEachRow(rows, []any{&owner, &line.Source, &line.Advertiser, &events, &invalid, &line.SpendMicros, &line.OwnerMicros}, func() error {
		if len(out) == 0 || out[len(out)-1].Owner != owner {
			out = append(out, billing.OwnerSpend{Owner: owner})
		}
		os := &out[len(out)-1]
		os.Events += events
		os.InvalidEvents += invalid
		if line.SpendMicros != 0 || line.OwnerMicros != 0 {
			os.Lines = append(os.Lines, line)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []billing.OwnerSpend{}
	}
	return out, nil
}

// AdvertiserSpendSince implements billing.Store from the rollups of local
// ads, on rollups_hourly_advertiser_idx.
func (db *DB) AdvertiserSpendSince(ctx context.Context, advertisers []string, since time.Time) (map[string]int64, error) {
	rows, err := db.pool.Query(ctx, `SELECT advertiser_id, sum(spend_micros)::bigint FROM rollups_hourly
		WHERE advertiser_id = ANY($1) AND hour >= $2 AND ad_key LIKE $3 GROUP BY 1`,
		advertisers, since.UTC(), rollup.LocalSource+":%")
	if err != nil {
		return nil, fmt.Errorf("postgres: advertiser spend: %w", err)
	}
	out := map[string]int64{}
	var adv string
	var spend int64
	if _, err := pgx.ForEachRow(rows, []any{&adv, &spend}, func() error {
		out[adv] = spend
		return nil
	}); err != nil {
		return nil, fmt.Errorf("postgres: advertiser spend: %w", err)
	}
	return out, nil
}
