package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/adshare/adshare/billing"
)

// ledgerDay is the EffectiveAt of the suite's transactions.
var ledgerDay = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// Accounts the suite's transactions use.
func budget(u uuid.UUID) billing.AccountID {
	return billing.UserAccount(billing.Budget, u, billing.USD)
}
func held(u uuid.UUID) billing.AccountID { return billing.UserAccount(billing.Held, u, billing.USD) }
func platform(k billing.AccountKind) billing.AccountID {
	return billing.PlatformAccount(k, billing.USD)
}

// topUp is an advertiser's top-up of gross micros, fee micros of which
// (if any) the processor kept.
func topUp(key string, adv uuid.UUID, gross, fee int64) billing.Transaction {
	t := billing.Transaction{
		Key: key, Kind: billing.TxTopUp, EffectiveAt: ledgerDay,
		Entries: []billing.Entry{
			{Account: platform(billing.PlatformCash), Side: billing.Debit, Amount: gross - fee},
			{Account: platform(billing.PlatformFees), Side: billing.Debit, Amount: fee},
			{Account: budget(adv), Side: billing.Credit, Amount: gross},
		},
		Refs: map[string]string{"payment_intent": "pi_" + key},
	}
	if fee == 0 {
		t.Entries = slices.Delete(t.Entries, 1, 2)
	}
	return t
}

// settle is a settlement of spend micros of adv's budget, share of them to
// owner and the rest to the platform.
func settle(key string, adv, owner uuid.UUID, spend, share int64) billing.Transaction {
	return billing.Transaction{
		Key: key, Kind: billing.TxSettlement, EffectiveAt: ledgerDay,
		Entries: []billing.Entry{
			{Account: budget(adv), Side: billing.Debit, Amount: spend},
			{Account: held(owner), Side: billing.Credit, Amount: share},
			{Account: platform(billing.PlatformRevenue), Side: billing.Credit, Amount: spend - share},
		},
		Memo: "day settled",
	}
}

