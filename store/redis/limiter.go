package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/adshare/adshare/auth"
)

// gcraScript is GCRA (the generic cell rate algorithm) for one key, timed by
// Redis's own clock so that every instance shares one. Times are whole
// microseconds, exact in Lua's doubles for the next few centuries.
//
// KEYS[1]: the key, holding its theoretical arrival time (TAT).
// ARGV[1]: the emission interval T; ARGV[2]: the burst B.
// Returns {allowed (0 or 1), remaining, retry after, reset after}.
//
// An allowed event stores the new TAT with a TTL of "reset after" (the key is
// useless once it is back to a full burst); a refused event writes nothing.
// store/memory.Limiter is the same computation in Go.
var gcraScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  tat = tonumber(stored)
  if tat < now then tat = now end
end
local newTat = tat + interval
local allowAt = newTat - interval * burst
if now < allowAt then
  return {0, 0, allowAt - now, tat - now}
end
local reset = newTat - now
redis.call('SET', KEYS[1], string.format('%.0f', newTat), 'PX', string.format('%.0f', math.ceil(reset / 1000)))
return {1, math.floor((interval * burst - reset) / interval), 0, reset}
`)

// Limiter is an auth.Limiter shared by every instance using one Redis: GCRA
// in one Lua script (run with EVALSHA), timed by Redis's TIME. Keys live
// under the client's prefix followed by "rl:", and expire once back to a
// full burst. Create it with Client.Limiter.
type Limiter struct {
	rdb    goredis.UniversalClient
	prefix string
}

var _ auth.Limiter = (*Limiter)(nil)

// Limiter returns the client's rate limiter.
func (c *Client) Limiter() *Limiter {
	return &Limiter{rdb: c.rdb, prefix: c.prefix + "rl:"}
}

// Allow implements auth.Limiter. It returns an error, and no answer, for a
// limit that is not Valid or whose Interval is under one microsecond, and
// when Redis does not answer.
func (l *Limiter) Allow(ctx context.Context, key string, lim auth.Limit) (auth.LimitResult, error) {
	if !lim.Valid() {
		return auth.LimitResult{}, fmt.Errorf("redis: limiter: invalid limit %+v: Rate, Period and Burst must all be positive", lim)
	}
	interval := lim.Interval().Microseconds()
	if interval < 1 {
		return auth.LimitResult{}, fmt.Errorf("redis: limiter: invalid limit %+v: Period/Rate must be at least a microsecond", lim)
	}
	ctx, cancel := context.WithTimeout(ctx, RequestCallTimeout)
	defer cancel()
	r, err := gcraScript.Run(ctx, l.rdb, []string{l.prefix + key}, interval, lim.Burst).Int64Slice()
	if err != nil {
		return auth.LimitResult{}, fmt.Errorf("redis: limiter: %w", err)
	}
	if len(r) != 4 {
		return auth.LimitResult{}, fmt.Errorf("redis: limiter: unexpected script reply %v", r)
	}
	return auth.LimitResult{
		Allowed:    r[0] == 1,
		Remaining:  int(r[1]),
		RetryAfter: time.Duration(r[2]) * time.Microsecond,
		ResetAfter: time.Duration(r[3]) * time.Microsecond,
	}, nil
}
