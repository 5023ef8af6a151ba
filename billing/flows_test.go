package billing_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/billingtest"
	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/store/memory"
)

func TestBadTopUpsAreRefusedAndChangeNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	for _, tt := range []struct {
		description string
		principal   auth.Principal
		r           billing.TopUpRequest
		want        error
	}{
		{"below the floor", b.advertiser, billing.TopUpRequest{Amount: 499, Currency: billing.USD, ClientKey: "k1"}, billing.ErrInvalidTopUp},
		{"above the cap", b.advertiser, billing.TopUpRequest{Amount: 1_000_001, Currency: billing.USD, ClientKey: "k2"}, billing.ErrInvalidTopUp},
		{"another currency", b.advertiser, billing.TopUpRequest{Amount: 1_000, Currency: "eur", ClientKey: "k3"}, billing.ErrInvalidTopUp},
		{"an unknown currency", b.advertiser, billing.TopUpRequest{Amount: 1_000, Currency: "xxx", ClientKey: "k4"}, billing.ErrInvalidTopUp},
		{"no key", b.advertiser, billing.TopUpRequest{Amount: 1_000, Currency: billing.USD}, billing.ErrInvalidTopUp},
		{"a key with a newline", b.advertiser, billing.TopUpRequest{Amount: 1_000, Currency: billing.USD, ClientKey: "a\nb"}, billing.ErrInvalidTopUp},
		{"a plain user", b.owner, billing.TopUpRequest{Amount: 1_000, Currency: billing.USD, ClientKey: "k5"}, auth.ErrForbidden},
	} {
		_, err := b.svc.StartTopUp(b.ctx, tt.principal, tt.r)
		require.ErrorIs(t, err, tt.want, tt.description)
	}
	got, err := b.store.TopUpsSince(b.ctx, b.advertiser.UserID, time.Time{})
	require.NoError(t, err)
	require.Empty(t, got, "nothing was recorded")

	first, err := b.svc.StartTopUp(b.ctx, b.advertiser, billing.TopUpRequest{Amount: 1_000, Currency: billing.USD, ClientKey: "same"})
	require.NoError(t, err)
	again, err := b.svc.StartTopUp(b.ctx, b.advertiser, billing.TopUpRequest{Amount: 1_000, Currency: billing.USD, ClientKey: "same"})
	require.NoError(t, err)
	require.Equal(t, first.ID, again.ID, "a retry is the same top-up")
	require.Equal(t, first.PaymentID, again.PaymentID)
	require.Equal(t, first.ClientSecret, again.ClientSecret)
	_, err = b.svc.StartTopUp(b.ctx, b.advertiser, billing.TopUpRequest{Amount: 2_000, Currency: billing.USD, ClientKey: "same"})
	require.ErrorIs(t, err, billing.ErrKeyConflict, "the same key for another amount")

	for i := range 4 {
		_, err := b.svc.StartTopUp(b.ctx, b.advertiser, billing.TopUpRequest{Amount: 1_000, Currency: billing.USD, ClientKey: uuid.NewString()})
		require.NoError(t, err, "top-up %d", i+2)
	}
	_, err = b.svc.StartTopUp(b.ctx, b.advertiser, billing.TopUpRequest{Amount: 1_000, Currency: billing.USD, ClientKey: uuid.NewString()})
	require.ErrorIs(t, err, billing.ErrTopUpLimit, "five a day")
	require.Zero(t, b.balances(t, b.advertiser.UserID).Budget, "nothing is credited before the processor says so")
}

func TestTopUpsAreRateLimitedPerUserAndClient(t *testing.T) {
	t.Parallel()
	lim := memoryLimiter()
	b := setup(t, false, func(c *billing.Config) { c.Limiter = lim })
	ctx := auth.NewContextWithClient(b.ctx, auth.Client{IP: "203.0.113.9"})
	for i := range 3 {
		_, err := b.svc.StartTopUp(ctx, b.advertiser, billing.TopUpRequest{Amount: 1_000, Currency: billing.USD, ClientKey: uuid.NewString()})
		require.NoError(t, err, "top-up %d", i+1)
	}
	_, err := b.svc.StartTopUp(ctx, b.advertiser, billing.TopUpRequest{Amount: 1_000, Currency: billing.USD, ClientKey: uuid.NewString()})
	require.ErrorIs(t, err, billing.ErrTopUpLimit, "a burst of three per user, then one every 20 minutes")
}

