package memory

import (
	"context"
	"sync"
	"time"

	"github.com/adshare/adshare/analytics"
)

// BurstCounter is an in-process analytics.BurstCounter. Expired keys are
// dropped once a minute (by its clock), inside Add, so memory follows the
// keys of the last few minutes. It is safe for concurrent use.
type BurstCounter struct {
	// Now is the clock; tests may replace it before first use.
	Now func() time.Time

	mu        sync.Mutex
	counts    map[analytics.BurstKey]burstCount
	nextSweep time.Time
}

type burstCount struct {
	n       int64
	expires time.Time
}

var _ analytics.BurstCounter = (*BurstCounter)(nil)

// NewBurstCounter returns an empty counter.
func NewBurstCounter() *BurstCounter {
	return &BurstCounter{Now: time.Now, counts: map[analytics.BurstKey]burstCount{}}
}

// Counts implements analytics.BurstCounter.
func (b *BurstCounter) Counts(ctx context.Context, keys []analytics.BurstKey) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := b.Now()
	out := make([]int64, len(keys))
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, k := range keys {
		if c, ok := b.counts[k]; ok && now.Before(c.expires) {
			out[i] = c.n
		}
	}
	return out, nil
}

// Add implements analytics.BurstCounter.
func (b *BurstCounter) Add(ctx context.Context, keys []analytics.BurstKey, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := b.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !now.Before(b.nextSweep) {
		for k, c := range b.counts {
			if !now.Before(c.expires) {
				delete(b.counts, k)
			}
		}
		b.nextSweep = now.Add(time.Minute)
	}
	for _, k := range keys {
		c := b.counts[k]
		if !now.Before(c.expires) {
			c.n = 0
		}
		c.n++
		c.expires = now.Add(ttl)
		b.counts[k] = c
	}
	return nil
}
