package billing_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
)

func TestAStatementShowsOnlyTheCallersOwnMoney(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	b.topUp(t, 5_000)
	b.serve(t, b.owner.UserID, b.advertiser.UserID.String(), "local", 10_000, 2_000_000, 6500) // $20
	require.NoError(t, b.svc.Settle(b.ctx, day))

	own := func(p auth.Principal) []billing.Transaction {
		t.Helper()
		txs, err := b.svc.Transactions(b.ctx, p, p.UserID, billing.TxCursor{}, 0)
		require.NoError(t, err)
		return txs
	}
	for _, p := range []auth.Principal{b.owner, b.advertiser} {
		txs := own(p)
		require.NotEmpty(t, txs)
		for _, tx := range txs {
			require.NotEmpty(t, tx.Entries, "%s: every listed transaction moved the caller's money", tx.Key)
			for _, e := range tx.Entries {
				a, err := billing.ParseAccount(e.Account)
				require.NoError(t, err)
				require.Equal(t, p.UserID, a.User, "%s shows %s, not the caller's", tx.Key, e.Account)
			}
			for k := range tx.Refs {
				require.Contains(t, []string{"topup", "payout"}, k, "%s: ref %s names someone else's record", tx.Key, k)
			}
		}
	}
	settlement := own(b.advertiser)[0]
	require.Equal(t, billing.TxSettlement, settlement.Kind)
	require.Len(t, settlement.Entries, 1, "the advertiser sees their budget's debit, not the owner's share or the platform's")
	require.Equal(t, int64(20*billing.MicrosPerUnit), settlement.Entries[0].Amount)

	whole, err := b.svc.Transactions(b.ctx, b.admin, b.advertiser.UserID, billing.TxCursor{}, 0)
	require.NoError(t, err)
	require.Len(t, whole[0].Entries, 2, "an admin sees the transaction whole: the budget and the platform's settlement account")
	require.Equal(t, b.advertiser.UserID.String(), whole[0].Refs["advertiser"])
	ownerSide, err := b.svc.Transactions(b.ctx, b.admin, b.owner.UserID, billing.TxCursor{}, 0)
	require.NoError(t, err)
	require.Len(t, ownerSide[0].Entries, 3, "the owner's settlement: the platform's settlement account, the owner's share, the platform's")
	require.Equal(t, b.owner.UserID.String(), ownerSide[0].Refs["owner"])

	_, err = b.svc.Transactions(b.ctx, b.owner, b.advertiser.UserID, billing.TxCursor{}, 0)
	require.ErrorIs(t, err, auth.ErrUserNotFound, "another user's statement is not found")
	_, err = b.svc.Transactions(b.ctx, b.owner, uuid.Nil, billing.TxCursor{}, 0)
	require.ErrorIs(t, err, auth.ErrForbidden, "everyone's ledger is for admins")
}

func TestHoldsAreListedWithNotesForAdminsOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	h, err := b.svc.PlaceHold(b.ctx, b.admin, billing.Hold{Owner: b.owner.UserID, Note: "chargeback ring, case 17"})
	require.NoError(t, err)
	_, err = b.svc.ReleaseHold(b.ctx, b.admin, b.owner.UserID, h.ID)
	require.NoError(t, err)
	_, err = b.svc.PlaceHold(b.ctx, b.admin, billing.Hold{Owner: b.owner.UserID, Note: "second look", Until: b.clock.Now().Add(time.Hour)})
	require.NoError(t, err)

	all, err := b.svc.Holds(b.ctx, b.admin, b.owner.UserID)
	require.NoError(t, err)
	require.Len(t, all, 2, "released ones included")
	require.Equal(t, "second look", all[0].Note, "newest first, with the admins' note")
	require.False(t, all[1].ReleasedAt.IsZero())

	mine, err := b.svc.Holds(b.ctx, b.owner, b.owner.UserID)
	require.NoError(t, err)
	require.Len(t, mine, 2)
	for _, h := range mine {
		require.Empty(t, h.Note, "the owner does not read the admins' notes")
	}
	bal, err := b.svc.Balances(b.ctx, b.owner, b.owner.UserID)
	require.NoError(t, err)
	require.Len(t, bal.Holds, 1, "the hold in force")
	require.Empty(t, bal.Holds[0].Note)
	require.Equal(t, "second look", b.balances(t, b.owner.UserID).Holds[0].Note)

	_, err = b.svc.Holds(b.ctx, b.advertiser, b.owner.UserID)
	require.ErrorIs(t, err, auth.ErrUserNotFound, "another owner's holds are not found")
}

func TestTheReconciliationReportIsForAdmins(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	_, ok, err := b.svc.ReconciliationReport(b.ctx, b.admin)
	require.NoError(t, err)
	require.False(t, ok, "none yet")
	_, err = b.svc.Reconcile(b.ctx, day)
	require.NoError(t, err)
	rep, ok, err := b.svc.ReconciliationReport(b.ctx, b.admin)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, day, rep.Since)
	_, _, err = b.svc.ReconciliationReport(b.ctx, b.owner)
	require.ErrorIs(t, err, auth.ErrForbidden)
}

func TestOnboardingChecksTheCountry(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	for _, country := range []string{"", "U", "USA", "U$", "1A", "ü"} {
		_, err := b.svc.Onboard(b.ctx, b.owner, "owner@example.com", country)
		require.ErrorIs(t, err, billing.ErrInvalidPayee, "%q", country)
	}
	_, err := b.store.Payee(b.ctx, b.owner.UserID)
	require.ErrorIs(t, err, billing.ErrPayeeNotFound, "nothing was created")
	ob, err := b.svc.Onboard(b.ctx, b.owner, "owner@example.com", "gb")
	require.NoError(t, err, "either case")
	again, err := b.svc.Onboard(b.ctx, b.owner, "owner@example.com", "")
	require.NoError(t, err, "the account exists: no country needed")
	require.Equal(t, ob.Payee.ID, again.Payee.ID)

	m := setup(t, true)
	_, err = m.svc.Onboard(m.ctx, m.owner, "owner@example.com", "US")
	require.ErrorIs(t, err, billing.ErrManualMode)
}