func TestEventsTwiceAndInAnyOrderAreAppliedOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	started, err := b.svc.StartTopUp(b.ctx, b.advertiser, billing.TopUpRequest{Amount: 10_000, Currency: billing.USD, ClientKey: "k"})
	require.NoError(t, err)
	require.NoError(t, b.proc.SucceedPayment(started.PaymentID))
	require.NoError(t, b.proc.RefundPayment(started.PaymentID, 2_000))
	require.NoError(t, b.proc.RefundPayment(started.PaymentID, 1_000))
	dispute, err := b.proc.DisputePayment(started.PaymentID, 3_000)
	require.NoError(t, err)
	require.NoError(t, b.proc.CloseDispute(dispute, true))
	events := b.proc.TakeEvents()
	// Every event twice, the whole in reverse order.
	var shuffled billingtest.Delivery
	for i := len(events) - 1; i >= 0; i-- {
		shuffled = append(shuffled, events[i], events[i])
	}
	parked := 0
	for _, e := range shuffled {
		payload, header, err := b.signer.Sign(e)
		require.NoError(t, err)
		got, err := b.svc.ReceiveEvent(b.ctx, payload, header)
		require.NoError(t, err)
		if err := b.svc.ApplyEventJob(b.ctx, got.ID); err != nil {
			_, snoozed := jobs.SnoozedFor(err)
			require.True(t, snoozed, "an event about a payment not applied yet waits: %v", err)
			parked++
		}
	}
	require.Positive(t, parked, "the refunds came before the payment")
	// The parked events' jobs come back later (the queue's snooze).
	for _, e := range events {
		require.NoError(t, b.svc.ApplyEventJob(b.ctx, e.ID))
	}
	tu, err := b.store.TopUpByPayment(b.ctx, started.PaymentID)
	require.NoError(t, err)
	require.Equal(t, billing.TopUpSucceeded, tu.Status)
	require.Equal(t, int64(3_000), tu.Refunded, "the refunded total, whatever the order")
	bal := b.balances(t, b.advertiser.UserID)
	require.Equal(t, int64(70*billing.MicrosPerUnit), bal.Budget, "100 credited, 30 refunded, the dispute won back")
	b.requireBalanced(t)
}

func TestARefundTakesUnspentBudgetFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	tu := b.topUp(t, 5_000)
	b.serve(t, b.owner.UserID, b.advertiser.UserID.String(), "local", 20_000, 2_000_000, 6500) // $40 spent
	require.NoError(t, b.svc.Settle(b.ctx, day))
	require.Equal(t, int64(10*billing.MicrosPerUnit), b.balances(t, b.advertiser.UserID).Budget)
	require.NoError(t, b.proc.RefundPayment(tu.PaymentID, 5_000)) // all of it
	b.deliver(t, b.proc.TakeEvents())
	require.Zero(t, b.balances(t, b.advertiser.UserID).Budget, "the unspent $10 came back")
	refunds, err := b.store.Balances(b.ctx, []billing.AccountID{billing.PlatformAccount(billing.PlatformRefunds, billing.USD)})
	require.NoError(t, err)
	require.Equal(t, int64(40*billing.MicrosPerUnit), refunds[billing.PlatformAccount(billing.PlatformRefunds, billing.USD)].Micros,
		"what was spent and shared is the platform's loss, not the owner's")
	require.Equal(t, int64(26*billing.MicrosPerUnit), b.balances(t, b.owner.UserID).Held, "the owner keeps their share")
	b.requireBalanced(t)
}