// RunLedger runs the billing.Ledger contract. newLedger returns an empty
// ledger for one subtest.
func RunLedger(t *testing.T, newLedger func(t *testing.T) billing.Ledger) {
	t.Helper()
	ctx := context.Background()

	t.Run("posting moves balances on their normal sides", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		adv, owner := uuid.New(), uuid.New()

		in := topUp("topup:1", adv, 1_000_000, 30_000)
		in.EffectiveAt = ledgerDay.Add(1500 * time.Nanosecond).In(time.FixedZone("CET", 3600))
		stored, posted, err := l.Post(ctx, in)
		require.NoError(t, err)
		require.True(t, posted)
		require.NotEqual(t, uuid.Nil, stored.ID, "Post sets the id")
		require.Equal(t, uuid.Version(7), stored.ID.Version(), "a UUIDv7")
		require.False(t, stored.PostedAt.IsZero(), "Post sets PostedAt")
		require.Equal(t, in.Entries, stored.Entries)
		require.Equal(t, in.Refs, stored.Refs)
		require.Equal(t, ledgerDay.Add(time.Microsecond), stored.EffectiveAt, "in UTC, to the microsecond")
		require.Equal(t, in.ContentHash(), stored.ContentHash(), "what is stored hashes as what was posted")
		got, err := l.TransactionByKey(ctx, "topup:1")
		require.NoError(t, err)
		require.Equal(t, stored, got)

		given := uuid.Must(uuid.NewV7())
		spend := settle("settle:1", adv, owner, 600_000, 420_000)
		spend.ID = given
		stored2, posted, err := l.Post(ctx, spend)
		require.NoError(t, err)
		require.True(t, posted)
		require.Equal(t, given, stored2.ID, "a given id is kept")
		require.Nil(t, stored2.Refs, "no refs are nil refs")
		require.Equal(t, "day settled", stored2.Memo)
		require.False(t, stored2.PostedAt.Before(stored.PostedAt))

		untouched := billing.UserAccount(billing.Available, owner, billing.USD)
		requireBalances(t, l, map[billing.AccountID]int64{
			platform(billing.PlatformCash):    970_000,
			platform(billing.PlatformFees):    30_000,
			budget(adv):                       400_000,
			held(owner):                       420_000,
			platform(billing.PlatformRevenue): 180_000,
			untouched:                         0,
		})
		bals, err := l.Balances(ctx, []billing.AccountID{budget(adv), platform(billing.PlatformCash), untouched})
		require.NoError(t, err)
		require.True(t, bals[budget(adv)].UpdatedAt.Equal(stored2.PostedAt), "updated by the last posting")
		require.True(t, bals[platform(billing.PlatformCash)].UpdatedAt.Equal(stored.PostedAt))
		require.Equal(t, billing.Balance{Account: untouched}, bals[untouched], "no entries: zero, never updated")

		_, err = l.Balances(ctx, []billing.AccountID{"budget:nobody:usd"})
		require.ErrorIs(t, err, billing.ErrInvalidAccount)
		_, err = l.TransactionByKey(ctx, "topup:2")
		require.ErrorIs(t, err, billing.ErrTransactionNotFound)
	})

	t.Run("the platform's accounts may go negative, users' may not", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		owner := uuid.New()
		// Kevel reports revenue it owes before any cash came in.
		_, _, err := l.Post(ctx, billing.Transaction{
			Key: "kevel:1", Kind: billing.TxSettlement, EffectiveAt: ledgerDay,
			Entries: []billing.Entry{
				{Account: platform(billing.PlatformRevenue), Side: billing.Debit, Amount: 5},
				{Account: platform(billing.PlatformCash), Side: billing.Credit, Amount: 5},
			},
		})
		require.NoError(t, err)
		requireBalances(t, l, map[billing.AccountID]int64{
			platform(billing.PlatformRevenue): -5, platform(billing.PlatformCash): -5,
		})
		// owed is debit-normal: a credit beyond what is owed would take it below zero.
		owed := billing.UserAccount(billing.Owed, owner, billing.USD)
		_, _, err = l.Post(ctx, billing.Transaction{
			Key: "release:1", Kind: billing.TxRelease, EffectiveAt: ledgerDay,
			Entries: []billing.Entry{
				{Account: platform(billing.PlatformRevenue), Side: billing.Debit, Amount: 5},
				{Account: owed, Side: billing.Credit, Amount: 5},
			},
		})
		require.ErrorIs(t, err, billing.ErrInsufficientFunds)
		requireBalances(t, l, map[billing.AccountID]int64{owed: 0, platform(billing.PlatformRevenue): -5})
	})

	t.Run("replaying a key returns the first posting and changes nothing", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		adv, owner := uuid.New(), uuid.New()
		_, _, err := l.Post(ctx, topUp("topup:1", adv, 10, 0))
		require.NoError(t, err)
		first, posted, err := l.Post(ctx, settle("settle:1", adv, owner, 10, 7))
		require.NoError(t, err)
		require.True(t, posted)
		totals, err := l.Totals(ctx)
		require.NoError(t, err)

		again := settle("settle:1", adv, owner, 10, 7)
		again.ID = uuid.New() // the id is not content
		replay, posted, err := l.Post(ctx, again)
		require.NoError(t, err, "the budget is spent, but a replay posts nothing: it does not need the funds again")
		require.False(t, posted)
		require.Equal(t, first, replay, "the first posting, its id and time")
		requireBalances(t, l, map[billing.AccountID]int64{budget(adv): 0, held(owner): 7})
		after, err := l.Totals(ctx)
		require.NoError(t, err)
		require.Equal(t, totals, after)
		list, err := l.Transactions(ctx, billing.TxFilter{})
		require.NoError(t, err)
		require.Len(t, list, 2)
	})

	t.Run("concurrent posts of one key post it once", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		adv := uuid.New()
		var posts atomic.Int32
		ids := make([]uuid.UUID, 20)
		requireWins(t, len(ids), len(ids), nil, func(i int) error {
			stored, posted, err := l.Post(ctx, topUp("topup:same", adv, 100, 1))
			if posted {
				posts.Add(1)
			}
			ids[i] = stored.ID
			return err
		})
		require.Equal(t, int32(1), posts.Load(), "exactly one call posted")
		for _, id := range ids {
			require.Equal(t, ids[0], id, "every call returned the same posting")
		}
		requireBalances(t, l, map[billing.AccountID]int64{budget(adv): 100})
	})

	t.Run("a key posted with other content is a conflict", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		adv := uuid.New()
		first, _, err := l.Post(ctx, topUp("topup:1", adv, 100, 1))
		require.NoError(t, err)
		for _, other := range []billing.Transaction{
			topUp("topup:1", adv, 100, 2),
			topUp("topup:1", uuid.New(), 100, 1),
			func() billing.Transaction { t := topUp("topup:1", adv, 100, 1); t.Memo = "again"; return t }(),
			func() billing.Transaction {
				t := topUp("topup:1", adv, 100, 1)
				t.EffectiveAt = t.EffectiveAt.Add(time.Second)
				return t
			}(),
		} {
			_, _, err := l.Post(ctx, other)
			require.ErrorIs(t, err, billing.ErrKeyConflict)
		}
		// An id is one transaction's too.
		reused := topUp("topup:2", adv, 50, 0)
		reused.ID = first.ID
		_, _, err = l.Post(ctx, reused)
		require.ErrorIs(t, err, billing.ErrKeyConflict)
		_, err = l.TransactionByKey(ctx, "topup:2")
		require.ErrorIs(t, err, billing.ErrTransactionNotFound)

		got, err := l.TransactionByKey(ctx, "topup:1")
		require.NoError(t, err)
		require.Equal(t, first, got)
		requireBalances(t, l, map[billing.AccountID]int64{budget(adv): 100, platform(billing.PlatformFees): 1})
	})

	t.Run("an invalid transaction changes nothing", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		adv := uuid.New()
		for i, change := range []func(*billing.Transaction){
			func(tx *billing.Transaction) { tx.Entries[2].Amount++ },
			func(tx *billing.Transaction) { tx.Entries[2].Account = "budget:someone:usd" },
			func(tx *billing.Transaction) { tx.Entries[0].Amount = 0 },
			func(tx *billing.Transaction) { tx.Entries[1].Side = "sideways" },
			func(tx *billing.Transaction) { tx.Entries = nil },
			func(tx *billing.Transaction) { tx.Kind = "gift" },
			func(tx *billing.Transaction) { tx.EffectiveAt = time.Time{} },
			func(tx *billing.Transaction) { tx.Key = "" },
			func(tx *billing.Transaction) { tx.Reverses = uuid.New() },
			func(tx *billing.Transaction) { tx.Memo = "\xff" },
		} {
			tx := topUp(fmt.Sprintf("topup:%d", i), adv, 100, 1)
			change(&tx)
			_, posted, err := l.Post(ctx, tx)
			require.ErrorIs(t, err, billing.ErrInvalidTransaction, "change %d", i)
			require.False(t, posted)
			if tx.Key != "" {
				_, err = l.TransactionByKey(ctx, tx.Key)
				require.ErrorIs(t, err, billing.ErrTransactionNotFound, "change %d", i)
			}
		}
		requireEmptyLedger(t, l, budget(adv), platform(billing.PlatformCash), platform(billing.PlatformFees))
	})

	t.Run("insufficient funds change nothing", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		adv, owner := uuid.New(), uuid.New()
		_, _, err := l.Post(ctx, topUp("topup:1", adv, 100, 0))
		require.NoError(t, err)
		before, err := l.Balances(ctx, []billing.AccountID{budget(adv)})
		require.NoError(t, err)

		_, posted, err := l.Post(ctx, settle("settle:1", adv, owner, 101, 70))
		require.ErrorIs(t, err, billing.ErrInsufficientFunds)
		require.False(t, posted)
		after, err := l.Balances(ctx, []billing.AccountID{budget(adv), held(owner)})
		require.NoError(t, err)
		require.Equal(t, before[budget(adv)], after[budget(adv)], "the budget is as it was, UpdatedAt too")
		require.Equal(t, billing.Balance{Account: held(owner)}, after[held(owner)], "the owner's account was not touched")
		requireBalances(t, l, map[billing.AccountID]int64{platform(billing.PlatformRevenue): 0})
		_, err = l.TransactionByKey(ctx, "settle:1")
		require.ErrorIs(t, err, billing.ErrTransactionNotFound)
		list, err := l.Transactions(ctx, billing.TxFilter{})
		require.NoError(t, err)
		require.Len(t, list, 1)

		// What counts is the balance after the whole transaction: a refill
		// and a larger spend in one transaction post.
		_, _, err = l.Post(ctx, billing.Transaction{
			Key: "settle:1", Kind: billing.TxAdjustment, EffectiveAt: ledgerDay,
			Entries: []billing.Entry{
				{Account: platform(billing.PlatformCash), Side: billing.Debit, Amount: 50},
				{Account: budget(adv), Side: billing.Credit, Amount: 50},
				{Account: budget(adv), Side: billing.Debit, Amount: 120},
				{Account: held(owner), Side: billing.Credit, Amount: 120},
			},
		})
		require.NoError(t, err, "the failed key is free")
		requireBalances(t, l, map[billing.AccountID]int64{budget(adv): 30, held(owner): 120})
		requireBalanced(t, l)
	})

	t.Run("a balance that would overflow is refused", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		move := func(key string, amount int64) error {
			_, _, err := l.Post(ctx, billing.Transaction{
				Key: key, Kind: billing.TxAdjustment, EffectiveAt: ledgerDay,
				Entries: []billing.Entry{
					{Account: platform(billing.PlatformCash), Side: billing.Debit, Amount: amount},
					{Account: platform(billing.PlatformRevenue), Side: billing.Credit, Amount: amount},
				},
			})
			return err
		}
		require.NoError(t, move("big", 1<<63-1))
		require.ErrorIs(t, move("more", 1), billing.ErrInvalidTransaction)
		requireBalances(t, l, map[billing.AccountID]int64{platform(billing.PlatformCash): 1<<63 - 1})
	})

	t.Run("a reversal restores the balances, once", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		adv, owner := uuid.New(), uuid.New()
		top, _, err := l.Post(ctx, topUp("topup:1", adv, 1000, 10))
		require.NoError(t, err)
		spend, _, err := l.Post(ctx, settle("settle:1", adv, owner, 400, 280))
		require.NoError(t, err)

		rev, posted, err := l.Post(ctx, spend.Reversal("reverse:settle:1", ledgerDay.Add(time.Hour)))
		require.NoError(t, err)
		require.True(t, posted)
		require.Equal(t, spend.ID, rev.Reverses)
		require.Equal(t, billing.TxReversal, rev.Kind)
		requireBalances(t, l, map[billing.AccountID]int64{
			budget(adv): 1000, held(owner): 0, platform(billing.PlatformRevenue): 0, platform(billing.PlatformCash): 990,
		})
		replay, posted, err := l.Post(ctx, spend.Reversal("reverse:settle:1", ledgerDay.Add(time.Hour)))
		require.NoError(t, err)
		require.False(t, posted)
		require.Equal(t, rev, replay)

		_, _, err = l.Post(ctx, spend.Reversal("reverse:settle:1:again", ledgerDay))
		require.ErrorIs(t, err, billing.ErrAlreadyReversed, "a transaction is reversed once")
		_, _, err = l.Post(ctx, billing.Transaction{ID: uuid.New(), Entries: spend.Entries}.Reversal("reverse:ghost", ledgerDay))
		require.ErrorIs(t, err, billing.ErrTransactionNotFound)
		partial := top.Reversal("reverse:topup:1:partly", ledgerDay)
		partial.Entries[0].Amount, partial.Entries[2].Amount = 490, 500
		_, _, err = l.Post(ctx, partial)
		require.ErrorIs(t, err, billing.ErrInvalidTransaction, "a reversal undoes all of it, not a part")

		// Once the budget is spent again, the top-up cannot be reversed.
		_, _, err = l.Post(ctx, settle("settle:2", adv, owner, 1000, 700))
		require.NoError(t, err)
		_, _, err = l.Post(ctx, top.Reversal("reverse:topup:1", ledgerDay))
		require.ErrorIs(t, err, billing.ErrInsufficientFunds)

		// A reversal is reversed like any transaction: the spend is back.
		_, _, err = l.Post(ctx, rev.Reversal("reverse:reverse:settle:1", ledgerDay))
		require.ErrorIs(t, err, billing.ErrInsufficientFunds, "the budget is spent by settle:2")
		_, _, err = l.Post(ctx, topUp("topup:2", adv, 400, 0))
		require.NoError(t, err)
		_, _, err = l.Post(ctx, rev.Reversal("reverse:reverse:settle:1", ledgerDay))
		require.NoError(t, err)
		requireBalances(t, l, map[billing.AccountID]int64{budget(adv): 0, held(owner): 980})
		requireBalanced(t, l)
	})

	t.Run("listing by user and account pages newest first", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		a, b, owner := uuid.New(), uuid.New(), uuid.New()
		var posted []billing.Transaction // oldest first
		post := func(tx billing.Transaction) {
			t.Helper()
			stored, _, err := l.Post(ctx, tx)
			require.NoError(t, err)
			posted = append(posted, stored)
		}
		for i := range 4 {
			post(topUp(fmt.Sprintf("topup:a:%d", i), a, 100, 1))
			post(topUp(fmt.Sprintf("topup:b:%d", i), b, 100, 1))
			post(settle(fmt.Sprintf("settle:a:%d", i), a, owner, 50, 35))
		}
		newestFirst := slices.Clone(posted)
		slices.Reverse(newestFirst)
		keep := func(f func(billing.Transaction) bool) []billing.Transaction {
			var out []billing.Transaction
			for _, tx := range newestFirst {
				if f(tx) {
					out = append(out, tx)
				}
			}
			return out
		}
		on := func(id billing.AccountID) func(billing.Transaction) bool {
			return func(tx billing.Transaction) bool {
				return slices.ContainsFunc(tx.Entries, func(e billing.Entry) bool { return e.Account == id })
			}
		}

		require.Equal(t, newestFirst, listAll(t, l, billing.TxFilter{Limit: 5}))
		require.Equal(t, keep(on(budget(b))), listAll(t, l, billing.TxFilter{User: b, Limit: 3}))
		require.Equal(t, keep(on(held(owner))), listAll(t, l, billing.TxFilter{User: owner, Limit: 1}))
		require.Equal(t, keep(on(platform(billing.PlatformRevenue))),
			listAll(t, l, billing.TxFilter{Account: platform(billing.PlatformRevenue), Limit: 2}))
		require.Equal(t, keep(on(held(owner))), listAll(t, l, billing.TxFilter{User: owner, Account: budget(a)}),
			"both: the transactions on a's budget that are also the owner's")
		require.Empty(t, listAll(t, l, billing.TxFilter{User: b, Account: budget(a)}))
		require.Empty(t, listAll(t, l, billing.TxFilter{User: uuid.New()}))

		// A page's cursor is stable: what is posted meanwhile is newer.
		page, err := l.Transactions(ctx, billing.TxFilter{Limit: 4})
		require.NoError(t, err)
		require.Equal(t, newestFirst[:4], page)
		post(topUp("topup:late", a, 1, 0))
		next, err := l.Transactions(ctx, billing.TxFilter{Limit: 4, Before: page[3].Cursor()})
		require.NoError(t, err)
		require.Equal(t, newestFirst[4:8], next)

		_, err = l.Transactions(ctx, billing.TxFilter{Account: "held:nobody:usd"})
		require.ErrorIs(t, err, billing.ErrInvalidAccount)
	})

	t.Run("a listing's limit is 1 to 500, 50 by default", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		adv := uuid.New()
		for i := range 55 {
			_, _, err := l.Post(ctx, topUp(fmt.Sprintf("topup:%d", i), adv, 10, 0))
			require.NoError(t, err)
		}
		for _, tt := range []struct{ limit, want int }{{0, 50}, {-1, 50}, {1, 1}, {1000, 55}} {
			list, err := l.Transactions(ctx, billing.TxFilter{Limit: tt.limit})
			require.NoError(t, err)
			require.Len(t, list, tt.want, "limit %d", tt.limit)
		}
	})

	t.Run("totals balance per currency", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		totals, err := l.Totals(ctx)
		require.NoError(t, err)
		require.Empty(t, totals)
		adv, owner := uuid.New(), uuid.New()
		_, _, err = l.Post(ctx, topUp("topup:1", adv, 1000, 30))
		require.NoError(t, err)
		_, _, err = l.Post(ctx, settle("settle:1", adv, owner, 600, 420))
		require.NoError(t, err)
		_, _, err = l.Post(ctx, billing.Transaction{
			Key: "topup:eur", Kind: billing.TxTopUp, EffectiveAt: ledgerDay,
			Entries: []billing.Entry{
				{Account: billing.PlatformAccount(billing.PlatformCash, "eur"), Side: billing.Debit, Amount: 7},
				{Account: billing.UserAccount(billing.Budget, adv, "eur"), Side: billing.Credit, Amount: 7},
			},
		})
		require.NoError(t, err)
		totals, err = l.Totals(ctx)
		require.NoError(t, err)
		require.Equal(t, map[billing.Currency]billing.DebitsCredits{
			billing.USD: {Debits: 1600, Credits: 1600},
			"eur":       {Debits: 7, Credits: 7},
		}, totals)
	})

	t.Run("parallel spenders never take a budget below zero", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		adv := uuid.New()
		_, _, err := l.Post(ctx, topUp("topup:1", adv, 30, 0))
		require.NoError(t, err)

		stop := make(chan struct{})
		var watched sync.WaitGroup
		var lowest atomic.Int64
		watched.Go(func() { // a reader sees no balance below zero, ever
			for {
				select {
				case <-stop:
					return
				default:
				}
				bals, err := l.Balances(ctx, []billing.AccountID{budget(adv)})
				if err == nil {
					lowest.Store(min(lowest.Load(), bals[budget(adv)].Micros))
				}
			}
		})
		requireWins(t, 50, 30, billing.ErrInsufficientFunds, func(i int) error {
			_, _, err := l.Post(ctx, billing.Transaction{
				Key: fmt.Sprintf("spend:%d", i), Kind: billing.TxSettlement, EffectiveAt: ledgerDay,
				Entries: []billing.Entry{
					{Account: budget(adv), Side: billing.Debit, Amount: 1},
					{Account: held(uuid.New()), Side: billing.Credit, Amount: 1},
				},
			})
			return err
		})
		close(stop)
		watched.Wait()
		require.Zero(t, lowest.Load(), "never negative")
		requireBalances(t, l, map[billing.AccountID]int64{budget(adv): 0})
		list, err := l.Transactions(ctx, billing.TxFilter{User: adv, Limit: 500})
		require.NoError(t, err)
		require.Len(t, list, 31, "the top-up and 30 spends")
		requireBalanced(t, l)
	})

	t.Run("random sequences keep the books", func(t *testing.T) {
		t.Parallel()
		l := newLedger(t)
		touched := map[billing.AccountID]bool{}
		rapid.Check(t, func(rt *rapid.T) {
			m := newLedgerModel(ctx, l)
			rt.Repeat(map[string]func(*rapid.T){
				"post":    m.post,
				"reverse": m.reverse,
				"replay":  m.replay,
				"":        m.check,
			})
			m.checkEntries(rt)
			maps.Copy(touched, m.platformStart)
			for id := range m.balances {
				touched[id] = true
			}
		})
		// Across every sequence: each balance is the sum of its entries.
		sums := map[billing.AccountID]int64{}
		for _, tx := range listAll(t, l, billing.TxFilter{Limit: 500}) {
			for _, e := range tx.Entries {
				a, err := billing.ParseAccount(e.Account)
				require.NoError(t, err)
				sums[e.Account] += a.Signed(e)
			}
		}
		ids := slices.Collect(maps.Keys(touched))
		bals, err := l.Balances(ctx, ids)
		require.NoError(t, err)
		for _, id := range ids {
			require.Equal(t, sums[id], bals[id].Micros, "%s is the sum of its entries", id)
		}
		requireBalanced(t, l)
	})
}

