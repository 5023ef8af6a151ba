package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
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

func TestCache(t *testing.T) {
	t.Parallel()
	storetest.RunCache(t, func(*testing.T) storetest.Cache { return memory.NewCache(0) })
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := memory.NewCache(2)
	require.NoError(t, c.Set(ctx, "a", []byte("1"), time.Minute))
	require.NoError(t, c.Set(ctx, "b", []byte("2"), time.Minute))
	_, ok, _ := c.Get(ctx, "a") // a is now the most recently used
	require.True(t, ok)
	require.NoError(t, c.Set(ctx, "c", []byte("3"), time.Minute))

	require.Equal(t, 2, c.Len())
	_, ok, _ = c.Get(ctx, "b")
	require.False(t, ok, "b was least recently used and should be evicted")
	_, ok, _ = c.Get(ctx, "a")
	require.True(t, ok)
	_, ok, _ = c.Get(ctx, "c")
	require.True(t, ok)
}

func TestCacheExpiryFollowsTheClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := memory.NewCache(0)
	c.Now = func() time.Time { return now }
	require.NoError(t, c.Set(ctx, "k", []byte("v"), time.Second))
	now = now.Add(999 * time.Millisecond)
	_, ok, _ := c.Get(ctx, "k")
	require.True(t, ok)
	now = now.Add(time.Millisecond)
	_, ok, _ = c.Get(ctx, "k")
	require.False(t, ok)
	require.Equal(t, 0, c.Len(), "an expired entry is dropped when read")
}

func TestBus(t *testing.T) {
	t.Parallel()
	storetest.RunBroadcaster(t, func(*testing.T) (adspace.Broadcaster, adspace.Broadcaster) {
		bus := memory.NewBus()
		return bus, bus
	})
}