func TestManualModeMovesMoneyThroughTheSameLedger(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	started, err := b.svc.StartTopUp(b.ctx, b.advertiser, billing.TopUpRequest{Amount: 5_000, Currency: billing.USD, ClientKey: "k"})
	require.NoError(t, err)
	require.Equal(t, billing.TopUpAwaitingConfirmation, started.Status)
	require.Empty(t, started.ClientSecret)
	_, err = b.svc.ConfirmTopUp(b.ctx, b.advertiser, started.ID)
	require.ErrorIs(t, err, auth.ErrForbidden, "only an admin confirms")
	_, err = b.svc.ConfirmTopUp(b.ctx, b.admin, started.ID)
	require.NoError(t, err)
	_, err = b.svc.ConfirmTopUp(b.ctx, b.admin, started.ID)
	require.NoError(t, err, "idempotent")
	require.Equal(t, int64(50*billing.MicrosPerUnit), b.balances(t, b.advertiser.UserID).Budget)

	b.serve(t, b.owner.UserID, b.advertiser.UserID.String(), "local", 20_000, 2_000_000, 6500)
	require.NoError(t, b.svc.Settle(b.ctx, day))
	b.clock.Set(day.Add(49 * time.Hour))
	require.NoError(t, b.svc.Release(b.ctx, day))
	po, err := b.svc.RequestPayout(b.ctx, b.owner, billing.PayoutRequest{})
	require.NoError(t, err, "no payout account is needed when an admin pays")
	require.True(t, po.Manual)
	_, err = b.svc.RecordPayout(b.ctx, b.owner, po.ID, true, "")
	require.ErrorIs(t, err, auth.ErrForbidden)
	paid, err := b.svc.RecordPayout(b.ctx, b.admin, po.ID, true, "bank transfer 1234")
	require.NoError(t, err)
	require.Equal(t, billing.PayoutPaid, paid.Status)
	_, err = b.svc.RecordPayout(b.ctx, b.admin, po.ID, false, "")
	require.ErrorIs(t, err, billing.ErrPayoutNotPending)
	owner := b.balances(t, b.owner.UserID)
	require.Zero(t, owner.Available)
	require.Zero(t, owner.InTransit)
	b.requireBalanced(t)
}

func TestPayoutRules(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	b.topUp(t, 10_000)
	// $10 earned: below the pro tier's $20 minimum.
	b.serve(t, b.owner.UserID, b.advertiser.UserID.String(), "local", 7_693, 2_000_000, 6500)
	require.NoError(t, b.svc.Settle(b.ctx, day))
	b.clock.Set(day.Add(49 * time.Hour))
	require.NoError(t, b.svc.Release(b.ctx, day))
	_, err := b.svc.RequestPayout(b.ctx, b.owner, billing.PayoutRequest{})
	require.ErrorIs(t, err, billing.ErrBelowMinimum)
	_, err = b.svc.RequestPayout(b.ctx, b.owner, billing.PayoutRequest{Amount: -5})
	require.ErrorIs(t, err, billing.ErrBelowMinimum)
	_, err = b.svc.RequestPayout(b.ctx, b.owner, billing.PayoutRequest{Amount: 1_000_000})
	require.ErrorIs(t, err, billing.ErrInsufficientFunds)

	b2 := setup(t, true)
	b2.topUp(t, 10_000)
	b2.serve(t, b2.owner.UserID, b2.advertiser.UserID.String(), "local", 40_000, 2_000_000, 6500)
	require.NoError(t, b2.svc.Settle(b2.ctx, day))
	b2.clock.Set(day.Add(49 * time.Hour))
	require.NoError(t, b2.svc.Release(b2.ctx, day))
	// Two requests at once for everything: one wins.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = b2.svc.RequestPayout(b2.ctx, b2.owner, billing.PayoutRequest{}) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		}
	}
	require.Equal(t, 1, won, "one payout; the others are refused: %v", errs)
	pos, err := b2.store.Payouts(b2.ctx, billing.PayoutFilter{Owner: b2.owner.UserID})
	require.NoError(t, err)
	require.Len(t, pos, 1)

	// A hold stops payouts until released; both are audited.
	h, err := b2.svc.PlaceHold(b2.ctx, b2.admin, billing.Hold{Owner: b2.owner.UserID, Note: "review"})
	require.NoError(t, err)
	_, err = b2.svc.RecordPayout(b2.ctx, b2.admin, pos[0].ID, false, "bank refused")
	require.NoError(t, err)
	_, err = b2.svc.RequestPayout(b2.ctx, b2.owner, billing.PayoutRequest{})
	require.ErrorIs(t, err, billing.ErrPayoutHeld)
	_, err = b2.svc.ReleaseHold(b2.ctx, b2.admin, b2.owner.UserID, h.ID)
	require.NoError(t, err)
	_, err = b2.svc.RequestPayout(b2.ctx, b2.owner, billing.PayoutRequest{})
	require.NoError(t, err)
	placed, err := b2.store.AuditEvents(b2.ctx, auth.AuditFilter{Action: billing.AuditHoldPlaced})
	require.NoError(t, err)
	require.Len(t, placed, 1)
	released, err := b2.store.AuditEvents(b2.ctx, auth.AuditFilter{Action: billing.AuditHoldReleased})
	require.NoError(t, err)
	require.Len(t, released, 1)

	// Someone else's payout is not found.
	_, err = b2.svc.Payout(b2.ctx, b2.advertiser, pos[0].ID)
	require.ErrorIs(t, err, billing.ErrPayoutNotFound)
}

