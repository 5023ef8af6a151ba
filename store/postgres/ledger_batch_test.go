package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// A batch of postings posts as the same postings would one after the
// other: one short of funds fails alone, a debit before the credit that
// would cover it fails, a key twice posts once.
func TestPostingBatchesPostAsInTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.New(t)
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cash := billing.PlatformAccount(billing.PlatformCash, billing.USD)
	move := func(key string, from, to billing.AccountID, amount int64) billing.Transaction {
		return billing.Transaction{Key: key, Kind: billing.TxAdjustment, EffectiveAt: day, Entries: []billing.Entry{
			{Account: from, Side: billing.Debit, Amount: amount}, {Account: to, Side: billing.Credit, Amount: amount}}}
	}
	a, b := uuid.New(), uuid.New()
	budgetA, budgetB := billing.UserAccount(billing.Budget, a, billing.USD), billing.UserAccount(billing.Budget, b, billing.USD)
	held := billing.UserAccount(billing.Held, uuid.New(), billing.USD)

	for _, tc := range []struct {
		description string
		batch       []billing.Transaction
		expectErr   []error // per posting
		posted      []bool
		balances    map[billing.AccountID]int64
	}{
		{"funded, all post together",
			[]billing.Transaction{move("fund:a", cash, budgetA, 100), move("fund:b", cash, budgetB, 50)},
			[]error{nil, nil}, []bool{true, true}, map[billing.AccountID]int64{budgetA: 100, budgetB: 50}},
		{"one short of funds fails alone",
			[]billing.Transaction{move("spend:a", budgetA, held, 60), move("spend:b", budgetB, held, 80), move("spend:a2", budgetA, held, 30)},
			[]error{nil, billing.ErrInsufficientFunds, nil}, []bool{true, false, true}, map[billing.AccountID]int64{budgetA: 10, budgetB: 50, held: 90}},
		{"a debit before the credit that would cover it fails",
			[]billing.Transaction{move("spend:b2", budgetB, held, 70), move("fund:b2", cash, budgetB, 100)},
			[]error{billing.ErrInsufficientFunds, nil}, []bool{false, true}, map[billing.AccountID]int64{budgetB: 150, held: 90}},
		{"a key twice posts once, and a replay posts nothing",
			[]billing.Transaction{move("fund:a2", cash, budgetA, 5), move("fund:a2", cash, budgetA, 5), move("fund:a", cash, budgetA, 100)},
			[]error{nil, nil, nil}, []bool{true, false, false}, map[billing.AccountID]int64{budgetA: 15}},
	} {
		results := db.PostTogether(ctx, tc.batch)
		for i, r := range results {
			if tc.expectErr[i] == nil {
				require.NoError(t, r.Err, "%s: posting %d", tc.description, i)
			} else {
				require.ErrorIs(t, r.Err, tc.expectErr[i], "%s: posting %d", tc.description, i)
			}
			require.Equal(t, tc.posted[i], r.Posted, "%s: posting %d", tc.description, i)
		}
		ids := make([]billing.AccountID, 0, len(tc.balances))
		for id := range tc.balances {
			ids = append(ids, id)
		}
		bals, err := db.Balances(ctx, ids)
		require.NoError(t, err)
		for id, want := range tc.balances {
			require.Equal(t, want, bals[id].Micros, "%s: %s", tc.description, id)
		}
	}
	first, err := db.TransactionByKey(ctx, "fund:a2")
	require.NoError(t, err)
	results := db.PostTogether(ctx, []billing.Transaction{move("fund:a2", cash, budgetA, 5)})
	require.Equal(t, first, results[0].Stored, "the replay returns the first posting")
}
