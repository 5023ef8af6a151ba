package kevel

import (
	"sync"
	"time"
)

// tokenBucket is a token bucket (golang.org/x/time/rate is not a
// dependency of this module, and this needs only a non-blocking Allow). It
// is safe for concurrent use. A nil *tokenBucket allows everything.
type tokenBucket struct {
	rate  float64 // tokens per second
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newTokenBucket(perSecond float64, burst int) *tokenBucket {
	if perSecond <= 0 {
		return nil
	}
	return &tokenBucket{rate: perSecond, burst: float64(burst), tokens: float64(burst)}
}

// allow takes a token if there is one; otherwise it says how long until
// there will be.
func (b *tokenBucket) allow(now time.Time) (ok bool, wait time.Duration) {
	if b == nil {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