func TestSettlementHoldsOwnersWithMuchInvalidTraffic(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	b.topUp(t, 10_000)
	b.serve(t, b.owner.UserID, b.advertiser.UserID.String(), "local", 400, 2_000_000, 6500)
	var bad []analytics.Event
	for i := range 200 {
		when := day.Add(time.Duration(i) * time.Minute)
		bad = append(bad, analytics.Event{TrackingID: uuid.Must(uuid.NewV7()), Type: analytics.Impression,
			Ad: tracking.Ad{Owner: b.owner.UserID, Placement: "main", Source: "local", AdID: "ad-1", AdvertiserID: b.advertiser.UserID.String(),
				PriceModel: "cpm", PriceMicros: 2_000_000, Billable: true, IssuedAt: when.Add(-time.Second)},
			OccurredAt: when, ReceivedAt: when, Rule: analytics.RuleViewerBurst})
	}
	_, err := b.store.WriteEvents(b.ctx, bad)
	require.NoError(t, err)
	require.NoError(t, b.svc.Settle(b.ctx, day))
	holds, err := b.store.Holds(b.ctx, b.owner.UserID)
	require.NoError(t, err)
	require.Len(t, holds, 1, "200 of 600 events invalid: over a fifth")
	require.Equal(t, billing.HoldInvalidTraffic, holds[0].Reason)
	require.NoError(t, b.svc.Settle(b.ctx, day))
	holds, _ = b.store.Holds(b.ctx, b.owner.UserID)
	require.Len(t, holds, 1, "one hold per day, however often it is settled")
}

func TestSettlementAgreesWithTheRollupsToTheMicro(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	b.topUp(t, 1_000_000) // $10,000
	owners := make([]uuid.UUID, 7)
	var wantOwner, wantGross int64
	for i := range owners {
		owners[i] = uuid.Must(uuid.NewV7())
		// Prices whose shares round: 1,337 micros per impression at 6,543 bp.
		n := 100 + 37*i
		events := make([]analytics.Event, n)
		for j := range events {
			when := day.Add(time.Duration(j%24)*time.Hour + time.Second)
			spend := int64(1_337 + j%7)
			share := spend * 6543 / 10_000
			wantOwner += share
			wantGross += spend
			events[j] = analytics.Event{TrackingID: uuid.Must(uuid.NewV7()), Type: analytics.Impression,
				Ad: tracking.Ad{Owner: owners[i], Placement: "main", Source: "local", AdID: "ad", AdvertiserID: b.advertiser.UserID.String(),
					PriceModel: "cpm", PriceMicros: spend * 1000, Billable: true, IssuedAt: when.Add(-time.Second)},
				OccurredAt: when, ReceivedAt: when, Valid: true, SpendMicros: spend, OwnerEarningsMicros: share, OwnerShareBP: 6543}
		}
		_, err := b.store.WriteEvents(b.ctx, events)
		require.NoError(t, err)
	}
	require.NoError(t, b.svc.Settle(b.ctx, day))
	rows, err := b.store.Report(b.ctx, analytics.Query{Granularity: analytics.Day, From: day, To: day.Add(24 * time.Hour), Location: time.UTC})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, wantOwner, rows[0].OwnerEarningsMicros)
	figures, err := b.svc.Settled(b.ctx, uuid.Nil, day, day.Add(24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, rows[0].OwnerEarningsMicros, figures.OwnerMicros, "the owners' final share is the rollups' to the micro")
	require.Equal(t, rows[0].SpendMicros-rows[0].OwnerEarningsMicros, figures.PlatformMicros, "the platform owns the rounding")
	require.Equal(t, wantGross, rows[0].SpendMicros)
	spent := int64(1_000_000*10_000) - b.balances(t, b.advertiser.UserID).Budget
	require.Equal(t, wantGross, spent, "the budget paid the gross")
	b.requireBalanced(t)
}