// ledgerModel is what one random sequence expects of the ledger: its own
// users' accounts (fresh, so they start at zero) and the platform's (shared
// with earlier sequences, so measured from where they stood).
type ledgerModel struct {
	ctx      context.Context
	l        billing.Ledger
	prefix   string
	accounts []billing.AccountID
	// balances are the expected balances of the sequence's accounts,
	// relative to platformStart for the platform's.
	balances      map[billing.AccountID]int64
	platformStart map[billing.AccountID]bool
	start         map[billing.AccountID]int64
	posted        []billing.Transaction
	reversed      map[uuid.UUID]bool
	n             int
}

func newLedgerModel(ctx context.Context, l billing.Ledger) *ledgerModel {
	m := &ledgerModel{ctx: ctx, l: l, prefix: uuid.NewString(), balances: map[billing.AccountID]int64{},
		platformStart: map[billing.AccountID]bool{}, reversed: map[uuid.UUID]bool{}}
	users := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for _, c := range []billing.Currency{billing.USD, "jpy"} {
		for _, u := range users {
			for _, k := range []billing.AccountKind{billing.Budget, billing.Held, billing.Available, billing.Owed} {
				m.accounts = append(m.accounts, billing.UserAccount(k, u, c))
			}
		}
		for _, k := range []billing.AccountKind{billing.PlatformCash, billing.PlatformRevenue, billing.PlatformUnfunded} {
			id := billing.PlatformAccount(k, c)
			m.accounts = append(m.accounts, id)
			m.platformStart[id] = true
		}
	}
	return m
}

