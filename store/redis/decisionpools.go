package redis

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/cache"
)

// DefaultDecisionPoolsNamespace is the namespace of DecisionPools("").
const DefaultDecisionPoolsNamespace = "decision-cache"

// decisionPopRounds bounds the LPOP rounds of one Pop: a round that comes
// back full of expired ads pops again, past them.
const decisionPopRounds = 3

// decisionDoneTTL is how long a finished refill's token is remembered, so
// that a retried EndRefill changes nothing.
const decisionDoneTTL = time.Minute

// DecisionPools is decision/cache's shared tier in Redis (cache.Tier): the
// pools of prefetched decisions that every instance pops from. Per pool
// key, a list of JSON ads (the pool), a negative mark and a refill lock,
// all named <client prefix><namespace>:{<key hex>}:<what> so that one
// key's names share a Redis Cluster slot.
//
// A pop is an LPOP (atomic: each ad goes to one caller across every
// instance), pipelined with the negative marks' GETs; a lock is a SET NX
// PX; a refill ends in one Lua script that releases the lock, sets the mark
// and pushes the ads (RPUSH, PEXPIRE, LTRIM), idempotent per token so that
// a go-redis retry cannot push the same ads twice. Each ad carries its own
// expiry. JSON turns numbers in Creative.Data into float64.
//
// Give it to cache.Config.Shared, which bounds every call and falls back to
// memory when Redis fails. Enable ContextTimeoutEnabled on the go-redis
// client so that calls the decorator abandons also end early inside
// go-redis.
type DecisionPools struct {
	rdb    goredis.UniversalClient
	prefix string
}

var _ cache.Tier = (*DecisionPools)(nil)

// DecisionPools returns the decision cache's shared tier on this client,
// its keys under the client's prefix and namespace (DefaultDecisionPoolsNamespace
// when empty). Use one namespace per upstream Decider.
func (c *Client) DecisionPools(namespace string) *DecisionPools {
	if namespace == "" {
		namespace = DefaultDecisionPoolsNamespace
	}
	return &DecisionPools{rdb: c.rdb, prefix: c.prefix + namespace + ":"}
}

// name returns the Redis key of k's part what: pool, neg, lock or
// done:<token>.
func (p *DecisionPools) name(k cache.Key, what string) string {
	var buf [128]byte
	b := append(buf[:0], p.prefix...)
	b = append(b, '{')
	b = hex.AppendEncode(b, k[:])
	b = append(b, "}:"...)
	return string(append(b, what...))
}

// storedAd is one pooled ad in Redis.
type storedAd struct {
	// Exp is when the ad stops being usable, in Unix nanoseconds of the
	// writing decorator's clock.
	Exp int64       `json:"exp"`
	Ad  decision.Ad `json:"ad"`
}

// Pop implements cache.Tier: one pipeline of an LPOP per key (asking for
// the ads still wanted) and a GET of its negative mark; a key whose LPOP
// came back full but with expired ads among them pops again, for at most
// three rounds in all.
func (p *DecisionPools) Pop(ctx context.Context, now time.Time, pops []cache.Pop) error {
	type state struct {
		pool, neg string
		want      int
		lpop      *goredis.StringSliceCmd
		get       *goredis.StringCmd
	}
	if len(pops) == 0 {
		return nil
	}
	st := make([]state, len(pops))
	for i := range pops {
		pops[i] = cache.Pop{Key: pops[i].Key, N: pops[i].N}
		st[i] = state{pool: p.name(pops[i].Key, "pool"), neg: p.name(pops[i].Key, "neg"), want: pops[i].N}
	}
	ns := now.UnixNano()
	for round := range decisionPopRounds {
		_, _ = p.rdb.Pipelined(ctx, func(pl goredis.Pipeliner) error {
			for i := range st {
				s := &st[i]
				s.lpop = nil
				if s.want > 0 {
					s.lpop = pl.LPopCount(ctx, s.pool, s.want)
				}
				if round == 0 {
					s.get = pl.Get(ctx, s.neg)
				}
			}
			return nil
		})
		again := false
		for i := range st {
			s, out := &st[i], &pops[i]
			if round == 0 {
				if err := s.get.Err(); err != nil && !errors.Is(err, goredis.Nil) {
					return fmt.Errorf("redis: decision pools pop: %w", err)
				}
				if v, err := s.get.Int64(); err == nil && ns < v {
					out.NegativeUntil = time.Unix(0, v)
				}
			}
			if s.lpop == nil {
				continue
			}
			items, err := s.lpop.Result()
			if err != nil && !errors.Is(err, goredis.Nil) {
				return fmt.Errorf("redis: decision pools pop: %w", err)
			}
			p.take(out, items, ns)
			asked := s.want
			s.want = 0
			if len(items) == asked && len(out.Ads) < out.N {
				s.want, again = out.N-len(out.Ads), true
			}
		}
		if !again {
			break
		}
	}
	return nil
}