func TestReconciliationReportsAPlantedDifference(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	po := b.readyPayout(t)
	require.NoError(t, b.svc.RunPayoutJob(b.ctx, po.ID))
	// A transfer made behind the ledger's back.
	_, err := b.proc.Transfer(b.ctx, billing.TransferRequest{Key: "rogue", Destination: po.Destination, Amount: 1_234,
		Currency: billing.USD, Group: "rogue"})
	require.NoError(t, err)
	rec, err := b.svc.Reconcile(b.ctx, day)
	require.NoError(t, err)
	require.Len(t, rec.Differences, 1)
	require.Equal(t, "transfer_not_in_ledger", rec.Differences[0].Kind)
	last, ok := b.svc.LastReconciliation()
	require.True(t, ok)
	require.Equal(t, rec, last)
}

func memoryLimiter() auth.Limiter { return memory.NewLimiter() }

// doneKeysCounter counts a store's DoneKeys reads.
type doneKeysCounter struct {
	testStore
	mu    sync.Mutex
	reads int
}

func (c *doneKeysCounter) DoneKeys(ctx context.Context, keys []string) (map[string]bool, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.testStore.DoneKeys(ctx, keys)
}

func (c *doneKeysCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// TestUnsettledSpendIsTheSpendAfterTheLastSettledDay: before its day is
// settled, an advertiser's spend shows as unsettled beside the whole
// budget; once it is, the budget has paid it and nothing is unsettled,
// and what is left to spend is the same. A settled day is not asked about
// again by the instance that knows it (balance reads and funding lookups
// ask on every call); another instance asks once.
func TestUnsettledSpendIsTheSpendAfterTheLastSettledDay(t *testing.T) {
	t.Parallel()
	store := &doneKeysCounter{testStore: memory.New()}
	b := setupOn(t, store, false)
	b.topUp(t, 5_000)
	b.serve(t, b.owner.UserID, b.advertiser.UserID.String(), "local", 20_000, 2_000_000, 6500) // $40 spent
	bal := b.balances(t, b.advertiser.UserID)
	require.Equal(t, int64(50*billing.MicrosPerUnit), bal.Budget)
	require.Equal(t, int64(40*billing.MicrosPerUnit), bal.UnsettledSpend, "the day is not settled: its spend is not paid yet")
	require.Equal(t, 1, store.count(), "the seven recent days are asked about in one read")

	require.NoError(t, b.svc.Settle(b.ctx, day))
	bal = b.balances(t, b.advertiser.UserID)
	require.Equal(t, int64(10*billing.MicrosPerUnit), bal.Budget)
	require.Zero(t, bal.UnsettledSpend, "the settled day's spend is paid from the budget, not counted twice")
	funded, err := b.svc.Funded(b.ctx, []uuid.UUID{b.advertiser.UserID})
	require.NoError(t, err)
	require.True(t, funded[b.advertiser.UserID], "$10 is left")
	reads := store.count()
	for range 3 {
		_ = b.balances(t, b.advertiser.UserID)
	}
	require.Equal(t, reads, store.count(), "the day after the settled one is today: nothing left to ask")

	// An instance that has not seen the settlement asks once, then knows.
	other := setupOn(t, store, false)
	other.clock.Set(b.clock.Now())
	before := store.count()
	for range 3 {
		got, err := other.svc.Balances(b.ctx, b.admin, b.advertiser.UserID)
		require.NoError(t, err)
		require.Zero(t, got.UnsettledSpend)
	}
	require.Equal(t, before+1, store.count())

	// The next day's spend is unsettled until that day is.
	next := day.Add(24 * time.Hour)
	b.clock.Set(next.Add(27 * time.Hour))
	_, err = store.WriteEvents(b.ctx, []analytics.Event{{TrackingID: uuid.Must(uuid.NewV7()), Type: analytics.Impression,
		Ad: tracking.Ad{Owner: b.owner.UserID, Placement: "main", Source: "local", AdID: "ad-1", AdvertiserID: b.advertiser.UserID.String(),
			PriceModel: "cpm", PriceMicros: 2_000_000, Billable: true, IssuedAt: next.Add(time.Minute)},
		OccurredAt: next.Add(time.Hour), ReceivedAt: next.Add(time.Hour), Valid: true, SpendMicros: 2_000, OwnerEarningsMicros: 1_300, OwnerShareBP: 6500}})
	require.NoError(t, err)
	bal = b.balances(t, b.advertiser.UserID)
	require.Equal(t, int64(2_000), bal.UnsettledSpend, "only the unsettled day's spend")
	require.Equal(t, int64(10*billing.MicrosPerUnit), bal.Budget)
}