// key is a fresh idempotency key of the sequence.
func (m *ledgerModel) key() string {
	m.n++
	return fmt.Sprintf("%s:%d", m.prefix, m.n)
}

// balance is an account's balance as the store has it, relative to the
// sequence's start for the platform's accounts.
func (m *ledgerModel) storeBalances(t *rapid.T) map[billing.AccountID]int64 {
	bals, err := m.l.Balances(m.ctx, m.accounts)
	if err != nil {
		t.Fatalf("balances: %v", err)
	}
	if m.start == nil {
		m.start = map[billing.AccountID]int64{}
		for id := range m.platformStart {
			m.start[id] = bals[id].Micros
		}
	}
	out := map[billing.AccountID]int64{}
	for _, id := range m.accounts {
		out[id] = bals[id].Micros - m.start[id]
	}
	return out
}

// expect posts tx and requires the outcome the model predicts.
func (m *ledgerModel) expect(t *rapid.T, tx billing.Transaction, want error) {
	after := maps.Clone(m.balances)
	short := false
	for _, e := range tx.Entries {
		a, _ := billing.ParseAccount(e.Account)
		after[e.Account] += a.Signed(e)
	}
	for id, micros := range after {
		a, _ := billing.ParseAccount(id)
		short = short || (a.NonNegative() && micros < 0)
	}
	if want == nil && short {
		want = billing.ErrInsufficientFunds
	}
	stored, posted, err := m.l.Post(m.ctx, tx)
	if want != nil {
		if !errors.Is(err, want) || posted {
			t.Fatalf("post %s: got posted %v, %v; want %v", tx.Key, posted, err, want)
		}
		return
	}
	if err != nil || !posted {
		t.Fatalf("post %s: got posted %v, %v; want a posting", tx.Key, posted, err)
	}
	m.balances = after
	m.posted = append(m.posted, stored)
	if tx.Reverses != uuid.Nil {
		m.reversed[tx.Reverses] = true
	}
}

