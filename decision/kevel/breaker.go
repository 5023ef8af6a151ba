package kevel

import (
	"sync"
	"time"
)

// breakerState is the circuit breaker's state; its value is the
// adshare_kevel_circuit_state gauge.
type breakerState int

const (
	stateClosed   breakerState = 0
	stateHalfOpen breakerState = 1
	stateOpen     breakerState = 2
)

// String names the state for logs.
func (s breakerState) String() string {
	switch s {
	case stateHalfOpen:
		return "half-open"
	case stateOpen:
		return "open"
	}
	return "closed"
}

// verdict is what one call tells the breaker.
type verdict int

const (
	verdictSuccess verdict = iota
	verdictFailure
	verdictNeutral // the call proves nothing (cancelled by the caller, 429)
)

const breakerBuckets = 10

// breaker is a circuit breaker (see BreakerConfig). The failure ratio is
// measured over a window of breakerBuckets rolling buckets. It is safe for
// concurrent use.
type breaker struct {
	cfg      BreakerConfig
	onChange func(from, to breakerState)

	mu          sync.Mutex
	state       breakerState
	consecutive int
	openedAt    time.Time
	probing     bool // a half-open probe is in flight
	buckets     [breakerBuckets]bucket
}

// bucket counts the calls of one slice of the window.
type bucket struct {
	epoch     int64 // which slice of time; 0 is empty
	ok, fails int
}

func newBreaker(cfg BreakerConfig, onChange func(from, to breakerState)) *breaker {
	return &breaker{cfg: cfg, onChange: onChange}
}

// allow says whether a call may go out now. probe is true for the single
// half-open probe, whose result decides the state; wait is how long until
// the next probe when refused.
func (b *breaker) allow(now time.Time) (ok, probe bool, wait time.Duration) {
	if b.cfg.Disabled {
		return true, false, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case stateOpen:
		if left := b.openedAt.Add(b.cfg.CoolDown).Sub(now); left > 0 {
			return false, false, left
		}
		b.setState(stateHalfOpen)
		b.probing = true
		return true, true, 0
	case stateHalfOpen:
		if b.probing {
			return false, false, b.cfg.CoolDown
		}
		b.probing = true
		return true, true, 0
	}
	return true, false, 0
}

// record reports a call's verdict. Results of calls that went out while
// closed but end after the breaker opened do not change its state.
func (b *breaker) record(now time.Time, probe bool, v verdict) {
	if b.cfg.Disabled {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
		switch v {
		case verdictSuccess:
			b.reset()
			b.setState(stateClosed)
		case verdictFailure:
			b.openedAt = now
			b.setState(stateOpen)
		}
		return
	}
	if b.state != stateClosed || v == verdictNeutral {
		return
	}
	bk := b.bucket(now)
	if v == verdictSuccess {
		bk.ok++
		b.consecutive = 0
		return
	}
	bk.fails++
	b.consecutive++
	total, fails := b.totals(now)
	if b.consecutive >= b.cfg.ConsecutiveFailures ||
		(total >= b.cfg.MinRequests && float64(fails) >= b.cfg.FailureRatio*float64(total)) {
		b.openedAt = now
		b.setState(stateOpen)
	}
}

// current returns the state.
func (b *breaker) current() breakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

func (b *breaker) setState(s breakerState) {
	if s == b.state {
		return
	}
	from := b.state
	b.state = s
	if s != stateClosed {
		b.reset()
	}
	if b.onChange != nil {
		b.onChange(from, s)
	}
}

func (b *breaker) reset() {
	b.consecutive = 0
	for i := range b.buckets {
		b.buckets[i] = bucket{}
	}
}

func (b *breaker) span() time.Duration {
	return max(b.cfg.Window/breakerBuckets, time.Millisecond)
}

// bucket returns now's bucket, emptied if it held an older epoch.
func (b *breaker) bucket(now time.Time) *bucket {
	epoch := now.UnixNano()/int64(b.span()) + 1 // never 0, the empty epoch
	bk := &b.buckets[epoch%breakerBuckets]
	if bk.epoch != epoch {
		bk.epoch, bk.ok, bk.fails = epoch, 0, 0
	}
	return bk
}

// totals sums the buckets still inside the window.
func (b *breaker) totals(now time.Time) (total, fails int) {
	epoch := now.UnixNano()/int64(b.span()) + 1
	for _, bk := range b.buckets {
		if bk.epoch != 0 && epoch-bk.epoch < breakerBuckets {
			total += bk.ok + bk.fails
			fails += bk.fails
		}
	}
	return total, fails
}
