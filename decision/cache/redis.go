package cache

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/adshare/adshare/decision"
)

// redisTier is the shared tier: per key, a list of JSON ads (the pool), a
// negative marker and a refill lock, all named <prefix>{<key hex>}:<what>
// so that one key's names share a Redis Cluster slot.
//
// Every call is bounded by timeout whatever the client's options (the call
// runs in its own goroutine, abandoned at the deadline), and after a failure
// Redis is skipped for redisBackoff: the decorator then works from memory
// and upstream alone.
type redisTier struct {
	rdb     goredis.UniversalClient
	prefix  string
	timeout time.Duration
	maxAds  int
	stats   *metrics
	log     *slog.Logger

	downUntil atomic.Int64 // wall-clock Unix nanoseconds
}

// storedAd is one pooled ad in Redis.
type storedAd struct {
	// Exp is when the ad stops being usable, in Unix nanoseconds of the
	// writing instance's clock.
	Exp int64       `json:"exp"`
	Ad  decision.Ad `json:"ad"`
}

var errRedisSkipped = errors.New("decision/cache: redis skipped after a recent failure")

func (r *redisTier) name(k key, what string) string {
	return r.prefix + "{" + k.hex() + "}:" + what
}

// do runs f with a ctx bounded by r.timeout and returns at that deadline
// even if f has not. A failure not caused by the caller's ctx is counted,
// logged at warn, and makes the tier skip Redis for redisBackoff. f must
// write only to variables the caller reads after do returns nil.
func (r *redisTier) do(ctx context.Context, op string, f func(context.Context) error) error {
	if time.Now().UnixNano() < r.downUntil.Load() {
		return errRedisSkipped
	}
	rctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f(rctx) }()
	var err error
	select {
	case err = <-done:
	case <-rctx.Done():
		err = rctx.Err()
	}
	if err == nil || ctx.Err() != nil {
		return err
	}
	r.downUntil.Store(time.Now().Add(redisBackoff).UnixNano())
	r.stats.redisErrs.WithLabelValues(op).Inc()
	r.log.WarnContext(ctx, "decision/cache: redis "+op+" failed; serving from memory and upstream",
		slog.String("error", err.Error()), slog.Duration("redis_skipped_for", redisBackoff))
	return err
}

