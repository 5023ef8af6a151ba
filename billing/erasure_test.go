package billing_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/billing"
)

func TestClosePayeeForAnErasure(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	// No payee: nothing to close.
	require.NoError(t, b.svc.ClosePayee(b.ctx, b.owner.UserID))
	require.Empty(t, b.proc.Closed())

	ob, err := b.svc.Onboard(b.ctx, b.owner, "owner@example.com", "US")
	require.NoError(t, err)
	pending, err := b.svc.PayoutPending(b.ctx, b.owner.UserID)
	require.NoError(t, err)
	require.False(t, pending)

	require.NoError(t, b.svc.ClosePayee(b.ctx, b.owner.UserID))
	require.Equal(t, []string{ob.Payee.ID}, b.proc.Closed(), "the fake processor closed the connected account")
	_, err = b.proc.Account(b.ctx, ob.Payee.ID)
	require.Error(t, err, "the processor no longer has it")
	// Run again (a resumed erasure): the account is gone, no error.
	require.NoError(t, b.svc.ClosePayee(b.ctx, b.owner.UserID))
	require.Equal(t, []string{ob.Payee.ID}, b.proc.Closed())
	var _ billing.AccountCloser = b.proc
}