// post posts a random balanced transaction: a few debits in one
// currency, and credits that share their sum.
func (m *ledgerModel) post(t *rapid.T) {
	c := rapid.SampledFrom([]billing.Currency{billing.USD, "jpy"}).Draw(t, "currency")
	var inCurrency []billing.AccountID
	for _, id := range m.accounts {
		if a, _ := billing.ParseAccount(id); a.Currency == c {
			inCurrency = append(inCurrency, id)
		}
	}
	account := rapid.SampledFrom(inCurrency)
	tx := billing.Transaction{
		Key:         m.key(),
		Kind:        rapid.SampledFrom([]billing.TxKind{billing.TxTopUp, billing.TxSettlement, billing.TxRelease, billing.TxAdjustment}).Draw(t, "kind"),
		EffectiveAt: ledgerDay,
	}
	var sum int64
	for range rapid.IntRange(1, 3).Draw(t, "debits") {
		amount := rapid.Int64Range(1, 1000).Draw(t, "debit")
		sum += amount
		tx.Entries = append(tx.Entries, billing.Entry{Account: account.Draw(t, "debited"), Side: billing.Debit, Amount: amount})
	}
	credits := rapid.IntRange(1, int(min(3, sum))).Draw(t, "credits")
	for i := range credits {
		amount := sum // the last credit takes what is left
		if after := int64(credits - 1 - i); after > 0 {
			amount = rapid.Int64Range(1, sum-after).Draw(t, "credit") // leaving 1 for each credit after
		}
		sum -= amount
		tx.Entries = append(tx.Entries, billing.Entry{Account: account.Draw(t, "credited"), Side: billing.Credit, Amount: amount})
	}
	m.expect(t, tx, nil)
}

