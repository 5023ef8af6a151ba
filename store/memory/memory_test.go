package memory_test

import (
	"testing"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/store/storetest"
)

func TestUserStore(t *testing.T) {
	t.Parallel()
	storetest.RunUserStore(t, func(*testing.T) auth.UserStore { return memory.New() })
}

func TestSpaceStore(t *testing.T) {
	t.Parallel()
	storetest.RunSpaceStore(t, func(*testing.T) storetest.SpaceStores { return memory.New() })
}

func TestContentStore(t *testing.T) {
	t.Parallel()
	storetest.RunContentStore(t, func(*testing.T) storetest.ContentStores { return memory.New() })
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	storetest.RunAccounts(t, func(*testing.T) storetest.AuthStores { return memory.New() })
}

func TestSessionStore(t *testing.T) {
	t.Parallel()
	storetest.RunSessionStore(t, func(*testing.T) storetest.AuthStores { return memory.New() })
}

func TestIdentityStore(t *testing.T) {
	t.Parallel()
	storetest.RunIdentityStore(t, func(*testing.T) storetest.AuthStores { return memory.New() })
}

func TestAuditLog(t *testing.T) {
	t.Parallel()
	storetest.RunAuditLog(t, func(*testing.T) storetest.AuthStores { return memory.New() })
}

func TestEventStore(t *testing.T) {
	t.Parallel()
	storetest.RunEventStore(t, func(*testing.T) analytics.Store { return memory.New() })
}

func TestUserStats(t *testing.T) {
	t.Parallel()
	storetest.RunUserStats(t, func(*testing.T) storetest.UserStatsStores { return memory.New() })
}

func TestBus(t *testing.T) {
	t.Parallel()
	storetest.RunBroadcaster(t, func(*testing.T) (adspace.Broadcaster, adspace.Broadcaster) {
		bus := memory.NewBus()
		return bus, bus
	})
}

func TestLedger(t *testing.T) {
	t.Parallel()
	storetest.RunLedger(t, func(*testing.T) billing.Ledger { return memory.New() })
}

func TestBilling(t *testing.T) {
	t.Parallel()
	storetest.RunBilling(t, func(*testing.T) storetest.BillingStores { return memory.New() })
}

func TestConsentStore(t *testing.T) {
	t.Parallel()
	storetest.RunConsentStore(t, func(*testing.T) storetest.ConsentStores { return memory.New() })
}
