package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/store/internal/unixtime"
)

// DefaultRevocationHealthCheckInterval is RevocationListOptions'
// HealthCheckInterval when it is zero.
const DefaultRevocationHealthCheckInterval = DefaultHealthCheckInterval

// DefaultRevocationRetryBackoff is RevocationListOptions' RetryBackoff when
// it is zero.
const DefaultRevocationRetryBackoff = DefaultRetryBackoff

// revocationSweepInterval is how often the local copy drops expired
// entries. The sweep runs inside the methods that add to it.
const revocationSweepInterval = time.Minute

// reloadTimeout bounds one reload of the local copy after a
// resubscription.
const reloadTimeout = 30 * time.Second

// RevocationListOptions configures Client.RevocationList: how its
// subscription is kept. While the subscription is down, the list asks
// Redis; a connection that dies without being closed is noticed within two
// health-check intervals, during which this instance can miss revocations.
type RevocationListOptions = SubscriptionOptions

// revokeSessionScript revokes one session: SET key 1 PXAT until, keeping a
// later expiry already set, then PUBLISH the change. An `until` already past
// (by Redis's clock) changes nothing.
//
// KEYS[1]: the session's key. ARGV[1]: until (Unix ms); ARGV[2]: the
// channel; ARGV[3]: the session id. Returns the until in force, or 0.
var revokeSessionScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untilMs = tonumber(ARGV[1])
if untilMs <= now then return 0 end
local cur = redis.call('PEXPIRETIME', KEYS[1])
if cur > untilMs then untilMs = cur end
local u = string.format('%.0f', untilMs)
redis.call('SET', KEYS[1], '1', 'PXAT', u)
redis.call('PUBLISH', ARGV[2], 's ' .. ARGV[3] .. ' ' .. u)
return untilMs
`)

// revokeUserScript raises a user's mark: the key holds `before` (Unix µs)
// and never goes down; its expiry never comes earlier. It then PUBLISHes the
// mark in force. An `until` already past (by Redis's clock) changes nothing.
//
// KEYS[1]: the user's key. ARGV[1]: before (Unix µs); ARGV[2]: until (Unix
// ms); ARGV[3]: the channel; ARGV[4]: the user id. Returns {before, until}
// in force, or {0, 0}.
var revokeUserScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untilMs = tonumber(ARGV[2])
if untilMs <= now then return {0, 0} end
local before = tonumber(ARGV[1])
local stored = redis.call('GET', KEYS[1])
if stored then
  local old = tonumber(stored)
  if old and old > before then before = old end
  local cur = redis.call('PEXPIRETIME', KEYS[1])
  if cur > untilMs then untilMs = cur end
end
local b = string.format('%.0f', before)
local u = string.format('%.0f', untilMs)
redis.call('SET', KEYS[1], b, 'PXAT', u)
redis.call('PUBLISH', ARGV[3], 'u ' .. ARGV[4] .. ' ' .. b .. ' ' .. u)
return {before, untilMs}
`)

// RevocationList is an auth.RevocationList shared through Redis, built so
// that CheckToken, which runs on every request, is a local map lookup.
//
// A revocation is written to Redis (under the client's prefix followed by
// "rev:sid:<session>" or "rev:user:<user>", expiring at `until`) and
// published on the channel "<prefix>rev". Every instance keeps a local copy,
// fed by a goroutine subscribed to that channel; Start subscribes and then
// loads every current entry with SCAN, so nothing published before the
// subscription is missed, and every resubscription after a lost connection
// loads them again.
//
// While the subscription is not healthy (before Start, after Stop, or from
// a lost connection until the list is subscribed again and has reloaded)
// CheckToken asks Redis directly, and fails with an error when Redis does
// not answer, so that callers fail closed. The subscription is kept as
// RevocationListOptions say, like every subscriber of this package.
//
// A second revocation never weakens a first: the later `until` and the
// later `before` win. `until` is kept in whole milliseconds and `before` in
// whole microseconds, both rounded up. It needs Redis 7.0 or later
// (PEXPIRETIME). Create it with Client.RevocationList.
type RevocationList struct {
	rdb       goredis.UniversalClient
	keyPrefix string // <prefix>rev:
	channel   string // <prefix>rev

	// sub feeds the local copy; it is healthy while the copy is complete
	// and kept current.
	sub     *subscription
	reloads atomic.Int64 // completed loads, for tests

	mu        sync.RWMutex
	sessions  map[uuid.UUID]int64 // sid -> until, Unix ms
	users     map[uuid.UUID]userMark
	nextSweep int64 // Unix ms
}

// userMark refuses a user's tokens issued before `before` (Unix µs) until
// `until` (Unix ms).
type userMark struct {
	before int64
	until  int64
}

var _ auth.RevocationList = (*RevocationList)(nil)