// reverse reverses one of the sequence's postings.
func (m *ledgerModel) reverse(t *rapid.T) {
	if len(m.posted) == 0 {
		t.Skip("nothing to reverse")
	}
	orig := rapid.SampledFrom(m.posted).Draw(t, "reversed")
	var want error
	if m.reversed[orig.ID] {
		want = billing.ErrAlreadyReversed
	}
	m.expect(t, orig.Reversal(m.key(), ledgerDay), want)
}

// replay posts one of the sequence's postings again, as it was or
// changed.
func (m *ledgerModel) replay(t *rapid.T) {
	if len(m.posted) == 0 {
		t.Skip("nothing to replay")
	}
	orig := rapid.SampledFrom(m.posted).Draw(t, "replayed")
	again := orig.Clone()
	again.ID, again.PostedAt = uuid.Nil, time.Time{}
	if rapid.Bool().Draw(t, "changed") {
		again.Memo += "changed"
		if _, _, err := m.l.Post(m.ctx, again); !errors.Is(err, billing.ErrKeyConflict) {
			t.Fatalf("post %s changed: %v, want a key conflict", again.Key, err)
		}
		return
	}
	stored, posted, err := m.l.Post(m.ctx, again)
	if err != nil || posted || stored.ID != orig.ID {
		t.Fatalf("replay %s: posted %v, %v, id %s; want the first posting %s", again.Key, posted, err, stored.ID, orig.ID)
	}
}