// pop pops up to s.need unexpired ads for every short slot (LPOP, so each
// ad goes to one caller across all instances) and reads the keys' negative
// markers, in one pipeline. Expired ads are dropped and popped past, for at
// most three rounds. On failure the slots keep what they have.
func (r *redisTier) pop(ctx context.Context, slots []slot, now int64) {
	type want struct {
		i         int
		n         int
		pool, neg string
	}
	var wants []want
	for i := range slots {
		if s := &slots[i]; s.short() {
			wants = append(wants, want{i: i, n: s.need, pool: r.name(s.key, "pool"), neg: r.name(s.key, "neg")})
		}
	}
	for round := 0; round < 3 && len(wants) > 0; round++ {
		w := wants
		pops := make([]*goredis.StringSliceCmd, len(w))
		negs := make([]*goredis.StringCmd, len(w))
		err := r.do(ctx, "pop", func(ctx context.Context) error {
			_, _ = r.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for j, x := range w {
					pops[j] = p.LPopCount(ctx, x.pool, x.n)
					if round == 0 {
						negs[j] = p.Get(ctx, x.neg)
					}
				}
				return nil
			})
			for j := range w {
				if err := pops[j].Err(); err != nil && !errors.Is(err, goredis.Nil) {
					return err
				}
				if negs[j] != nil {
					if err := negs[j].Err(); err != nil && !errors.Is(err, goredis.Nil) {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return
		}
		wants = nil
		for j, x := range w {
			s := &slots[x.i]
			if negs[j] != nil {
				if v, err := negs[j].Int64(); err == nil && now < v {
					s.neg, s.negUntil = true, v
				}
			}
			items, _ := pops[j].Result()
			for _, it := range items {
				var e storedAd
				if err := json.Unmarshal([]byte(it), &e); err != nil {
					r.log.WarnContext(ctx, "decision/cache: dropping an undecodable pooled ad", slog.String("error", err.Error()))
					r.stats.evictedDropped.Inc()
					continue
				}
				if e.Exp <= now {
					r.stats.evictedExpired.Inc()
					continue
				}
				s.take(e.Ad, e.Exp)
			}
			if len(items) == x.n && s.short() {
				wants = append(wants, want{i: x.i, n: s.need, pool: x.pool, neg: x.neg})
			}
		}
	}
}

// lock tries to take each flight's refill lock (SET NX PX, with GET so that
// a retried SET that had succeeded still counts as ours). got[i] reports
// whether flights[i]'s lock is now held with token.
func (r *redisTier) lock(ctx context.Context, flights []*flight, token string, ttl time.Duration) ([]bool, error) {
	names := make([]string, len(flights))
	for i, f := range flights {
		names[i] = r.name(f.key, "lock")
	}
	got := make([]bool, len(flights))
	err := r.do(ctx, "lock", func(ctx context.Context) error {
		cmds := make([]*goredis.Cmd, len(names))
		_, _ = r.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, n := range names {
				cmds[i] = p.Do(ctx, "SET", n, token, "NX", "PX", ttl.Milliseconds(), "GET")
			}
			return nil
		})
		for i, c := range cmds {
			old, err := c.Text()
			switch {
			case errors.Is(err, goredis.Nil):
				got[i] = true
			case err != nil:
				return err
			default:
				got[i] = old == token
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return got, nil
}

// held reports, per flight, whether its key's refill lock is still held.
func (r *redisTier) held(ctx context.Context, flights []*flight) ([]bool, error) {
	names := make([]string, len(flights))
	for i, f := range flights {
		names[i] = r.name(f.key, "lock")
	}
	held := make([]bool, len(flights))
	err := r.do(ctx, "poll", func(ctx context.Context) error {
		cmds := make([]*goredis.IntCmd, len(names))
		_, err := r.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, n := range names {
				cmds[i] = p.Exists(ctx, n)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, c := range cmds {
			held[i] = c.Val() > 0
		}
		return nil
	})
	return held, err
}

// storeResult is what store did.
type storeResult int

const (
	storeDone     storeResult = iota // stored (or released), lock released
	storeLockLost                    // the lock was no longer ours: nothing stored
	storeUnknown                     // Redis failed: the ads may or may not be in the pool
)

// storeScript ends a refill atomically, only while the refill still holds
// the key's lock: it releases the lock, sets the negative marker if asked,
// and pushes the ads (RPUSH, PEXPIRE, trimmed to the oldest beyond the
// bound). A done marker makes it idempotent: go-redis may retry a script
// whose reply was lost, and a second push would hand the ads out twice.
//
// KEYS: pool, lock, negative marker, done marker. ARGV: token, pool TTL
// (ms), negative-until ("" for none), negative TTL (ms), max pool length,
// then the ads. Returns the number of ads trimmed, -1 when the lock was
// not ours (nothing done), -2 when an earlier run did it.
var storeScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[4]) == 1 then return -2 end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[4], '1', 'PX', 60000)
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4]) end
if #ARGV < 6 then return 0 end
local n = redis.call('RPUSH', KEYS[1], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local max = tonumber(ARGV[5])
if n > max then
  redis.call('LTRIM', KEYS[1], n - max, -1)
  return n - max
end
return 0
`)

// store ends a refill that holds k's lock: see storeScript.
func (r *redisTier) store(ctx context.Context, k key, token string, ads []decision.Ad, exp, negUntil int64, ttl, negTTL time.Duration) storeResult {
	args := make([]any, 0, 5+len(ads))
	neg := ""
	if negUntil > 0 {
		neg = strconv.FormatInt(negUntil, 10)
	}
	args = append(args, token, ceilMillis(ttl), neg, ceilMillis(negTTL), r.maxAds)
	for i := range ads {
		b, err := json.Marshal(storedAd{Exp: exp, Ad: ads[i]})
		if err != nil {
			r.log.WarnContext(ctx, "decision/cache: cannot encode an ad for Redis; dropping it", slog.String("error", err.Error()))
			r.stats.evictedDropped.Inc()
			continue
		}
		args = append(args, b)
	}
	keys := []string{r.name(k, "pool"), r.name(k, "lock"), r.name(k, "neg"), r.name(k, "done:"+token)}
	var n int64
	err := r.do(ctx, "store", func(ctx context.Context) error {
		var err error
		n, err = storeScript.Run(ctx, r.rdb, keys, args...).Int64()
		return err
	})
	switch {
	case err != nil:
		return storeUnknown
	case n == -1:
		return storeLockLost
	case n > 0:
		r.stats.evictedPoolFull.Add(float64(n))
	}
	return storeDone
}

func ceilMillis(d time.Duration) int64 {
	return max(1, int64((d+time.Millisecond-1)/time.Millisecond))
}