// RevocationList returns a revocation list on the client's Redis. It answers
// from Redis until Start; call Start to keep the local copy, and Stop
// before closing the client.
func (c *Client) RevocationList(opts *RevocationListOptions) *RevocationList {
	l := &RevocationList{
		rdb:       c.rdb,
		keyPrefix: c.prefix + "rev:",
		channel:   c.prefix + "rev",
		sessions:  make(map[uuid.UUID]int64),
		users:     make(map[uuid.UUID]userMark),
	}
	l.sub = newSubscription(c.rdb, "redis revocation list", opts, l.channel)
	l.sub.onSubscribed, l.sub.onMessage = l.resync, l.handleMessage
	return l
}

func (l *RevocationList) sessionKey(sid uuid.UUID) string { return l.keyPrefix + "sid:" + sid.String() }
func (l *RevocationList) userKey(user uuid.UUID) string   { return l.keyPrefix + "user:" + user.String() }

// Start subscribes to revocations and loads every current one, then keeps
// the local copy current from a goroutine until Stop. It returns an error,
// leaving the list answering from Redis, when Redis does not answer within
// ctx; or when the list was started or stopped before.
func (l *RevocationList) Start(ctx context.Context) error {
	if err := l.sub.start(ctx); err != nil {
		return fmt.Errorf("redis: revocation list: start: %w", err)
	}
	return nil
}

// Stop ends the subscription and waits, within ctx, for its goroutine to
// end; CheckToken then asks Redis directly. Stop is idempotent and safe
// before Start; a stopped list cannot be started again.
func (l *RevocationList) Stop(ctx context.Context) error {
	if err := l.sub.stop(ctx); err != nil {
		return fmt.Errorf("redis: revocation list: %w", err)
	}
	return nil
}

// Healthy reports whether CheckToken answers from the local copy (true) or
// has to ask Redis (false).
func (l *RevocationList) Healthy() bool { return l.sub.healthy.Load() }

// RevokeSession implements auth.RevocationList. An `until` already past
// changes nothing; one earlier than the session's current `until` does not
// shorten it. It returns an error when Redis does not answer.
func (l *RevocationList) RevokeSession(ctx context.Context, sid uuid.UUID, until time.Time) error {
	untilMs, err := revokeSessionScript.Run(ctx, l.rdb, []string{l.sessionKey(sid)},
		unixtime.CeilMilli(until), l.channel, sid.String()).Int64()
	if err != nil {
		return fmt.Errorf("redis: revoke session: %w", err)
	}
	if untilMs > 0 {
		// Read your own writes without waiting for the published copy.
		l.applySession(sid, untilMs)
	}
	return nil
}

// RevokeUserTokensBefore implements auth.RevocationList. An `until` already
// past changes nothing; otherwise the user's mark keeps the later of the old
// and new `before`, and the later of the old and new `until`. It returns an
// error when Redis does not answer.
func (l *RevocationList) RevokeUserTokensBefore(ctx context.Context, user uuid.UUID, before, until time.Time) error {
	r, err := revokeUserScript.Run(ctx, l.rdb, []string{l.userKey(user)},
		unixtime.CeilMicro(before), unixtime.CeilMilli(until), l.channel, user.String()).Int64Slice()
	if err != nil {
		return fmt.Errorf("redis: revoke user tokens: %w", err)
	}
	if len(r) != 2 {
		return fmt.Errorf("redis: revoke user tokens: unexpected script reply %v", r)
	}
	if r[1] > 0 {
		l.applyUser(user, userMark{before: r[0], until: r[1]})
	}
	return nil
}

// CheckToken implements auth.RevocationList: ErrTokenRevoked when session
// sid is revoked or issuedAt is before the user's mark, else nil. While the
// subscription is healthy it reads only the local copy (and ignores ctx);
// otherwise it asks Redis, and returns another error when Redis does not
// answer.
func (l *RevocationList) CheckToken(ctx context.Context, sid, user uuid.UUID, issuedAt time.Time) error {
	if l.sub.healthy.Load() {
		return l.checkLocal(sid, user, issuedAt)
	}
	return l.checkRedis(ctx, sid, user, issuedAt)
}

// checkLocal answers from the local copy. It reads the clock only when an
// entry is found: most tokens pass, and time.Now costs more than a lookup.
func (l *RevocationList) checkLocal(sid, user uuid.UUID, issuedAt time.Time) error {
	l.mu.RLock()
	until, sok := l.sessions[sid]
	m, uok := l.users[user]
	l.mu.RUnlock()
	if !sok && !uok {
		return nil
	}
	nowMs := time.Now().UnixMilli()
	if sok && nowMs < until {
		return auth.ErrTokenRevoked
	}
	if uok && nowMs < m.until && issuedAt.UnixMicro() < m.before {
		return auth.ErrTokenRevoked
	}
	return nil
}

func (l *RevocationList) checkRedis(ctx context.Context, sid, user uuid.UUID, issuedAt time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, RequestCallTimeout)
	defer cancel()
	pipe := l.rdb.Pipeline()
	exists := pipe.Exists(ctx, l.sessionKey(sid))
	mark := pipe.Get(ctx, l.userKey(user))
	_, _ = pipe.Exec(ctx) // errors are read per command below
	if err := exists.Err(); err != nil {
		return fmt.Errorf("redis: revocation check: %w", err)
	}
	if exists.Val() > 0 {
		return auth.ErrTokenRevoked
	}
	before, err := mark.Int64()
	if errors.Is(err, goredis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("redis: revocation check: %w", err)
	}
	if issuedAt.UnixMicro() < before {
		return auth.ErrTokenRevoked
	}
	return nil
}

