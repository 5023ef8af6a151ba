package cache_test

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision/cache"
	"github.com/adshare/adshare/decision/cache/cachetest"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/redis"
)

func init() {
	cache.NewSharedTier = func(tb testing.TB) cache.Tier {
		tb.Helper()
		url, prefix := testenv.Redis(tb)
		opts, err := goredis.ParseURL(url)
		require.NoError(tb, err)
		opts.ContextTimeoutEnabled = true
		rdb := goredis.NewClient(opts)
		tb.Cleanup(func() { _ = rdb.Close() })
		c := redis.New(rdb, &redis.Config{Prefix: prefix})
		require.NoError(tb, c.Ping(context.Background()))
		return c.DecisionPools("")
	}
}

func TestMemoryTierKeepsTheTierContract(t *testing.T) {
	t.Parallel()
	cachetest.RunTier(t, func(*testing.T) cache.Tier { return cache.NewMemTier() })
}
