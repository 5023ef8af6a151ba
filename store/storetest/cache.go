package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Cache is the byte cache contract that store/memory.Cache and
// store/redis.Cache both keep.
type Cache interface {
	// Get returns the value under key and true, or false when absent or expired.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores value under key for ttl; a ttl under a millisecond deletes.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes the keys, ignoring absent ones.
	Delete(ctx context.Context, keys ...string) error
}

// RunCache runs the Cache contract against the caches newCache returns,
// one fresh cache per subtest.
func RunCache(t *testing.T, newCache func(t *testing.T) Cache) {
	t.Helper()
	ctx := context.Background()

	t.Run("miss, set, hit, overwrite, delete", func(t *testing.T) {
		t.Parallel()
		c := newCache(t)
		_, ok, err := c.Get(ctx, "k")
		require.NoError(t, err)
		require.False(t, ok)

		require.NoError(t, c.Set(ctx, "k", []byte("one"), time.Minute))
		v, ok, err := c.Get(ctx, "k")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, []byte("one"), v)

		require.NoError(t, c.Set(ctx, "k", []byte("two"), time.Minute))
		v, _, err = c.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, []byte("two"), v)

		require.NoError(t, c.Delete(ctx, "k", "never-set"))
		_, ok, err = c.Get(ctx, "k")
		require.NoError(t, err)
		require.False(t, ok)
		require.NoError(t, c.Delete(ctx))
	})

	t.Run("binary values and empty values round trip", func(t *testing.T) {
		t.Parallel()
		c := newCache(t)
		bin := []byte{0, 0xff, 0xfe, '\n', 0x80}
		require.NoError(t, c.Set(ctx, "bin", bin, time.Minute))
		require.NoError(t, c.Set(ctx, "empty", []byte{}, time.Minute))
		v, ok, err := c.Get(ctx, "bin")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, bin, v)
		v, ok, err = c.Get(ctx, "empty")
		require.NoError(t, err)
		require.True(t, ok)
		require.Empty(t, v)
	})

	t.Run("entries expire", func(t *testing.T) {
		t.Parallel()
		c := newCache(t)
		require.NoError(t, c.Set(ctx, "short", []byte("v"), 30*time.Millisecond))
		require.NoError(t, c.Set(ctx, "long", []byte("v"), time.Minute))
		require.Eventually(t, func() bool {
			_, ok, err := c.Get(ctx, "short")
			return err == nil && !ok
		}, 5*time.Second, 10*time.Millisecond)
		_, ok, err := c.Get(ctx, "long")
		require.NoError(t, err)
		require.True(t, ok)
	})

	t.Run("a ttl under a millisecond deletes", func(t *testing.T) {
		t.Parallel()
		c := newCache(t)
		require.NoError(t, c.Set(ctx, "k", []byte("v"), time.Minute))
		require.NoError(t, c.Set(ctx, "k", []byte("w"), 0))
		_, ok, err := c.Get(ctx, "k")
		require.NoError(t, err)
		require.False(t, ok)
	})

	t.Run("callers cannot mutate stored values", func(t *testing.T) {
		t.Parallel()
		c := newCache(t)
		in := []byte("abc")
		require.NoError(t, c.Set(ctx, "k", in, time.Minute))
		in[0] = 'X'
		out, _, err := c.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, []byte("abc"), out)
		out[1] = 'Y'
		again, _, err := c.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, []byte("abc"), again)
	})
}