func (l *RevocationList) applySession(sid uuid.UUID, until int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybeSweep()
	if cur, ok := l.sessions[sid]; !ok || cur < until {
		l.sessions[sid] = until
	}
}

func (l *RevocationList) applyUser(user uuid.UUID, m userMark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybeSweep()
	if cur, ok := l.users[user]; ok {
		m.before = max(m.before, cur.before)
		m.until = max(m.until, cur.until)
	}
	l.users[user] = m
}

// maybeSweep drops expired entries at most once per
// revocationSweepInterval. The caller holds l.mu for writing.
func (l *RevocationList) maybeSweep() {
	nowMs := time.Now().UnixMilli()
	if nowMs < l.nextSweep {
		return
	}
	l.nextSweep = nowMs + revocationSweepInterval.Milliseconds()
	for k, until := range l.sessions {
		if until <= nowMs {
			delete(l.sessions, k)
		}
	}
	for k, m := range l.users {
		if m.until <= nowMs {
			delete(l.users, k)
		}
	}
}

// resync reloads the local copy after a (re)subscription: whatever was
// published while the list was not subscribed is in Redis.
func (l *RevocationList) resync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	return l.reload(ctx)
}

// handleMessage applies a published revocation, logging one it cannot
// read.
func (l *RevocationList) handleMessage(_, payload string) {
	if err := l.applyMessage(payload); err != nil {
		l.sub.opts.Logger.WarnContext(context.Background(), "redis revocation list: ignoring a malformed message",
			slog.String("payload", payload), slog.String("error", err.Error()))
	}
}

// applyMessage applies a published revocation: "s <sid> <until ms>" or
// "u <user> <before µs> <until ms>".
func (l *RevocationList) applyMessage(payload string) error {
	f := strings.Fields(payload)
	switch {
	case len(f) == 3 && f[0] == "s":
		sid, err := uuid.Parse(f[1])
		if err != nil {
			return err
		}
		until, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return err
		}
		l.applySession(sid, until)
	case len(f) == 4 && f[0] == "u":
		user, err := uuid.Parse(f[1])
		if err != nil {
			return err
		}
		before, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return err
		}
		until, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return err
		}
		l.applyUser(user, userMark{before: before, until: until})
	default:
		return errors.New("unknown message")
	}
	return nil
}

// reload merges every revocation held in Redis into the local copy. Merging
// (rather than replacing) keeps whatever arrived meanwhile; expired entries
// are swept later.
func (l *RevocationList) reload(ctx context.Context) error {
	err := scanKeys(ctx, l.rdb, globEscape(l.keyPrefix)+"*", func(ctx context.Context, c goredis.Cmdable, keys []string) error {
		type entry struct {
			id      uuid.UUID
			user    bool
			before  *goredis.StringCmd
			expires *goredis.Cmd
		}
		entries := make([]entry, 0, len(keys))
		pipe := c.Pipeline()
		for _, k := range keys {
			rest := strings.TrimPrefix(k, l.keyPrefix)
			var e entry
			var idStr string
			switch {
			case strings.HasPrefix(rest, "sid:"):
				idStr = strings.TrimPrefix(rest, "sid:")
			case strings.HasPrefix(rest, "user:"):
				idStr, e.user = strings.TrimPrefix(rest, "user:"), true
			default:
				continue
			}
			id, err := uuid.Parse(idStr)
			if err != nil {
				continue
			}
			e.id = id
			if e.user {
				e.before = pipe.Get(ctx, k)
			}
			e.expires = pipe.Do(ctx, "PEXPIRETIME", k)
			entries = append(entries, e)
		}
		if len(entries) == 0 {
			return nil
		}
		_, _ = pipe.Exec(ctx) // errors are read per command below
		for _, e := range entries {
			until, err := e.expires.Int64()
			if err != nil {
				return err
			}
			if until < 0 { // gone meanwhile (-2), or no expiry (-1): not ours
				continue
			}
			if !e.user {
				l.applySession(e.id, until)
				continue
			}
			before, err := e.before.Int64()
			if errors.Is(err, goredis.Nil) {
				continue
			}
			if err != nil {
				return err
			}
			l.applyUser(e.id, userMark{before: before, until: until})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	l.reloads.Add(1)
	return nil
}

// scanKeys calls fn with batches of the keys matching match, on every
// master of a Redis Cluster or on the one server otherwise.
func scanKeys(ctx context.Context, rdb goredis.UniversalClient, match string, fn func(context.Context, goredis.Cmdable, []string) error) error {
	if cc, ok := rdb.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return scanNode(ctx, c, match, fn)
		})
	}
	return scanNode(ctx, rdb, match, fn)
}

func scanNode(ctx context.Context, c goredis.Cmdable, match string, fn func(context.Context, goredis.Cmdable, []string) error) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return err
		}
		if err := fn(ctx, c, keys); err != nil {
			return err
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// globEscape escapes the glob characters of s for SCAN MATCH.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
