package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
)

// RunOneTimeStore runs the auth.OneTimeStore contract against the stores
// newStore returns, one fresh store per subtest.
//
// Beyond the interface's words it checks the rule both adshare stores keep
// for a ttl under one millisecond (which Redis cannot express): PutOnce
// returns an error and stores nothing.
func RunOneTimeStore(t *testing.T, newStore func(t *testing.T) auth.OneTimeStore) {
	t.Helper()
	ctx := context.Background()

	t.Run("a value is taken once, then absent", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		require.NoError(t, s.PutOnce(ctx, "k", []byte("state"), time.Minute))
		v, ok, err := s.Take(ctx, "k")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, []byte("state"), v)

		_, ok, err = s.Take(ctx, "k")
		require.NoError(t, err)
		require.False(t, ok)

		// Once taken, the key is free again.
		require.NoError(t, s.PutOnce(ctx, "k", []byte("next"), time.Minute))
	})

	t.Run("an absent key is not found", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		v, ok, err := s.Take(ctx, "never-put")
		require.NoError(t, err)
		require.False(t, ok)
		require.Nil(t, v)
	})

	t.Run("a held key is not put again", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		require.NoError(t, s.PutOnce(ctx, "k", []byte("first"), time.Minute))
		require.ErrorIs(t, s.PutOnce(ctx, "k", []byte("second"), time.Minute), auth.ErrOneTimeKeyExists)
		v, ok, err := s.Take(ctx, "k")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, []byte("first"), v)
	})

	t.Run("values expire", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		require.NoError(t, s.PutOnce(ctx, "short", []byte("old"), 30*time.Millisecond))
		require.NoError(t, s.PutOnce(ctx, "long", []byte("v"), time.Minute))
		// Polling with PutOnce rather than Take, which would consume the
		// value before it expires: the key frees once expired.
		require.Eventually(t, func() bool {
			return s.PutOnce(ctx, "short", []byte("new"), time.Minute) == nil
		}, 5*time.Second, 10*time.Millisecond)
		v, ok, err := s.Take(ctx, "short")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, []byte("new"), v)
		_, ok, err = s.Take(ctx, "long")
		require.NoError(t, err)
		require.True(t, ok)
	})

	t.Run("an expired value is not taken", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		require.NoError(t, s.PutOnce(ctx, "k", []byte("v"), 20*time.Millisecond))
		time.Sleep(60 * time.Millisecond)
		_, ok, err := s.Take(ctx, "k")
		require.NoError(t, err)
		require.False(t, ok)
	})

	t.Run("a ttl under a millisecond is an error and stores nothing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for _, ttl := range []time.Duration{-time.Second, 0, time.Nanosecond, 999 * time.Microsecond} {
			require.Error(t, s.PutOnce(ctx, "k", []byte("v"), ttl), "ttl %v", ttl)
		}
		_, ok, err := s.Take(ctx, "k")
		require.NoError(t, err)
		require.False(t, ok)
	})

	t.Run("binary and empty values round trip; callers cannot mutate them", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		bin := []byte{0, 0xff, 0xfe, '\n', 0x80}
		in := append([]byte(nil), bin...)
		require.NoError(t, s.PutOnce(ctx, "bin", in, time.Minute))
		in[0] = 'X'
		require.NoError(t, s.PutOnce(ctx, "empty", []byte{}, time.Minute))
		v, ok, err := s.Take(ctx, "bin")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, bin, v)
		v, ok, err = s.Take(ctx, "empty")
		require.NoError(t, err)
		require.True(t, ok)
		require.Empty(t, v)
	})

	t.Run("of concurrent takes exactly one gets the value", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		require.NoError(t, s.PutOnce(ctx, "k", []byte("nonce"), time.Minute))
		type result struct {
			v   []byte
			ok  bool
			err error
		}
		results := make(chan result, 20)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				<-start
				v, ok, err := s.Take(ctx, "k")
				results <- result{v, ok, err}
			})
		}
		close(start)
		wg.Wait()
		close(results)
		winners := 0
		for r := range results {
			require.NoError(t, r.err)
			if r.ok {
				winners++
				require.Equal(t, []byte("nonce"), r.v)
			}
		}
		require.Equal(t, 1, winners)
	})

	t.Run("of concurrent puts exactly one succeeds", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		requireOneWins(t, 20, auth.ErrOneTimeKeyExists, func(int) error { return s.PutOnce(ctx, "k", []byte("v"), time.Minute) })
	})
}
