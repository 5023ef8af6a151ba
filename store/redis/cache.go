package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Cache is a byte cache in Redis with per-entry expiry: the shared tier that
// every instance sees. Create it with Client.Cache.
type Cache struct {
	rdb    goredis.UniversalClient
	prefix string
}

// Get returns the value stored under key and true, or false when the key is
// absent or expired.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := c.rdb.Get(ctx, c.prefix+key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis: cache get: %w", err)
	}
	return v, true, nil
}

// Set stores value under key for ttl, rounded down to whole milliseconds. A
// ttl under one millisecond deletes the key.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return c.Delete(ctx, key)
	}
	if err := c.rdb.Set(ctx, c.prefix+key, value, ttl.Truncate(time.Millisecond)).Err(); err != nil {
		return fmt.Errorf("redis: cache set: %w", err)
	}
	return nil
}

// Delete removes the keys; absent keys are ignored. Keys are deleted one by
// one in a pipeline, so they need not share a Redis Cluster slot.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, c.prefix+k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: cache delete: %w", err)
	}
	return nil
}
