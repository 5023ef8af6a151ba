package billing_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/decision/decisiontest"
	"github.com/adshare/adshare/store/memory"
)

// The ledger is double-entry: every transaction balances, its key makes
// posting it again harmless, and no user account may go below zero. Here
// an advertiser's $20 top-up lands in their budget.
func ExampleLedger() {
	var ledger billing.Ledger = memory.New() // store/postgres in production
	ctx := context.Background()
	advertiser := uuid.New()
	budget := billing.UserAccount(billing.Budget, advertiser, billing.USD)
	cash := billing.PlatformAccount(billing.PlatformCash, billing.USD)

	topUp := billing.Transaction{
		Key: "topup:pi_123", Kind: billing.TxTopUp, EffectiveAt: time.Now(),
		Entries: []billing.Entry{
			{Account: cash, Side: billing.Debit, Amount: 20 * billing.MicrosPerUnit},
			{Account: budget, Side: billing.Credit, Amount: 20 * billing.MicrosPerUnit},
		},
		Refs: map[string]string{"payment_intent": "pi_123"},
	}
	_, posted, err := ledger.Post(ctx, topUp)
	if err != nil {
		panic(err)
	}
	_, again, err := ledger.Post(ctx, topUp) // a webhook delivered twice
	if err != nil {
		panic(err)
	}
	fmt.Println("posted:", posted, "posted again:", again)

	bal, err := ledger.Balances(ctx, []billing.AccountID{budget, cash})
	if err != nil {
		panic(err)
	}
	fmt.Println(bal[budget].Micros, bal[cash].Micros)

	overspend := billing.Transaction{
		Key: "spend:too-much", Kind: billing.TxAdjustment, EffectiveAt: time.Now(),
		Entries: []billing.Entry{
			{Account: budget, Side: billing.Debit, Amount: 25 * billing.MicrosPerUnit},
			{Account: billing.PlatformAccount(billing.PlatformRevenue, billing.USD), Side: billing.Credit, Amount: 25 * billing.MicrosPerUnit},
		},
	}
	_, _, err = ledger.Post(ctx, overspend)
	fmt.Println(errors.Is(err, billing.ErrInsufficientFunds))

	unbalanced := billing.Transaction{
		Key: "broken", Kind: billing.TxAdjustment, EffectiveAt: time.Now(),
		Entries: []billing.Entry{{Account: budget, Side: billing.Credit, Amount: 1}},
	}
	_, _, err = ledger.Post(ctx, unbalanced)
	fmt.Println(errors.Is(err, billing.ErrInvalidTransaction))
	// Output:
	// posted: true posted again: false
	// 20000000 20000000
	// true
	// true
}

// A payout moves an owner's available earnings to them. Without a payment
// processor (the embedded defaults) payouts are manual: the request
// reserves the money, and an admin records it paid once the transfer is
// made.
func ExampleService_RequestPayout() {
	store := memory.New()
	app, err := adshare.New(&adshare.Config{Store: store, Shared: memory.NewShared(), Decider: &decisiontest.Fake{}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)

	user, _, err := app.Auth().Register(ctx, auth.Registration{Email: "owner@example.com", Password: "a long enough passphrase"})
	if err != nil {
		panic(err)
	}
	owner := auth.Principal{UserID: user.ID, Role: auth.RoleUser}
	admin := auth.Principal{UserID: uuid.New(), Role: auth.RoleAdmin}

	// Settlement and the hold window's release normally put earnings in
	// the available account; here $75.50 and a bit are put there directly.
	available := billing.UserAccount(billing.Available, user.ID, billing.USD)
	_, _, err = store.Post(ctx, billing.Transaction{
		Key: "example:earnings", Kind: billing.TxAdjustment, EffectiveAt: time.Now(),
		Entries: []billing.Entry{
			{Account: billing.PlatformAccount(billing.PlatformSettlement, billing.USD), Side: billing.Debit, Amount: 75_504_000},
			{Account: available, Side: billing.Credit, Amount: 75_504_000},
		},
	})
	if err != nil {
		panic(err)
	}

	_, err = app.Billing().RequestPayout(ctx, owner, billing.PayoutRequest{Amount: 2000}) // $20.00
	fmt.Println(errors.Is(err, billing.ErrBelowMinimum), err)

	po, err := app.Billing().RequestPayout(ctx, owner, billing.PayoutRequest{}) // everything available
	if err != nil {
		panic(err)
	}
	fmt.Println(po.Status, po.Manual, po.Amount, po.Currency)
	bal, err := app.Billing().Balances(ctx, owner, user.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("available", bal.Available, "in transit", bal.InTransit)

	po, err = app.Billing().RecordPayout(ctx, admin, po.ID, true, "bank transfer 42")
	if err != nil {
		panic(err)
	}
	bal, err = app.Billing().Balances(ctx, owner, user.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(po.Status, "in transit", bal.InTransit)
	// Output:
	// true the free tier pays out from 50.00 usd
	// pending true 7550 usd
	// available 4000 in transit 75500000
	// paid in transit 0
}
