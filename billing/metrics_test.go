package billing_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/billingtest"
	"github.com/adshare/adshare/internal/testenv"
)

func TestMetricsCountTheMoney(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	b := setup(t, false, func(c *billing.Config) { c.Metrics = reg })
	counter := func(name string, labels ...string) float64 {
		t.Helper()
		return testenv.Metric(t, reg, name, labels...)
	}

	tu := b.topUp(t, 5_000)
	require.Equal(t, 1.0, counter("adshare_billing_topups_total", "state", "started"))
	require.Equal(t, 1.0, counter("adshare_billing_topups_total", "state", "succeeded"))
	require.Equal(t, 1.0, counter("adshare_billing_ledger_postings_total", "kind", string(billing.TxTopUp)))
	stored := counter("adshare_billing_webhook_events_total", "result", "stored")
	require.Positive(t, stored)
	require.Equal(t, stored, counter("adshare_billing_webhook_events_total", "result", "applied"))

	// The same event again, and a forged one.
	require.NoError(t, b.proc.RefundPayment(tu.PaymentID, 100))
	events := b.proc.TakeEvents()
	b.deliver(t, events)
	payload, header, err := b.signer.Sign(events[0])
	require.NoError(t, err)
	_, err = b.svc.ReceiveEvent(b.ctx, payload, header)
	require.NoError(t, err)
	require.Equal(t, 1.0, counter("adshare_billing_webhook_events_total", "result", "duplicate"))
	_, err = b.svc.ReceiveEvent(b.ctx, payload, billingtest.SignPayload(payload, b.clock.Now(), "whsec_not_ours"))
	require.ErrorIs(t, err, billing.ErrWebhookSignature)
	require.Equal(t, 1.0, counter("adshare_billing_webhook_events_total", "result", "refused"))

	b.serve(t, b.owner.UserID, b.advertiser.UserID.String(), "local", 1_000, 2_000_000, 6500)
	require.NoError(t, b.svc.Settle(b.ctx, day))
	require.NoError(t, b.svc.Settle(b.ctx, day))
	require.Equal(t, 2.0, counter("adshare_billing_ledger_postings_total", "kind", string(billing.TxSettlement)),
		"the owner's settlement and the advertiser's charge; a replay is not a posting")

	// An event stored but not applied shows in the backlog at the sweep.
	require.NoError(t, b.proc.RefundPayment(tu.PaymentID, 100))
	refund := b.proc.TakeEvents()
	payload, header, err = b.signer.Sign(refund[len(refund)-1])
	require.NoError(t, err)
	_, err = b.svc.ReceiveEvent(b.ctx, payload, header)
	require.NoError(t, err)
	b.clock.Set(b.clock.Now().Add(10 * time.Minute))
	require.NoError(t, b.svc.SweepJob(b.ctx))
	require.Equal(t, 1.0, counter("adshare_billing_webhook_backlog_events"))
	require.Equal(t, (10 * time.Minute).Seconds(), counter("adshare_billing_webhook_backlog_oldest_seconds"))

	rec, err := b.svc.Reconcile(b.ctx, day)
	require.NoError(t, err)
	require.Equal(t, float64(len(rec.Differences)), counter("adshare_billing_reconciliation_differences"))
	require.Equal(t, float64(b.clock.Now().Unix()), counter("adshare_billing_reconciliation_last_run_timestamp_seconds"))

	_, err = billing.NewService(billing.Config{Store: b.store, Jobs: nil, Metrics: reg})
	require.Error(t, err)
	require.Positive(t, testutil.CollectAndCount(reg), "metrics are exported")
}
