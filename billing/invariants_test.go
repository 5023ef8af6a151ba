package billing_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/billingtest"
	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/store/memory"
)

// fate is what happens to one top-up at the processor.
type fate struct {
	declineFirst bool    // a declined attempt before the outcome
	cancel       bool    // canceled instead of paid
	refunds      []int64 // partial refunds, in minor units, after it succeeded
	dispute      int64   // a dispute of this many minor units (0: none)
	won          bool    // the dispute's outcome
	amount       int64
}

func drawFate(t *rapid.T, i int) fate {
	f := fate{amount: rapid.Int64Range(1_000, 50_000).Draw(t, fmt.Sprintf("amount%d", i))}
	f.declineFirst = rapid.Bool().Draw(t, fmt.Sprintf("decline%d", i))
	if f.cancel = rapid.IntRange(0, 4).Draw(t, fmt.Sprintf("cancel%d", i)) == 0; f.cancel {
		return f
	}
	left := f.amount
	for j := range rapid.IntRange(0, 2).Draw(t, fmt.Sprintf("refunds%d", i)) {
		if left == 0 {
			break
		}
		r := rapid.Int64Range(1, left).Draw(t, fmt.Sprintf("refund%d.%d", i, j))
		f.refunds = append(f.refunds, r)
		left -= r
	}
	if left > 0 && rapid.Bool().Draw(t, fmt.Sprintf("disputed%d", i)) {
		f.dispute = rapid.Int64Range(1, left).Draw(t, fmt.Sprintf("dispute%d", i))
		f.won = rapid.Bool().Draw(t, fmt.Sprintf("won%d", i))
	}
	return f
}

// play makes the processor live out the fates of top-ups started by the
// advertiser, and returns the events it sent, in the order it sent them.
func (b *bundle) play(t *testing.T, fates []fate) billingtest.Delivery {
	t.Helper()
	for i, f := range fates {
		started, err := b.svc.StartTopUp(b.ctx, b.advertiser, billing.TopUpRequest{
			Amount: f.amount, Currency: billing.USD, ClientKey: fmt.Sprintf("topup-%d", i)})
		require.NoError(t, err)
		if f.declineFirst {
			require.NoError(t, b.proc.DeclinePayment(started.PaymentID))
		}
		if f.cancel {
			require.NoError(t, b.proc.CancelPayment(started.PaymentID))
			continue
		}
		require.NoError(t, b.proc.SucceedPayment(started.PaymentID))
		for _, r := range f.refunds {
			require.NoError(t, b.proc.RefundPayment(started.PaymentID, r))
		}
		if f.dispute > 0 {
			id, err := b.proc.DisputePayment(started.PaymentID, f.dispute)
			require.NoError(t, err)
			require.NoError(t, b.proc.CloseDispute(id, f.won))
		}
	}
	return b.proc.TakeEvents()
}

// receiveAll receives every event in the order given and applies it; an
// event parked because it came before the one it depends on is applied
// again after the others, as the queue's snooze would, until none waits.
func (b *bundle) receiveAll(t *testing.T, events billingtest.Delivery) {
	t.Helper()
	var parked []string
	for _, e := range events {
		payload, header, err := b.signer.Sign(e)
		require.NoError(t, err)
		got, err := b.svc.ReceiveEvent(b.ctx, payload, header)
		require.NoError(t, err)
		if err := b.svc.ApplyEventJob(b.ctx, got.ID); err != nil {
			_, snoozed := jobs.SnoozedFor(err)
			require.True(t, snoozed, "only a parked event may fail: %v", err)
			parked = append(parked, got.ID)
		}
	}
	for round := 0; len(parked) > 0; round++ {
		require.Less(t, round, len(events)+1, "parked events never became applicable: %v", parked)
		var still []string
		for _, id := range parked {
			if err := b.svc.ApplyEventJob(b.ctx, id); err != nil {
				_, snoozed := jobs.SnoozedFor(err)
				require.True(t, snoozed, "only a parked event may fail: %v", err)
				still = append(still, id)
			}
		}
		parked = still
	}
}

// moneyState is what the events decided: the advertiser's budget, every
// platform account and each top-up's outcome, by client key.
type moneyState struct {
	Budget   int64
	Platform map[billing.AccountKind]int64
	TopUps   map[string]string
}

