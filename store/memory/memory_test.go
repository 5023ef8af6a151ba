package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/retention"
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

func TestRetentionPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := memory.New()
	now := time.Now().UTC()
	day := func(n int) time.Time { return now.Add(time.Duration(-n) * 24 * time.Hour) }
	u := storetest.NewUser(t, "retention@example.com")
	require.NoError(t, s.CreateAccount(ctx, auth.NewAccount{User: u}))
	for _, at := range []time.Time{day(500), day(100), day(1)} {
		require.NoError(t, s.AppendAudit(ctx, auth.AuditEvent{At: at, Action: "a", Outcome: auth.OutcomeSuccess, IP: "203.0.113.1"}))
	}
	res, err := s.Purge(ctx, retention.DefaultPolicy().Cutoffs(now))
	require.NoError(t, err)
	require.EqualValues(t, 1, res.Purged[retention.Audit])
	require.EqualValues(t, 1, res.Purged[retention.IPAddresses])
	evs, err := s.AuditEvents(ctx, auth.AuditFilter{})
	require.NoError(t, err)
	require.Len(t, evs, 2)
	ips := map[string]int{}
	for _, e := range evs {
		ips[e.IP]++
	}
	require.Equal(t, map[string]int{"": 1, "203.0.113.1": 1}, ips)
}