// check holds the invariants: debits equal credits per currency, no
// account that may not go negative is, and the balances are the model's.
func (m *ledgerModel) check(t *rapid.T) {
	totals, err := m.l.Totals(m.ctx)
	if err != nil {
		t.Fatalf("totals: %v", err)
	}
	for c, dc := range totals {
		if dc.Debits != dc.Credits {
			t.Fatalf("%s: debits %d, credits %d", c, dc.Debits, dc.Credits)
		}
	}
	got := m.storeBalances(t)
	for _, id := range m.accounts {
		if a, _ := billing.ParseAccount(id); a.NonNegative() && got[id] < 0 {
			t.Fatalf("%s is below zero: %d", id, got[id])
		}
		if got[id] != m.balances[id] {
			t.Fatalf("%s: balance %d, want %d", id, got[id], m.balances[id])
		}
	}
}

// checkEntries holds that each of the sequence's users' accounts holds
// the sum of its entries, as the listing by account shows them.
func (m *ledgerModel) checkEntries(t *rapid.T) {
	got := m.storeBalances(t)
	for _, id := range m.accounts {
		if m.platformStart[id] {
			continue
		}
		var sum int64
		f := billing.TxFilter{Account: id, Limit: 500}
		for {
			page, err := m.l.Transactions(m.ctx, f)
			if err != nil {
				t.Fatalf("transactions: %v", err)
			}
			for _, tx := range page {
				for _, e := range tx.Entries {
					if e.Account == id {
						a, _ := billing.ParseAccount(id)
						sum += a.Signed(e)
					}
				}
			}
			if len(page) < f.Limit {
				break
			}
			f.Before = page[len(page)-1].Cursor()
		}
		if sum != got[id] {
			t.Fatalf("%s: balance %d, entries sum to %d", id, got[id], sum)
		}
	}
}

