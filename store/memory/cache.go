package memory

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// DefaultCacheEntries is the capacity of a Cache created with a size of zero.
const DefaultCacheEntries = 10_000

// Cache is a bounded in-process byte cache with per-entry expiry: the
// in-memory equivalent of store/redis.Cache. When full it evicts the least
// recently used entry. It is safe for concurrent use.
type Cache struct {
	// Now is the clock; tests may replace it before first use.
	Now func() time.Time

	mu      sync.Mutex
	max     int
	order   *list.List // front = most recently used
	entries map[string]*list.Element
}

type cacheEntry struct {
	key     string
	value   []byte
	expires time.Time
}

// NewCache returns a cache that holds at most maxEntries entries
// (DefaultCacheEntries when maxEntries is zero or negative).
func NewCache(maxEntries int) *Cache {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	return &Cache{Now: time.Now, max: maxEntries, order: list.New(), entries: make(map[string]*list.Element)}
}

// Get returns a copy of the value stored under key and true, or false when
// the key is absent or expired.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false, nil
	}
	e := el.Value.(*cacheEntry)
	if !c.Now().Before(e.expires) {
		c.remove(el)
		return nil, false, nil
	}
	c.order.MoveToFront(el)
	return append([]byte(nil), e.value...), true, nil
}

// Set stores a copy of value under key for ttl. A ttl under one millisecond
// deletes the key (as in store/redis, which counts in milliseconds).
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.remove(el)
	}
	if ttl < time.Millisecond {
		return nil
	}
	e := &cacheEntry{key: key, value: append([]byte(nil), value...), expires: c.Now().Add(ttl)}
	c.entries[key] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		c.remove(c.order.Back())
	}
	return nil
}

// Delete removes the keys; absent keys are ignored.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if el, ok := c.entries[k]; ok {
			c.remove(el)
		}
	}
	return nil
}

// Len returns the number of entries held, expired ones included until they
// are next touched or evicted.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

func (c *Cache) remove(el *list.Element) {
	c.order.Remove(el)
	delete(c.entries, el.Value.(*cacheEntry).key)
}
