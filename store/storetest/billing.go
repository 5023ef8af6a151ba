package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/billing"
)

// BillingStores are what RunBilling exercises: billing's store and the
// analytics store whose rollups DailySpend and AdvertiserSpendSince read
// (one store implements both).
type BillingStores interface {
	billing.Store
	analytics.Store
}

// billingNow is a time as every store keeps it: UTC, to the microsecond.
func billingNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// newID is a UUIDv7, as the service makes record ids: ordered by time.
func newID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// apply applies w and fails the test on an error.
func apply(t *testing.T, s billing.Store, w billing.Write) {
	t.Helper()
	require.NoError(t, s.Apply(context.Background(), w))
}

// RunBilling runs the billing.Store contract beyond the ledger (RunLedger
// is that): records, versions, events, atomic writes, done keys and the
// reads of balances, entries and rollups. newStore returns an empty store
// for one subtest.
func RunBilling(t *testing.T, newStore func(t *testing.T) BillingStores) {
	t.Helper()
	ctx := context.Background()

	t.Run("top-ups are found by id, client key and payment, and versioned", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		now := billingNow()
		tu := billing.TopUp{ID: newID(), Advertiser: uuid.New(), ClientKey: "key-1", Amount: 5000, Currency: billing.USD,
			Status: billing.TopUpPending, CreatedAt: now, UpdatedAt: now}
		apply(t, s, billing.Write{TopUp: &tu})
		want := tu
		want.Version = 1
		got, err := s.TopUp(ctx, tu.ID)
		require.NoError(t, err)
		require.Equal(t, want, got)
		got, err = s.TopUpByClientKey(ctx, tu.Advertiser, "key-1")
		require.NoError(t, err)
		require.Equal(t, want, got)
		_, err = s.TopUpByPayment(ctx, "")
		require.ErrorIs(t, err, billing.ErrTopUpNotFound, "no payment yet: the empty id finds nothing")
		_, err = s.TopUpByClientKey(ctx, uuid.New(), "key-1")
		require.ErrorIs(t, err, billing.ErrTopUpNotFound, "a key is the advertiser's own")

		require.ErrorIs(t, s.Apply(ctx, billing.Write{TopUp: &tu}), billing.ErrVersionConflict, "created twice")
		other := tu
		other.ID = newID()
		require.ErrorIs(t, s.Apply(ctx, billing.Write{TopUp: &other}), billing.ErrVersionConflict, "another top-up with the key")

		next := want
		next.PaymentID, next.Status, next.UpdatedAt = "pi_123", billing.TopUpSucceeded, now.Add(time.Second)
		apply(t, s, billing.Write{TopUp: &next})
		require.ErrorIs(t, s.Apply(ctx, billing.Write{TopUp: &next}), billing.ErrVersionConflict, "version 1 is gone")
		next.Version = 2
		got, err = s.TopUpByPayment(ctx, "pi_123")
		require.NoError(t, err)
		require.Equal(t, next, got)
		got, err = s.TopUp(ctx, tu.ID)
		require.NoError(t, err)
		require.Equal(t, next, got)

		stale := want
		stale.Version = 5
		require.ErrorIs(t, s.Apply(ctx, billing.Write{TopUp: &stale}), billing.ErrVersionConflict)
		missing := want
		missing.ID = newID()
		require.ErrorIs(t, s.Apply(ctx, billing.Write{TopUp: &missing}), billing.ErrVersionConflict, "replacing what does not exist")
		_, err = s.TopUp(ctx, uuid.New())
		require.ErrorIs(t, err, billing.ErrTopUpNotFound)
		_, err = s.TopUpByPayment(ctx, "pi_none")
		require.ErrorIs(t, err, billing.ErrTopUpNotFound)
	})

	t.Run("TopUpsSince lists an advertiser's top-ups newest first", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		adv, start := uuid.New(), billingNow()
		var made []billing.TopUp
		for i := range 4 {
			at := start.Add(time.Duration(i) * time.Minute)
			for _, who := range []uuid.UUID{adv, uuid.New()} {
				tu := billing.TopUp{ID: newID(), Advertiser: who, ClientKey: fmt.Sprint("k", i), Amount: 500, Currency: billing.USD,
					Status: billing.TopUpPending, CreatedAt: at, UpdatedAt: at}
				apply(t, s, billing.Write{TopUp: &tu})
				tu.Version = 1
				if who == adv {
					made = append(made, tu)
				}
			}
		}
		got, err := s.TopUpsSince(ctx, adv, start.Add(time.Minute))
		require.NoError(t, err)
		require.Equal(t, []billing.TopUp{made[3], made[2], made[1]}, got, "from since on, inclusive, newest first")
		got, err = s.TopUpsSince(ctx, adv, start.Add(time.Hour))
		require.NoError(t, err)
		require.Empty(t, got)
	})

	t.Run("payouts page newest first by owner and status", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		a, b := uuid.New(), uuid.New()
		now := billingNow()
		var all []billing.Payout // oldest first
		for i := range 6 {
			// An owner has at most one pending payout: the others ended.
			p := billing.Payout{ID: newID(), Owner: a, Amount: int64(1000 + i), Currency: billing.USD, Status: billing.PayoutVoided,
				Destination: "acct_" + uuid.NewString()[:8], CreatedAt: now, UpdatedAt: now, Scheduled: i%2 == 0}
			if i%3 == 0 {
				p.Owner = b
			}
			if i == 1 || i == 3 || i == 4 {
				p.Status = billing.PayoutPending
			}
			if i == 4 { // all[1] is paid by now (below)
				paid := all[1]
				paid.Status, paid.TransferID, paid.Attempts, paid.LastError = billing.PayoutPaid, "tr_1", 2, "timeout, retried"
				apply(t, s, billing.Write{Payout: &paid})
				paid.Version = 2
				all[1] = paid
			}
			if i == 5 {
				p.Destination, p.Manual = "", true // a manual payout has none
			}
			apply(t, s, billing.Write{Payout: &p})
			p.Version = 1
			all = append(all, p)
		}
		paid := all[1]
		got, err := s.Payout(ctx, paid.ID)
		require.NoError(t, err)
		require.Equal(t, paid, got)
		got, err = s.Payout(ctx, all[5].ID)
		require.NoError(t, err)
		require.Equal(t, all[5], got)
		_, err = s.Payout(ctx, uuid.New())
		require.ErrorIs(t, err, billing.ErrPayoutNotFound)

		list := func(f billing.PayoutFilter) []billing.Payout {
			t.Helper()
			out, err := s.Payouts(ctx, f)
			require.NoError(t, err)
			return out
		}
		rev := func(idx ...int) []billing.Payout {
			out := []billing.Payout{}
			for _, i := range idx {
				out = append(out, all[i])
			}
			return out
		}
		require.Equal(t, rev(5, 4, 3, 2, 1, 0), list(billing.PayoutFilter{}))
		require.Equal(t, rev(5, 4), list(billing.PayoutFilter{Owner: a, Limit: 2}))
		require.Equal(t, rev(2, 1), list(billing.PayoutFilter{Owner: a, Before: all[4].ID, Limit: 2}))
		require.Equal(t, rev(3, 0), list(billing.PayoutFilter{Owner: b}))
		require.Equal(t, rev(1), list(billing.PayoutFilter{Status: billing.PayoutPaid}))
		require.Equal(t, rev(4), list(billing.PayoutFilter{Owner: a, Status: billing.PayoutPending, Before: all[5].ID}))
		require.Equal(t, rev(5, 2), list(billing.PayoutFilter{Owner: a, Status: billing.PayoutVoided}))
		require.Empty(t, list(billing.PayoutFilter{Owner: uuid.New()}))
	})

	t.Run("an owner has at most one pending payout, whoever creates it at once", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		owner, now := uuid.New(), billingNow()
		pending := func() billing.Payout {
			return billing.Payout{ID: newID(), Owner: owner, Amount: 500, Currency: billing.USD, Status: billing.PayoutPending,
				Manual: true, CreatedAt: now, UpdatedAt: now}
		}
		const racers = 8
		var wins atomic.Int64
		var g errgroup.Group
		for range racers {
			g.Go(func() error {
				p := pending()
				err := s.Apply(ctx, billing.Write{Payout: &p})
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, billing.ErrPayoutInProgress):
					return err
				}
				return nil
			})
		}
		require.NoError(t, g.Wait())
		require.EqualValues(t, 1, wins.Load(), "one pending payout")
		list, err := s.Payouts(ctx, billing.PayoutFilter{Owner: owner})
		require.NoError(t, err)
		require.Len(t, list, 1)

		// Refused with what came with it; accepted once the first ended.
		second := pending()
		budget := billing.UserAccount(billing.Budget, uuid.New(), billing.USD)
		tx := billing.Transaction{Key: "with-second-payout", Kind: billing.TxTopUp, EffectiveAt: now, Entries: []billing.Entry{
			{Account: budget, Side: billing.Credit, Amount: 5},
			{Account: billing.PlatformAccount(billing.PlatformCash, billing.USD), Side: billing.Debit, Amount: 5}}}
		require.ErrorIs(t, s.Apply(ctx, billing.Write{Payout: &second, Post: []billing.Transaction{tx}}), billing.ErrPayoutInProgress)
		_, err = s.TransactionByKey(ctx, tx.Key)
		require.ErrorIs(t, err, billing.ErrTransactionNotFound, "nothing of the refused write was posted")
		first := list[0]
		first.Status = billing.PayoutPaid
		apply(t, s, billing.Write{Payout: &first})
		apply(t, s, billing.Write{Payout: &second, Post: []billing.Transaction{tx}})
	})

	t.Run("payees are found by owner and by connected account", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		owner, now := uuid.New(), billingNow()
		p := billing.Payee{Owner: owner, ConnectedAccount: billing.ConnectedAccount{ID: "acct_first", Owner: owner,
			RequirementsDue: []string{"external_account", "tos_acceptance"}}, CreatedAt: now, UpdatedAt: now}
		apply(t, s, billing.Write{Payee: &p})
		p.Version = 1
		got, err := s.Payee(ctx, owner)
		require.NoError(t, err)
		require.Equal(t, p, got)
		got, err = s.PayeeByAccountID(ctx, "acct_first")
		require.NoError(t, err)
		require.Equal(t, p, got)

		p.ID, p.PayoutsEnabled, p.TransfersEnabled, p.DetailsSubmitted = "acct_second", true, true, true
		p.RequirementsDue, p.EventAt, p.UpdatedAt = nil, now.Add(time.Minute), now.Add(time.Minute)
		apply(t, s, billing.Write{Payee: &p})
		p.Version = 2
		got, err = s.PayeeByAccountID(ctx, "acct_second")
		require.NoError(t, err)
		require.Equal(t, p, got)
		_, err = s.PayeeByAccountID(ctx, "acct_first")
		require.ErrorIs(t, err, billing.ErrPayeeNotFound, "the old account no longer finds the owner")

		stale := p
		stale.Version = 1
		require.ErrorIs(t, s.Apply(ctx, billing.Write{Payee: &stale}), billing.ErrVersionConflict)
		_, err = s.Payee(ctx, uuid.New())
		require.ErrorIs(t, err, billing.ErrPayeeNotFound)
		_, err = s.PayeeByAccountID(ctx, "acct_nobody")
		require.ErrorIs(t, err, billing.ErrPayeeNotFound)
	})

	t.Run("holds list newest first, released ones included", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		owner, now := uuid.New(), billingNow()
		var holds []billing.Hold
		for i, r := range []billing.HoldReason{billing.HoldNewAccount, billing.HoldInvalidTraffic, billing.HoldManual} {
			h := billing.Hold{ID: uuid.New(), Owner: owner, Reason: r, Note: fmt.Sprint("note ", i),
				CreatedAt: now.Add(time.Duration(-i) * time.Hour)} // created earlier, stored later: the order is the storing
			if i == 0 {
				h.Until = now.Add(24 * time.Hour)
			}
			apply(t, s, billing.Write{Hold: &h})
			h.Version = 1
			holds = append(holds, h)
		}
		apply(t, s, billing.Write{Hold: &billing.Hold{ID: uuid.New(), Owner: uuid.New(), Reason: billing.HoldManual, CreatedAt: now}})
		released := holds[0]
		released.ReleasedAt, released.ReleasedBy = now.Add(time.Minute), uuid.New()
		apply(t, s, billing.Write{Hold: &released})
		released.Version = 2
		holds[0] = released

		got, err := s.Holds(ctx, owner)
		require.NoError(t, err)
		require.Equal(t, []billing.Hold{holds[2], holds[1], holds[0]}, got)
		require.NoError(t, s.Apply(ctx, billing.Write{Hold: &holds[1]}))
		require.ErrorIs(t, s.Apply(ctx, billing.Write{Hold: &holds[1]}), billing.ErrVersionConflict, "version 1 was replaced")
		got, err = s.Holds(ctx, uuid.New())
		require.NoError(t, err)
		require.Empty(t, got)
	})

	t.Run("events are saved once, applied once, listed oldest first", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		now := billingNow()
		event := func(i int) billing.StoredEvent {
			id := fmt.Sprintf("evt_%d_%s", i, uuid.NewString()[:8])
			ev := billing.Event{ID: id, Type: billing.EventPaymentSucceeded, Created: now.Add(-time.Minute).Truncate(time.Second),
				Payment: &billing.Payment{ID: "pi_" + id, Advertiser: uuid.New(), Amount: 500, Currency: billing.USD,
					Status: billing.PaymentSucceeded, Fee: 45, Created: now.Truncate(time.Second)}}
			if i%2 == 1 {
				ev.Type, ev.Account, ev.Payment = billing.EventAccountUpdated, "acct_"+id, nil
				ev.Connect = &billing.ConnectedAccount{ID: "acct_" + id, PayoutsEnabled: true, RequirementsDue: []string{"x"}}
			}
			return billing.StoredEvent{ID: id, Type: ev.Type, Account: ev.Account, Created: ev.Created,
				Payload: []byte(`{"id":"` + id + `"}`), Event: ev, ReceivedAt: now.Add(time.Duration(i) * time.Second)}
		}
		var saved []billing.StoredEvent
		for i := range 4 {
			e := event(i)
			isNew, err := s.SaveEvent(ctx, e)
			require.NoError(t, err)
			require.True(t, isNew)
			saved = append(saved, e)
		}
		again := saved[1]
		again.Payload = []byte("something else")
		isNew, err := s.SaveEvent(ctx, again)
		require.NoError(t, err)
		require.False(t, isNew, "an id is stored once")
		got, err := s.Event(ctx, saved[1].ID)
		require.NoError(t, err)
		require.Equal(t, saved[1], got, "the first one kept")
		_, err = s.Event(ctx, "evt_none")
		require.ErrorIs(t, err, billing.ErrEventNotFound)

		unprocessed, err := s.UnprocessedEvents(ctx, 3)
		require.NoError(t, err)
		require.Equal(t, saved[:3], unprocessed, "oldest received first, up to the limit")

		apply(t, s, billing.Write{Processed: saved[0].ID})
		require.ErrorIs(t, s.Apply(ctx, billing.Write{Processed: saved[0].ID, Done: []string{"x"}}), billing.ErrAlreadyApplied)
		done, err := s.Done(ctx, "x")
		require.NoError(t, err)
		require.False(t, done, "a Write of an applied event changes nothing")
		require.ErrorIs(t, s.Apply(ctx, billing.Write{Processed: "evt_none"}), billing.ErrEventNotFound)
		got, err = s.Event(ctx, saved[0].ID)
		require.NoError(t, err)
		require.False(t, got.ProcessedAt.IsZero(), "marked applied")
		unprocessed, err = s.UnprocessedEvents(ctx, 0)
		require.NoError(t, err)
		require.Equal(t, saved[1:], unprocessed)
	})

	t.Run("a Write is all or nothing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		now := billingNow()
		adv, owner := uuid.New(), uuid.New()
		_, _, err := s.Post(ctx, topUp("topup:1", adv, 100, 0))
		require.NoError(t, err)
		ev := billing.StoredEvent{ID: "evt_" + uuid.NewString(), Type: billing.EventPaymentSucceeded, Payload: []byte("{}"), ReceivedAt: now}
		_, err = s.SaveEvent(ctx, ev)
		require.NoError(t, err)
		existing := billing.Payout{ID: newID(), Owner: owner, Amount: 1, Currency: billing.USD, Status: billing.PayoutPending, CreatedAt: now, UpdatedAt: now}
		apply(t, s, billing.Write{Payout: &existing})

		tu := billing.TopUp{ID: newID(), Advertiser: adv, ClientKey: "k", Amount: 100, Currency: billing.USD, Status: billing.TopUpSucceeded, CreatedAt: now, UpdatedAt: now}
		hold := billing.Hold{ID: uuid.New(), Owner: owner, Reason: billing.HoldManual, CreatedAt: now}
		payee := billing.Payee{Owner: owner, ConnectedAccount: billing.ConnectedAccount{ID: "acct_" + uuid.NewString()[:8], Owner: owner}, CreatedAt: now, UpdatedAt: now}
		fine := settle("settle:fine", adv, owner, 60, 40)
		tooMuch := settle("settle:too-much", adv, owner, 60, 40) // with fine, 120 of 100
		paid := existing
		paid.Version, paid.Status = 1, billing.PayoutPaid
		for _, tc := range []struct {
			description string
			w           billing.Write
			expectErr   error
		}{
			{"a posting short of funds", billing.Write{TopUp: &tu, Hold: &hold, Payee: &payee, Payout: &paid,
				Post: []billing.Transaction{fine, tooMuch}, Processed: ev.ID, Done: []string{"done:1"}}, billing.ErrInsufficientFunds},
			{"a record that changed", billing.Write{TopUp: &tu, Payout: &existing, Post: []billing.Transaction{fine},
				Processed: ev.ID, Done: []string{"done:1"}}, billing.ErrVersionConflict},
			{"an invalid posting", billing.Write{TopUp: &tu, Post: []billing.Transaction{fine, {Key: "bad"}}, Done: []string{"done:1"}},
				billing.ErrInvalidTransaction},
		} {
			require.ErrorIs(t, s.Apply(ctx, tc.w), tc.expectErr, tc.description)
			_, err := s.TopUp(ctx, tu.ID)
			require.ErrorIs(t, err, billing.ErrTopUpNotFound, tc.description)
			got, err := s.Payout(ctx, existing.ID)
			require.NoError(t, err)
			require.Equal(t, billing.PayoutPending, got.Status, tc.description)
			_, err = s.Payee(ctx, owner)
			require.ErrorIs(t, err, billing.ErrPayeeNotFound, tc.description)
			holds, err := s.Holds(ctx, owner)
			require.NoError(t, err)
			require.Empty(t, holds, tc.description)
			_, err = s.TransactionByKey(ctx, "settle:fine")
			require.ErrorIs(t, err, billing.ErrTransactionNotFound, tc.description)
			e, err := s.Event(ctx, ev.ID)
			require.NoError(t, err)
			require.True(t, e.ProcessedAt.IsZero(), tc.description)
			done, err := s.Done(ctx, "done:1")
			require.NoError(t, err)
			require.False(t, done, tc.description)
			requireBalances(t, s, map[billing.AccountID]int64{budget(adv): 100, held(owner): 0})
		}

		// All of it holds: all of it is written.
		apply(t, s, billing.Write{TopUp: &tu, Hold: &hold, Payee: &payee, Payout: &paid,
			Post: []billing.Transaction{fine, topUp("topup:1", adv, 100, 0)}, Processed: ev.ID, Done: []string{"done:1"}})
		got, err := s.Payout(ctx, existing.ID)
		require.NoError(t, err)
		require.Equal(t, billing.PayoutPaid, got.Status)
		require.Equal(t, int64(2), got.Version)
		_, err = s.Payee(ctx, owner)
		require.NoError(t, err)
		done, err := s.Done(ctx, "done:1")
		require.NoError(t, err)
		require.True(t, done)
		requireBalances(t, s, map[billing.AccountID]int64{budget(adv): 40, held(owner): 40})
		requireBalanced(t, s)
	})

	t.Run("done keys are recorded once and read back", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		done, err := s.Done(ctx, "settled:2026-12-01")
		require.NoError(t, err)
		require.False(t, done)
		apply(t, s, billing.Write{Done: []string{"settled:2026-12-01", "released:2026-11-24"}})
		apply(t, s, billing.Write{Done: []string{"settled:2026-12-01"}})
		for _, k := range []string{"settled:2026-12-01", "released:2026-11-24"} {
			done, err := s.Done(ctx, k)
			require.NoError(t, err)
			require.True(t, done, k)
		}
		done, err = s.Done(ctx, "settled:2026-12-02")
		require.NoError(t, err)
		require.False(t, done)
		many, err := s.DoneKeys(ctx, []string{"settled:2026-12-02", "settled:2026-12-01", "released:2026-11-24", "released:2026-11-24"})
		require.NoError(t, err)
		require.Equal(t, map[string]bool{"settled:2026-12-01": true, "released:2026-11-24": true}, many)
		none, err := s.DoneKeys(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, none)
	})

	t.Run("AccountsAtLeast pages one kind's balances in id order", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var ids []billing.AccountID
		amounts := map[billing.AccountID]int64{}
		for i := range 5 {
			owner := uuid.New()
			id := billing.UserAccount(billing.Available, owner, billing.USD)
			amount := int64(10 * (i + 1))
			_, _, err := s.Post(ctx, billing.Transaction{Key: fmt.Sprint("release:", i), Kind: billing.TxRelease, EffectiveAt: ledgerDay,
				Entries: []billing.Entry{
					{Account: platform(billing.PlatformRevenue), Side: billing.Debit, Amount: amount},
					{Account: id, Side: billing.Credit, Amount: amount},
				}})
			require.NoError(t, err)
			ids, amounts[id] = append(ids, id), amount
			_, _, err = s.Post(ctx, topUp(fmt.Sprint("topup:", i), owner, 1000, 0)) // a budget: another kind
			require.NoError(t, err)
		}
		_, _, err := s.Post(ctx, billing.Transaction{Key: "eur", Kind: billing.TxRelease, EffectiveAt: ledgerDay,
			Entries: []billing.Entry{
				{Account: billing.PlatformAccount(billing.PlatformRevenue, "eur"), Side: billing.Debit, Amount: 1000},
				{Account: billing.UserAccount(billing.Available, uuid.New(), "eur"), Side: billing.Credit, Amount: 1000},
			}})
		require.NoError(t, err)
		slices.Sort(ids)
		var want []billing.AccountID
		for _, id := range ids {
			if amounts[id] >= 25 {
				want = append(want, id)
			}
		}
		var got []billing.AccountID
		var after billing.AccountID
		for {
			page, err := s.AccountsAtLeast(ctx, billing.Available, billing.USD, 25, after, 2)
			require.NoError(t, err)
			for _, b := range page {
				require.Equal(t, amounts[b.Account], b.Micros)
				require.False(t, b.UpdatedAt.IsZero())
				got = append(got, b.Account)
			}
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1].Account
		}
		require.Equal(t, want, got)
		platformKind, err := s.AccountsAtLeast(ctx, billing.PlatformRevenue, billing.USD, -150, "", 10)
		require.NoError(t, err)
		require.Equal(t, []billing.Balance{{Account: platform(billing.PlatformRevenue), Micros: -150,
			UpdatedAt: platformKind[0].UpdatedAt}}, platformKind, "a platform account counts whole")
	})

	t.Run("EntryTotals sums kinds of transactions by account kind", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		adv, owner, other := uuid.New(), uuid.New(), uuid.New()
		post := func(tx billing.Transaction, at time.Time) {
			t.Helper()
			tx.EffectiveAt = at
			_, _, err := s.Post(ctx, tx)
			require.NoError(t, err)
		}
		post(topUp("topup:1", adv, 1000, 30), ledgerDay)
		post(settle("settle:1", adv, owner, 600, 420), ledgerDay.Add(time.Hour))
		post(settle("settle:2", adv, other, 100, 70), ledgerDay.Add(2*time.Hour))
		post(settle("settle:late", adv, owner, 50, 35), ledgerDay.Add(24*time.Hour))

		totals := func(kinds []billing.TxKind, user uuid.UUID) map[billing.AccountKind]int64 {
			t.Helper()
			out, err := s.EntryTotals(ctx, kinds, user, ledgerDay, ledgerDay.Add(24*time.Hour))
			require.NoError(t, err)
			return out
		}
		require.Equal(t, map[billing.AccountKind]int64{billing.Budget: -700, billing.Held: 490, billing.PlatformRevenue: 210},
			totals([]billing.TxKind{billing.TxSettlement}, uuid.Nil))
		require.Equal(t, map[billing.AccountKind]int64{billing.Held: 420, billing.PlatformRevenue: 210},
			totals([]billing.TxKind{billing.TxSettlement}, owner), "the owner's accounts and the platform's")
		require.Equal(t, map[billing.AccountKind]int64{billing.Budget: 300, billing.Held: 490, billing.PlatformRevenue: 210,
			billing.PlatformCash: 970, billing.PlatformFees: 30},
			totals([]billing.TxKind{billing.TxSettlement, billing.TxTopUp}, uuid.Nil))
		require.Empty(t, totals([]billing.TxKind{billing.TxPayout}, uuid.Nil))
	})

	t.Run("DailySpend and AdvertiserSpendSince read the rollups", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		day := ledgerDay
		owners := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
		slices.SortFunc(owners, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
		adv1, adv2 := uuid.NewString(), uuid.NewString()
		var events []analytics.Event
		serve := func(owner uuid.UUID, source, adv string, at time.Time, n int, spend int64, valid bool) {
			for range n {
				e := analytics.Event{TrackingID: newID(), Type: analytics.Impression,
					Ad: tracking.Ad{Owner: owner, Placement: "main", Source: source, AdID: "ad-" + adv[:4], AdvertiserID: adv,
						PriceModel: "cpm", PriceMicros: spend * 1000, Billable: true, IssuedAt: at.Add(-time.Second)},
					OccurredAt: at, ReceivedAt: at, Valid: valid, OwnerShareBP: 7000}
				if valid {
					e.SpendMicros, e.OwnerEarningsMicros = spend, spend*7/10
				} else {
					e.Rule = analytics.RuleBotUserAgent
				}
				events = append(events, e)
			}
		}
		serve(owners[0], "local", adv1, day.Add(time.Hour), 3, 1000, true)
		serve(owners[0], "local", adv1, day.Add(20*time.Hour), 2, 1000, true)
		serve(owners[0], "kevel", "kevel-adv", day.Add(2*time.Hour), 4, 500, true)
		serve(owners[0], "local", adv2, day.Add(3*time.Hour), 2, 0, false) // invalid: counted, no spend
		serve(owners[1], "local", adv2, day.Add(23*time.Hour+59*time.Minute), 1, 2000, true)
		serve(owners[2], "local", adv1, day.Add(-time.Minute), 5, 1000, true) // the day before
		serve(owners[2], "local", adv1, day.Add(24*time.Hour), 5, 1000, true) // the day after
		_, err := s.WriteEvents(ctx, events)
		require.NoError(t, err)

		want := []billing.OwnerSpend{
			{Owner: owners[0], Events: 11, InvalidEvents: 2, Lines: []billing.SpendLine{
				{Source: "kevel", Advertiser: "kevel-adv", SpendMicros: 2000, OwnerMicros: 1400},
				{Source: "local", Advertiser: adv1, SpendMicros: 5000, OwnerMicros: 3500},
			}},
			{Owner: owners[1], Events: 1, Lines: []billing.SpendLine{{Source: "local", Advertiser: adv2, SpendMicros: 2000, OwnerMicros: 1400}}},
		}
		got, err := s.DailySpend(ctx, day.Add(13*time.Hour), uuid.Nil, 0)
		require.NoError(t, err)
		require.Equal(t, want, got, "the UTC day of the time given")
		page, err := s.DailySpend(ctx, day, uuid.Nil, 1)
		require.NoError(t, err)
		require.Equal(t, want[:1], page)
		page, err = s.DailySpend(ctx, day, owners[0], 1)
		require.NoError(t, err)
		require.Equal(t, want[1:], page)
		page, err = s.DailySpend(ctx, day, owners[1], 1)
		require.NoError(t, err)
		require.Empty(t, page)

		// A sweep's page of 1,000 is not cut at the listings' 500.
		var many []analytics.Event
		for range 700 {
			events = events[:0]
			serve(uuid.New(), "kevel", "kevel-adv", day.Add(48*time.Hour), 1, 10, true)
			many = append(many, events...)
		}
		_, err = s.WriteEvents(ctx, many)
		require.NoError(t, err)
		page, err = s.DailySpend(ctx, day.Add(48*time.Hour), uuid.Nil, 1000)
		require.NoError(t, err)
		require.Len(t, page, 700)
		page, err = s.DailySpend(ctx, day.Add(48*time.Hour), uuid.Nil, 0)
		require.NoError(t, err)
		require.Len(t, page, 50, "no limit: 50")

		spent, err := s.AdvertiserSpendSince(ctx, []string{adv1, adv2, "kevel-adv", uuid.NewString()}, day)
		require.NoError(t, err)
		require.Equal(t, int64(10_000), spent[adv1], "the day's and the day after's, not the day before's")
		require.Equal(t, int64(2000), spent[adv2])
		require.Zero(t, spent["kevel-adv"], "only local advertisers' budgets pay")
		spent, err = s.AdvertiserSpendSince(ctx, []string{adv1}, day.Add(21*time.Hour))
		require.NoError(t, err)
		require.Equal(t, map[string]int64{adv1: 5000}, spent)
	})
}