// listAll lists every transaction f selects, page by page, and requires
// no page to repeat a transaction.
func listAll(t *testing.T, l billing.Ledger, f billing.TxFilter) []billing.Transaction {
	t.Helper()
	var out []billing.Transaction
	seen := map[uuid.UUID]bool{}
	size := f.Limit
	if size < 1 {
		size = 50
	}
	for {
		page, err := l.Transactions(context.Background(), f)
		require.NoError(t, err)
		for _, tx := range page {
			require.False(t, seen[tx.ID], "%s listed twice", tx.Key)
			seen[tx.ID] = true
		}
		out = append(out, page...)
		if len(page) < size {
			return out
		}
		f.Before = page[len(page)-1].Cursor()
	}
}

// requireBalances requires the accounts' balances.
func requireBalances(t *testing.T, l billing.Ledger, want map[billing.AccountID]int64) {
	t.Helper()
	bals, err := l.Balances(context.Background(), slices.Collect(maps.Keys(want)))
	require.NoError(t, err)
	got := map[billing.AccountID]int64{}
	for id := range want {
		got[id] = bals[id].Micros
	}
	require.Equal(t, want, got)
}

// requireBalanced requires that debits equal credits in every currency.
func requireBalanced(t *testing.T, l billing.Ledger) {
	t.Helper()
	totals, err := l.Totals(context.Background())
	require.NoError(t, err)
	for c, dc := range totals {
		require.Equal(t, dc.Debits, dc.Credits, "%s balances", c)
	}
}

// requireEmptyLedger requires that nothing was ever posted.
func requireEmptyLedger(t *testing.T, l billing.Ledger, accounts ...billing.AccountID) {
	t.Helper()
	totals, err := l.Totals(context.Background())
	require.NoError(t, err)
	require.Empty(t, totals)
	list, err := l.Transactions(context.Background(), billing.TxFilter{})
	require.NoError(t, err)
	require.Empty(t, list)
	bals, err := l.Balances(context.Background(), accounts)
	require.NoError(t, err)
	for _, id := range accounts {
		require.Equal(t, billing.Balance{Account: id}, bals[id])
	}
}