func (b *bundle) moneyState(t *testing.T, n int) moneyState {
	t.Helper()
	s := moneyState{Budget: b.balances(t, b.advertiser.UserID).Budget, Platform: map[billing.AccountKind]int64{}, TopUps: map[string]string{}}
	kinds := []billing.AccountKind{billing.PlatformRevenue, billing.PlatformCash, billing.PlatformKevel, billing.PlatformFees,
		billing.PlatformRefunds, billing.PlatformDisputes, billing.PlatformUnfunded}
	var ids []billing.AccountID
	for _, k := range kinds {
		ids = append(ids, billing.PlatformAccount(k, billing.USD))
	}
	bals, err := b.store.Balances(b.ctx, ids)
	require.NoError(t, err)
	for i, k := range kinds {
		s.Platform[k] = bals[ids[i]].Micros
	}
	for i := range n {
		key := fmt.Sprintf("topup-%d", i)
		tu, err := b.store.TopUpByClientKey(b.ctx, b.advertiser.UserID, key)
		require.NoError(t, err)
		s.TopUps[key] = fmt.Sprintf("%s refunded=%d disputed=%d", tu.Status, tu.Refunded, tu.Disputed)
	}
	return s
}

// TestEventsInAnyOrderAndRepeatedEqualOnceInOrder is the webhook
// invariant as a property: for any history of top-ups (declined, paid,
// canceled, refunded in parts, disputed and won or lost), delivering the
// processor's events in any order, with any of them repeated, leaves the
// same money as delivering each once in the order sent; and the ledger
// balances with no budget below zero.
func TestEventsInAnyOrderAndRepeatedEqualOnceInOrder(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		fates := make([]fate, rapid.IntRange(1, 4).Draw(rt, "topups"))
		for i := range fates {
			fates[i] = drawFate(rt, i)
		}
		// Two worlds live the same history; the processors' ids agree
		// because they are handed out in call order.
		inOrder, shuffled := setup(t, false), setup(t, false)
		sent := inOrder.play(t, fates)
		other := shuffled.play(t, fates)
		require.Equal(t, len(sent), len(other))

		inOrder.receiveAll(t, sent)

		perm := rapid.Permutation(indices(len(other))).Draw(rt, "order")
		var delivery billingtest.Delivery
		for _, i := range perm {
			delivery = append(delivery, other[i])
			if rapid.IntRange(0, 2).Draw(rt, fmt.Sprintf("twice%d", i)) == 0 {
				delivery = append(delivery, other[i])
			}
		}
		shuffled.receiveAll(t, delivery)

		want, got := inOrder.moneyState(t, len(fates)), shuffled.moneyState(t, len(fates))
		require.Equal(t, want, got, "the order and repetition of events changed the money")
		require.GreaterOrEqual(t, got.Budget, int64(0))
		inOrder.requireBalanced(t)
		shuffled.requireBalanced(t)
	})
}

func indices(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// crashingStore is a billing store that fails every write after the
// first allowed ones, as a process killed mid-run would stop writing.
type crashingStore struct {
	*memory.Store
	mu      sync.Mutex // settlement writes from several goroutines
	allowed int        // writes that succeed before the crash (<0: no crash)
}

var errCrashed = errors.New("crashed")

func (c *crashingStore) write() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.allowed == 0 {
		return errCrashed
	}
	c.allowed--
	return nil
}

// restart lets every write through from now on.
func (c *crashingStore) restart() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.allowed = -1
}

func (c *crashingStore) Post(ctx context.Context, t billing.Transaction) (billing.Transaction, bool, error) {
	if err := c.write(); err != nil {
		return billing.Transaction{}, false, err
	}
	return c.Store.Post(ctx, t)
}

func (c *crashingStore) Apply(ctx context.Context, w billing.Write) error {
	if err := c.write(); err != nil {
		return err
	}
	return c.Store.Apply(ctx, w)
}

// traffic is one owner's valid impressions of one advertiser's ads.
type traffic struct {
	owner, advertiser int // indices; advertiser -1 is Kevel
	n                 int
	cpm               int64
	shareBP           int
}

