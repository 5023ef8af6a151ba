package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/adshare/adshare/auth"
)

// DefaultLimiterMaxKeys is the number of keys a Limiter created by
// NewLimiter holds at most.
const DefaultLimiterMaxKeys = 1_000_000

// LimiterSweepInterval is how often (by the limiter's clock) a Limiter drops
// the keys that are back to a full burst. The sweep runs inside Allow.
const LimiterSweepInterval = time.Minute

// evictionSample is how many keys a full Limiter looks at to choose one to
// evict (as Redis samples keys for its approximated LRU).
const evictionSample = 8

// Limiter is an in-process auth.Limiter using GCRA: one theoretical arrival
// time (TAT) per key, kept in whole microseconds exactly as store/redis does.
// It is safe for concurrent use.
//
// Memory is bounded two ways. A key whose TAT is in the past is back to a
// full burst and carries no information, so Allow drops every such key once
// per LimiterSweepInterval. And the limiter holds at most MaxKeys keys: when
// a new key finds it full after a sweep, the key closest to a full burst
// among a small random sample is evicted. An evicted key starts again with a
// full burst, so a flood of distinct keys can loosen the limit of a few
// others; size MaxKeys well above the keys one sweep interval sees.
type Limiter struct {
	// Now is the clock; tests may replace it before first use.
	Now func() time.Time
	// MaxKeys bounds the keys held; tests may lower it before first use.
	// NewLimiter sets DefaultLimiterMaxKeys.
	MaxKeys int

	mu        sync.Mutex
	tats      map[string]int64 // key -> TAT, Unix microseconds
	nextSweep int64            // Unix microseconds
}

var _ auth.Limiter = (*Limiter)(nil)

// NewLimiter returns an empty limiter holding at most DefaultLimiterMaxKeys
// keys.
func NewLimiter() *Limiter {
	return &Limiter{Now: time.Now, MaxKeys: DefaultLimiterMaxKeys, tats: make(map[string]int64)}
}

// Allow implements auth.Limiter. It returns an error for a limit that is not
// Valid or whose Interval is under one microsecond, and ctx's error when ctx
// is done.
func (l *Limiter) Allow(ctx context.Context, key string, lim auth.Limit) (auth.LimitResult, error) {
	if err := ctx.Err(); err != nil {
		return auth.LimitResult{}, err
	}
	interval, err := limitInterval(lim)
	if err != nil {
		return auth.LimitResult{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now().UnixMicro()
	l.maybeSweep(now)

	tat, held := l.tats[key]
	res, newTAT := gcra(now, tat, held, interval, int64(lim.Burst))
	if res.Allowed {
		if !held && len(l.tats) >= l.MaxKeys {
			l.makeRoom(now)
		}
		l.tats[key] = newTAT
	}
	return res, nil
}

// Len returns the number of keys held, including those back to a full
// burst that the next sweep will drop.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tats)
}

// limitInterval validates lim and returns its emission interval in
// microseconds.
func limitInterval(lim auth.Limit) (int64, error) {
	if !lim.Valid() {
		return 0, fmt.Errorf("memory: limiter: invalid limit %+v: Rate, Period and Burst must all be positive", lim)
	}
	interval := lim.Interval().Microseconds()
	if interval < 1 {
		return 0, fmt.Errorf("memory: limiter: invalid limit %+v: Period/Rate must be at least a microsecond", lim)
	}
	return interval, nil
}

// gcra decides one event at now for a key whose stored TAT is tat (when
// held), with emission interval T and burst B, all times in microseconds. It
// returns the answer and the TAT to store when the event is allowed. The
// store/redis Lua script is the same computation.
func gcra(now, tat int64, held bool, T, B int64) (auth.LimitResult, int64) {
	if !held || tat < now {
		tat = now
	}
	newTAT := tat + T
	// The event is allowed when newTAT lies within burst tolerance
	// T*(B-1), plus the one interval the event itself takes, of now.
	allowAt := newTAT - T*B
	if now < allowAt {
		return auth.LimitResult{
			RetryAfter: micros(allowAt - now),
			ResetAfter: micros(tat - now),
		}, tat
	}
	reset := newTAT - now
	return auth.LimitResult{
		Allowed:    true,
		Remaining:  int((T*B - reset) / T),
		ResetAfter: micros(reset),
	}, newTAT
}

func micros(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

// maybeSweep drops the keys back to a full burst, at most once per
// LimiterSweepInterval. The caller holds l.mu.
func (l *Limiter) maybeSweep(now int64) {
	if now < l.nextSweep {
		return
	}
	l.sweep(now)
}

func (l *Limiter) sweep(now int64) {
	for k, tat := range l.tats {
		if tat <= now {
			delete(l.tats, k)
		}
	}
	l.nextSweep = now + LimiterSweepInterval.Microseconds()
}

// makeRoom frees one slot for a new key. The caller holds l.mu.
func (l *Limiter) makeRoom(now int64) {
	l.sweep(now)
	for len(l.tats) >= max(l.MaxKeys, 1) {
		// Map iteration starts at a random place: evict the key nearest a
		// full burst among the first few.
		victim, oldest, n := "", int64(0), 0
		for k, tat := range l.tats {
			if n == 0 || tat < oldest {
				victim, oldest = k, tat
			}
			if n++; n == evictionSample {
				break
			}
		}
		delete(l.tats, victim)
	}
}
