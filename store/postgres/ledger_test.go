package postgres_test

import (
	"testing"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/store/postgres/postgrestest"
	"github.com/adshare/adshare/store/storetest"
)

func TestLedger(t *testing.T) {
	t.Parallel()
	storetest.RunLedger(t, func(t *testing.T) billing.Ledger { return postgrestest.New(t) })
}

func TestBilling(t *testing.T) {
	t.Parallel()
	storetest.RunBilling(t, func(t *testing.T) storetest.BillingStores { return postgrestest.NewWithKeyring(t) })
}
