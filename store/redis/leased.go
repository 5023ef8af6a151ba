package redis

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/adshare/adshare/auth"
)

// leaseScript takes up to ARGV[3] events' allowance at once from a GCRA key
// (the computation of gcraScript, for n events): as many as the limit
// allows now, at least one, or none.
//
// KEYS[1]: the key. ARGV[1]: the interval T (µs); ARGV[2]: the burst B;
// ARGV[3]: the most to take. Returns {taken, remaining, retry after, reset
// after} (µs).
var leaseScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  tat = tonumber(stored)
  if tat < now then tat = now end
end
local avail = math.floor((now + interval * burst - tat) / interval)
if avail < 1 then
  return {0, 0, tat + interval - interval * burst - now, tat - now}
end
local take = math.min(want, avail)
local newTat = tat + take * interval
local reset = newTat - now
redis.call('SET', KEYS[1], string.format('%.0f', newTat), 'PX', string.format('%.0f', math.ceil(reset / 1000)))
return {take, avail - take, 0, reset}
`)

// Defaults of LeasedLimiterOptions.
const (
	DefaultLeaseFraction = 10
	DefaultLeaseTTL      = time.Second
	DefaultLeaseKeys     = 100_000
	DefaultLeaseRetry    = time.Second
	DefaultLeaseTimeout  = 250 * time.Millisecond
)

// LeasedLimiterOptions configures Client.LeasedLimiter; zero fields take
// the defaults.
type LeasedLimiterOptions struct {
	// LeaseFraction sets the lease: each borrowing takes up to
	// Burst/LeaseFraction events' allowance (at least one). Default 10.
	LeaseFraction int
	// LeaseTTL is how long borrowed allowance may be spent; what is left
	// after it is dropped (never given back), so an instance never spends
	// old allowance. Default 1 s.
	LeaseTTL time.Duration
	// MaxKeys bounds the keys held locally; past it, expired leases are
	// dropped, then all. Default 100,000.
	MaxKeys int
	// Fallback answers while Redis does not (store/memory.NewLimiter: the
	// limits then hold per instance). Nil: Allow returns Redis's error.
	Fallback auth.Limiter
	// RetryInterval is how long, after Redis failed to answer, the
	// Fallback answers without asking Redis (so that an outage does not
	// cost every request a timeout). Default 1 s.
	RetryInterval time.Duration
	// Timeout bounds one borrowing: a Redis that is slower than this, or
	// holds the connection without answering (half-open), counts as
	// down, so that a request never waits on it longer. Default 250 ms
	// (a borrowing takes well under a millisecond on a healthy network).
	// Clients from Open respect it; a client of the host's needs
	// ContextTimeoutEnabled.
	Timeout time.Duration
	// Logger is told when Redis stops and starts answering again.
	Logger *slog.Logger
	// Now is the local clock of leases; defaults to time.Now.
	Now func() time.Time
}

// LeasedLimiter is an auth.Limiter whose limits hold across every
// instance without a Redis round trip per event: an instance borrows a
// slice of a key's allowance from the shared GCRA in Redis (a lease of up
// to Burst/LeaseFraction events) and spends it locally, going back to
// Redis only when the lease is spent or expired. All instances together
// never take more than the limit allows (Redis's GCRA grants each lease);
// leased allowance an instance does not spend within LeaseTTL is lost, so
// the error is on the side of refusing. While Redis does not answer, the
// Fallback decides (logged once per outage). Create it with
// Client.LeasedLimiter.
type LeasedLimiter struct {
	rdb    goredis.UniversalClient
	prefix string
	opts   LeasedLimiterOptions

	mu     sync.RWMutex
	leases map[string]*lease
	down   atomic.Bool  // Redis failed on the last borrowing
	retry  atomic.Int64 // while down, Redis is not asked before this (Unix ns)
}

// lease is a key's borrowed allowance. Spending it is lock-free (an
// atomic decrement while it has not expired), so that one hot key, a
// busy client's address, does not serialize its requests; mu is held only
// to borrow, so that callers who find it spent wait for one borrowing
// rather than each going to Redis.
type lease struct {
	mu      sync.Mutex
	tokens  atomic.Int64                     // may go below zero: a spender that finds none takes the borrowing path
	expires atomic.Int64                     // Unix ns
	last    atomic.Pointer[auth.LimitResult] // Redis's answer at the last borrowing
	// granted is the allowance the last borrowing left the lease with.
	granted atomic.Int64
	// renewing is true while a renewal borrows in the background.
	renewing atomic.Bool
}

// spend takes one event's allowance from the lease if it has one.
func (le *lease) spend(now time.Time) (auth.LimitResult, bool) {
	if now.UnixNano() >= le.expires.Load() {
		return auth.LimitResult{}, false
	}
	t := le.tokens.Add(-1)
	if t < 0 {
		return auth.LimitResult{}, false
	}
	last := le.last.Load()
	return auth.LimitResult{Allowed: true, Remaining: int(t) + last.Remaining, ResetAfter: last.ResetAfter}, true
}

var _ auth.Limiter = (*LeasedLimiter)(nil)

// LeasedLimiter returns a leased limiter on this client's Redis. Its keys
// are Limiter's (the same GCRA state), so both may count one key.
func (c *Client) LeasedLimiter(opts *LeasedLimiterOptions) *LeasedLimiter {
	var o LeasedLimiterOptions
	if opts != nil {
		o = *opts
	}
	o.LeaseFraction = cmp.Or(o.LeaseFraction, DefaultLeaseFraction)
	o.LeaseTTL = cmp.Or(o.LeaseTTL, DefaultLeaseTTL)
	o.MaxKeys = cmp.Or(o.MaxKeys, DefaultLeaseKeys)
	o.RetryInterval = cmp.Or(o.RetryInterval, DefaultLeaseRetry)
	o.Timeout = cmp.Or(o.Timeout, DefaultLeaseTimeout)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &LeasedLimiter{rdb: c.rdb, prefix: c.prefix + "rl:", opts: o, leases: map[string]*lease{}}
}

// Allow implements auth.Limiter: from the local lease when it has
// allowance, else from a new lease. It returns an error for an invalid
// limit, and when Redis does not answer and there is no Fallback. A lease
// late in its life or nearly spent is renewed in the background, so that
// a busy key's requests do not wait for Redis when it runs out.
func (l *LeasedLimiter) Allow(ctx context.Context, key string, lim auth.Limit) (auth.LimitResult, error) {
	if !lim.Valid() || lim.Interval() < time.Microsecond {
		return auth.LimitResult{}, fmt.Errorf("redis: leased limiter: invalid limit %+v", lim)
	}
	now := l.opts.Now()
	if l.opts.Fallback != nil && l.resting(now) {
		return l.opts.Fallback.Allow(ctx, key, lim)
	}
	le := l.lease(key, now)
	if res, ok := le.spend(now); ok {
		l.renewEarly(key, le, lim, now)
		return res, nil
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	if res, ok := le.spend(now); ok { // another caller borrowed meanwhile
		return res, nil
	}
	tokens, last, err := l.borrow(ctx, key, lim, le, now, 1)
	if err != nil {
		if l.opts.Fallback != nil {
			return l.opts.Fallback.Allow(ctx, key, lim)
		}
		return auth.LimitResult{}, fmt.Errorf("redis: leased limiter: %w", err)
	}
	if tokens < 0 {
		return auth.LimitResult{RetryAfter: last.RetryAfter, ResetAfter: last.ResetAfter}, nil
	}
	return auth.LimitResult{Allowed: true, Remaining: int(tokens) + last.Remaining, ResetAfter: last.ResetAfter}, nil
}

// borrow takes a new lease for key from Redis, keeping keep events of it
// for the caller, and stores the rest as le's allowance; le.mu is held.
// It returns the allowance stored, or -1 when Redis granted nothing.
func (l *LeasedLimiter) borrow(ctx context.Context, key string, lim auth.Limit, le *lease, now time.Time, keep int64) (int64, *auth.LimitResult, error) {
	want := max(1, lim.Burst/l.opts.LeaseFraction)
	ctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	r, err := leaseScript.Run(ctx, l.rdb, []string{l.prefix + key}, lim.Interval().Microseconds(), lim.Burst, want).Int64Slice()
	cancel()
	if err == nil && len(r) != 4 {
		err = fmt.Errorf("unexpected script reply %v", r)
	}
	l.health(ctx, err, now)
	if err != nil {
		return 0, nil, err
	}
	last := &auth.LimitResult{Remaining: int(r[1]), RetryAfter: time.Duration(r[2]) * time.Microsecond, ResetAfter: time.Duration(r[3]) * time.Microsecond}
	le.last.Store(last)
	if r[0] < keep {
		le.tokens.Store(0)
		return -1, last, nil
	}
	// The allowance before the expiry: a spender that sees the new expiry
	// finds it (one that sees the old one takes the locked path). A
	// renewal (keep 0) adds to what is left of the live lease, which
	// Redis granted already; a borrowing for a spent or expired lease
	// replaces it (an expired lease's rest is dropped: refusing errs safe).
	tokens := r[0] - keep
	if keep == 0 {
		for {
			old := le.tokens.Load()
			if le.tokens.CompareAndSwap(old, max(old, 0)+tokens) {
				tokens += max(old, 0)
				break
			}
		}
	} else {
		le.tokens.Store(tokens)
	}
	le.granted.Store(tokens)
	le.expires.Store(now.Add(l.opts.LeaseTTL).UnixNano())
	return tokens, last, nil
}

// renewEarly borrows key's next lease in the background, once at a time,
// when this one is busy: four fifths of its allowance spent, or, with a
// fifth of its life left, half of it or eight events. A quiet key borrows
// when it needs to, so that renewals do not take allowance it would not
// spend.
func (l *LeasedLimiter) renewEarly(key string, le *lease, lim auth.Limit, now time.Time) {
	want := int64(max(1, lim.Burst/l.opts.LeaseFraction))
	left := le.tokens.Load()
	late := le.expires.Load()-now.UnixNano() < int64(l.opts.LeaseTTL/5)
	spent := le.granted.Load() - left
	if want < 5 || !(left < want/5 || late && spent >= min(want/2, 8)) || !le.renewing.CompareAndSwap(false, true) {
		return // a lease of a few events is borrowed when spent
	}
	go func() {
		defer le.renewing.Store(false)
		le.mu.Lock()
		defer le.mu.Unlock()
		_, _, _ = l.borrow(context.Background(), key, lim, le, l.opts.Now(), 0) // on failure the next spender finds out
	}()
}

// lease returns key's local lease, making room when the map is full.
func (l *LeasedLimiter) lease(key string, now time.Time) *lease {
	l.mu.RLock()
	le := l.leases[key]
	l.mu.RUnlock()
	if le != nil {
		return le
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	le = l.leases[key]
	if le == nil {
		if len(l.leases) >= l.opts.MaxKeys {
			for k, x := range l.leases {
				if x.mu.TryLock() {
					if now.UnixNano() >= x.expires.Load() {
						delete(l.leases, k)
					}
					x.mu.Unlock()
				}
			}
			if len(l.leases) >= l.opts.MaxKeys {
				clear(l.leases) // unspent leases are dropped: refusing errs safe
			}
		}
		le = &lease{}
		l.leases[key] = le
	}
	return le
}

// resting reports whether Redis failed within RetryInterval.
func (l *LeasedLimiter) resting(now time.Time) bool {
	return l.down.Load() && now.UnixNano() < l.retry.Load()
}

// health logs the changes between Redis answering and not.
func (l *LeasedLimiter) health(ctx context.Context, err error, now time.Time) {
	if err != nil {
		l.retry.Store(now.Add(l.opts.RetryInterval).UnixNano())
	}
	was := l.down.Swap(err != nil)
	switch {
	case err != nil && !was:
		l.opts.Logger.WarnContext(ctx, "redis: leased limiter: Redis does not answer; limits fall back to this instance", slog.Any("error", err))
	case err == nil && was:
		l.opts.Logger.InfoContext(ctx, "redis: leased limiter: Redis answers again; limits are shared")
	}
}