// take decodes popped items into out, dropping the expired and the
// unreadable.
func (p *DecisionPools) take(out *cache.Pop, items []string, now int64) {
	for _, it := range items {
		var e storedAd
		if err := json.Unmarshal([]byte(it), &e); err != nil {
			out.Dropped++
			continue
		}
		if e.Exp <= now {
			out.Expired++
			continue
		}
		if out.Ads == nil {
			out.Ads = make([]decision.Ad, 0, out.N)
		}
		out.Ads = append(out.Ads, e.Ad)
		if exp := time.Unix(0, e.Exp); out.Expires.IsZero() || exp.Before(out.Expires) {
			out.Expires = exp
		}
	}
}

// Lock implements cache.Tier: a pipeline of SET NX PX with GET, so that a
// retried SET that had succeeded still counts as ours.
func (p *DecisionPools) Lock(ctx context.Context, token string, ttl time.Duration, keys []cache.Key) ([]bool, error) {
	cmds := make([]*goredis.Cmd, len(keys))
	_, _ = p.rdb.Pipelined(ctx, func(pl goredis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = pl.Do(ctx, "SET", p.name(k, "lock"), token, "NX", "PX", ceilMillis(ttl), "GET")
		}
		return nil
	})
	held := make([]bool, len(keys))
	for i, c := range cmds {
		old, err := c.Text()
		switch {
		case errors.Is(err, goredis.Nil):
			held[i] = true
		case err != nil:
			return nil, fmt.Errorf("redis: decision pools lock: %w", err)
		default:
			held[i] = old == token
		}
	}
	return held, nil
}

// Locked implements cache.Tier: a pipeline of EXISTS.
func (p *DecisionPools) Locked(ctx context.Context, keys []cache.Key) ([]bool, error) {
	cmds := make([]*goredis.IntCmd, len(keys))
	_, err := p.rdb.Pipelined(ctx, func(pl goredis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = pl.Exists(ctx, p.name(k, "lock"))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis: decision pools locked: %w", err)
	}
	held := make([]bool, len(keys))
	for i, c := range cmds {
		held[i] = c.Val() > 0
	}
	return held, nil
}

// endRefillScript ends a refill atomically, only while the refill still
// holds the key's lock: it releases the lock, sets the negative mark if
// asked, and pushes the ads (RPUSH; PEXPIRE unless the pool already lives
// longer; trimmed to the newest max). A done marker makes it idempotent.
//
// KEYS: pool, lock, negative mark, done marker. ARGV: token, pool TTL
// (ms), negative-until ("" for none), negative TTL (ms), max pool length,
// done TTL (ms), then the ads. Returns the number of ads trimmed, -1 when
// the lock was not ours (nothing done), -2 when an earlier run did it.
var endRefillScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[4]) == 1 then return -2 end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[4], '1', 'PX', ARGV[6])
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4]) end
if #ARGV < 7 then return 0 end
local n = redis.call('RPUSH', KEYS[1], unpack(ARGV, 7))
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
local max = tonumber(ARGV[5])
if n > max then
  redis.call('LTRIM', KEYS[1], n - max, -1)
  return n - max
end
return 0
`)

// EndRefill implements cache.Tier in one script call (endRefillScript). A
// token's refill is remembered as done for a minute. Ads that cannot be
// encoded are dropped and counted.
func (p *DecisionPools) EndRefill(ctx context.Context, r cache.Refill) (cache.RefillResult, error) {
	var res cache.RefillResult
	neg, negTTL := "", int64(1)
	if !r.NegativeUntil.IsZero() {
		neg, negTTL = strconv.FormatInt(r.NegativeUntil.UnixNano(), 10), ceilMillis(r.NegativeUntil.Sub(r.Now))
	}
	args := make([]any, 0, 6+len(r.Ads))
	args = append(args, r.Token, ceilMillis(r.Expires.Sub(r.Now)), neg, negTTL, r.Max, ceilMillis(decisionDoneTTL))
	exp := r.Expires.UnixNano()
	for i := range r.Ads {
		b, err := json.Marshal(storedAd{Exp: exp, Ad: r.Ads[i]})
		if err != nil {
			res.Dropped++
			continue
		}
		args = append(args, b)
	}
	keys := []string{p.name(r.Key, "pool"), p.name(r.Key, "lock"), p.name(r.Key, "neg"), p.name(r.Key, "done:"+r.Token)}
	n, err := endRefillScript.Run(ctx, p.rdb, keys, args...).Int64()
	switch {
	case err != nil:
		return cache.RefillResult{}, fmt.Errorf("redis: decision pools end refill: %w", err)
	case n == -1:
		return cache.RefillResult{}, cache.ErrLockLost
	case n > 0:
		res.Trimmed = int(n)
	}
	return res, nil
}

// ceilMillis returns d in whole milliseconds, rounded up, at least 1 (PX
// and PEXPIRE refuse 0).
func ceilMillis(d time.Duration) int64 {
	return max(1, int64((d+time.Millisecond-1)/time.Millisecond))
}