// TestSettlementIsOnceWhateverCrashesAndRepeats is settlement's invariant
// as a property: for any day of traffic across owners and advertisers
// (budgets short or ample, Kevel ads among them), a settlement that
// crashed after any number of writes and ran again, and then ran once
// more, leaves exactly the ledger one clean run leaves; the owners' held
// earnings equal the rollups' owner share to the micro; the ledger
// balances and no budget is below zero.
func TestSettlementIsOnceWhateverCrashesAndRepeats(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		owners := rapid.IntRange(1, 4).Draw(rt, "owners")
		advertisers := rapid.IntRange(1, 3).Draw(rt, "advertisers")
		budgets := make([]int64, advertisers)
		for i := range budgets {
			budgets[i] = rapid.SampledFrom([]int64{0, 500, 1_000, 20_000}).Draw(rt, fmt.Sprintf("budget%d", i))
		}
		var day []traffic
		for i := range rapid.IntRange(1, 8).Draw(rt, "lines") {
			day = append(day, traffic{
				owner:      rapid.IntRange(0, owners-1).Draw(rt, fmt.Sprintf("owner%d", i)),
				advertiser: rapid.IntRange(-1, advertisers-1).Draw(rt, fmt.Sprintf("advertiser%d", i)),
				n:          rapid.IntRange(1, 300).Draw(rt, fmt.Sprintf("n%d", i)),
				cpm:        rapid.Int64Range(1, 20_000_000).Draw(rt, fmt.Sprintf("cpm%d", i)),
				shareBP:    rapid.SampledFrom([]int{5000, 6500, 8000}).Draw(rt, fmt.Sprintf("share%d", i)),
			})
		}
		crashAfter := rapid.IntRange(0, owners+1).Draw(rt, "crashAfter")

		clean := newSettlementWorld(t, -1, owners, budgets, day)
		require.NoError(t, clean.svc.Settle(clean.ctx, dayOf(day)))

		crashed := newSettlementWorld(t, crashAfter, owners, budgets, day)
		if err := crashed.svc.Settle(crashed.ctx, dayOf(day)); err != nil {
			require.ErrorIs(t, err, errCrashed)
		}
		crashed.crash.restart()
		require.NoError(t, crashed.svc.Settle(crashed.ctx, dayOf(day)))
		require.NoError(t, crashed.svc.Settle(crashed.ctx, dayOf(day)), "once more")

		want, got := clean.ledger(t), crashed.ledger(t)
		require.Equal(t, want, got, "a crash and repeats changed the settlement")
		var held, share int64
		for _, o := range crashed.owners {
			held += got[billing.UserAccount(billing.Held, o, billing.USD)]
		}
		for _, l := range day {
			share += int64(l.n) * (l.cpm / 1000 * int64(l.shareBP) / 10_000)
		}
		require.Equal(t, share, held, "the owners' held earnings are the rollups' owner share")
		for id, micros := range got {
			if a, _ := billing.ParseAccount(id); a.NonNegative() {
				require.GreaterOrEqual(t, micros, int64(0), "%s", id)
			}
		}
		crashed.requireBalanced(t)
	})
}

// dayOf is the day the settlement tests' traffic is on.
func dayOf([]traffic) time.Time { return day }

type settlementWorld struct {
	*bundle
	crash       *crashingStore
	owners      []uuid.UUID
	advertisers []uuid.UUID
}

// newSettlementWorld funds the advertisers (manual top-ups, minor units)
// and writes the day's traffic; its store crashes after crashAfter
// writes from then on (<0: never).
func newSettlementWorld(t *testing.T, crashAfter, owners int, budgets []int64, day []traffic) *settlementWorld {
	t.Helper()
	w := &settlementWorld{crash: &crashingStore{allowed: -1}}
	w.bundle = setup(t, true, func(c *billing.Config) {
		w.crash.Store = c.Store.(*memory.Store)
		c.Store = w.crash
	})
	for i := range owners {
		w.owners = append(w.owners, uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint("owner", i))))
	}
	for i, minor := range budgets {
		adv := auth.Principal{UserID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint("advertiser", i))), Role: auth.RoleAdvertiser}
		w.advertisers = append(w.advertisers, adv.UserID)
		if minor == 0 {
			continue
		}
		started, err := w.svc.StartTopUp(w.ctx, adv, billing.TopUpRequest{Amount: minor, Currency: billing.USD, ClientKey: "fund"})
		require.NoError(t, err)
		_, err = w.svc.ConfirmTopUp(w.ctx, w.admin, started.ID)
		require.NoError(t, err)
	}
	for _, l := range day {
		adv, source := "kevel-advertiser", "kevel"
		if l.advertiser >= 0 {
			adv, source = w.advertisers[l.advertiser].String(), "local"
		}
		w.serve(t, w.owners[l.owner], adv, source, l.n, l.cpm, l.shareBP)
	}
	w.crash.mu.Lock()
	w.crash.allowed = crashAfter
	w.crash.mu.Unlock()
	return w
}

// ledger is every balance of the world's users and the platform's.
func (w *settlementWorld) ledger(t *testing.T) map[billing.AccountID]int64 {
	t.Helper()
	var ids []billing.AccountID
	for _, k := range []billing.AccountKind{billing.PlatformRevenue, billing.PlatformCash, billing.PlatformKevel, billing.PlatformUnfunded} {
		ids = append(ids, billing.PlatformAccount(k, billing.USD))
	}
	for _, o := range w.owners {
		ids = append(ids, billing.UserAccount(billing.Held, o, billing.USD))
	}
	for _, a := range w.advertisers {
		ids = append(ids, billing.UserAccount(billing.Budget, a, billing.USD))
	}
	bals, err := w.store.Balances(w.ctx, ids)
	require.NoError(t, err)
	out := map[billing.AccountID]int64{}
	for _, id := range ids {
		out[id] = bals[id].Micros
	}
	return out
}
