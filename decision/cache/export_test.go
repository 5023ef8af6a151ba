package cache

import "testing"

// NewSharedTier returns a shared tier on the test Redis, under a key prefix
// unique to tb (skipping without Redis, failing under CI). It is set by
// tier_test.go, in package cache_test: store/redis imports this package, so
// only the external test package may import it.
var NewSharedTier func(tb testing.TB) Tier

// NewMemTier returns an empty memory tier with the default bounds, for the
// contract suite.
func NewMemTier() Tier {
	stats, err := newMetrics(nil)
	if err != nil {
		panic(err)
	}
	return newMemTier(DefaultMaxKeys, DefaultMaxAdsPerKey, stats)
}

// sharedTier returns NewSharedTier(tb).
func sharedTier(tb testing.TB) Tier {
	tb.Helper()
	if NewSharedTier == nil {
		tb.Fatal("decision/cache tests: NewSharedTier is unset (tier_test.go sets it)")
	}
	return NewSharedTier(tb)
}
