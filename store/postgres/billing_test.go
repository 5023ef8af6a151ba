package postgres_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// TestBillingSealsWhatIsSensitive stores one recognisable connected-account
// id as a payee's account, a payout's destination, an event's account,
// inside its payload and inside the event as read, and finds it in no
// table of the schema (nor pg_dump's output) while the store reads it all
// back.
func TestBillingSealsWhatIsSensitive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.NewWithKeyring(t)
	planted := "acct_1" + rand.Text()[:16]
	owner, now := uuid.New(), time.Now().UTC().Truncate(time.Microsecond)

	payee := billing.Payee{Owner: owner, ConnectedAccount: billing.ConnectedAccount{ID: planted, Owner: owner}, CreatedAt: now, UpdatedAt: now}
	payout := billing.Payout{ID: uuid.Must(uuid.NewV7()), Owner: owner, Amount: 2000, Currency: billing.USD,
		Status: billing.PayoutPending, Destination: planted, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, db.Apply(ctx, billing.Write{Payee: &payee, Payout: &payout}))
	ev := billing.StoredEvent{ID: "evt_sealed", Type: billing.EventAccountUpdated, Account: planted, Created: now,
		Payload: []byte(`{"id":"evt_sealed","account":"` + planted + `"}`), ReceivedAt: now,
		Event: billing.Event{ID: "evt_sealed", Type: billing.EventAccountUpdated, Account: planted,
			Connect: &billing.ConnectedAccount{ID: planted, Owner: owner}}}
	isNew, err := db.SaveEvent(ctx, ev)
	require.NoError(t, err)
	require.True(t, isNew)

	got, err := db.PayeeByAccountID(ctx, planted)
	require.NoError(t, err)
	require.Equal(t, planted, got.ID)
	p, err := db.Payout(ctx, payout.ID)
	require.NoError(t, err)
	require.Equal(t, planted, p.Destination)
	e, err := db.Event(ctx, ev.ID)
	require.NoError(t, err)
	require.Equal(t, ev, e)

	postgrestest.RequireNoPlaintext(t, db, planted)
}

// TestBillingWithoutAKeyring refuses to store what it would have to seal,
// and stores nothing of it, while the ledger and the other records work.
func TestBillingWithoutAKeyring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.New(t)
	owner, now := uuid.New(), time.Now().UTC()
	tu := billing.TopUp{ID: uuid.Must(uuid.NewV7()), Advertiser: owner, ClientKey: "k", Amount: 500, Currency: billing.USD,
		Status: billing.TopUpPending, CreatedAt: now, UpdatedAt: now}
	payee := billing.Payee{Owner: owner, ConnectedAccount: billing.ConnectedAccount{ID: "acct_123"}, CreatedAt: now, UpdatedAt: now}
	withDest := billing.Payout{ID: uuid.Must(uuid.NewV7()), Owner: owner, Amount: 1, Currency: billing.USD,
		Status: billing.PayoutPending, Destination: "acct_123", CreatedAt: now, UpdatedAt: now}

	require.ErrorIs(t, db.Apply(ctx, billing.Write{TopUp: &tu, Payee: &payee}), postgres.ErrKeyringRequired)
	require.ErrorIs(t, db.Apply(ctx, billing.Write{TopUp: &tu, Payout: &withDest}), postgres.ErrKeyringRequired)
	_, err := db.SaveEvent(ctx, billing.StoredEvent{ID: "evt_1", Payload: []byte("{}")})
	require.ErrorIs(t, err, postgres.ErrKeyringRequired)
	_, err = db.Payee(ctx, owner)
	require.ErrorIs(t, err, postgres.ErrKeyringRequired)
	_, err = db.PayeeByAccountID(ctx, "acct_123")
	require.ErrorIs(t, err, postgres.ErrKeyringRequired)
	events, err := db.UnprocessedEvents(ctx, 10)
	require.NoError(t, err, "with nothing sealed stored there is nothing to open: manual mode's sweep asks")
	require.Empty(t, events)
	var rows int
	require.NoError(t, db.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM billing_topups) + (SELECT count(*) FROM billing_payees)
		+ (SELECT count(*) FROM billing_payouts) + (SELECT count(*) FROM billing_events)`).Scan(&rows))
	require.Zero(t, rows, "nothing of the refused writes was stored")

	manual := withDest
	manual.Destination, manual.Manual = "", true
	require.NoError(t, db.Apply(ctx, billing.Write{TopUp: &tu, Payout: &manual}), "nothing to seal: no keyring needed")
	got, err := db.Payout(ctx, manual.ID)
	require.NoError(t, err)
	require.Empty(t, got.Destination)
}
