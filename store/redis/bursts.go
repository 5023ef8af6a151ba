package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/adshare/adshare/analytics"
)

// BurstCounter is analytics.BurstCounter in Redis, shared by every
// instance: one MGET to read a batch's counts, one pipeline of INCR and
// PEXPIRE to add them.
type BurstCounter struct {
	rdb    goredis.UniversalClient
	prefix string
}

var _ analytics.BurstCounter = (*BurstCounter)(nil)

// BurstCounter returns the burst counter on this client.
func (c *Client) BurstCounter() *BurstCounter {
	return &BurstCounter{rdb: c.rdb, prefix: c.prefix + "ivt:"}
}

// Counts implements analytics.BurstCounter.
func (b *BurstCounter) Counts(ctx context.Context, keys []string) ([]int64, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = b.prefix + k
	}
	vals, err := b.rdb.MGet(ctx, full...).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: burst counts: %w", err)
	}
	out := make([]int64, len(keys))
	for i, v := range vals {
		switch v := v.(type) {
		case nil:
		case string:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("redis: burst count %q: %w", keys[i], err)
			}
			out[i] = n
		default:
			return nil, fmt.Errorf("redis: burst count %q: unexpected %T", keys[i], v)
		}
	}
	return out, nil
}

// Add implements analytics.BurstCounter.
func (b *BurstCounter) Add(ctx context.Context, keys []string, ttl time.Duration) error {
	if len(keys) == 0 {
		return nil
	}
	if ttl < time.Millisecond {
		return errors.New("redis: burst counts need a ttl of at least a millisecond")
	}
	_, err := b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range keys {
			p.Incr(ctx, b.prefix+k)
			p.PExpire(ctx, b.prefix+k, ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: add burst counts: %w", err)
	}
	return nil
}
