// These tests are in package redis, not redis_test, so that they can look at
// the revocation list's local copy and count its reloads.
package redis

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/storetest"
)

// openClient returns a client on the test Redis with a prefix unique to tb.
func openClient(tb testing.TB) *Client {
	tb.Helper()
	url, prefix := testenv.Redis(tb)
	return openClientWithPrefix(tb, url, prefix, "")
}

// openTarget returns a client on target r (a single server or a cluster)
// with r's prefix; a non-empty name is set as the name of every connection
// (CLIENT SETNAME), on every node. Stop closes it.
func openTarget(tb testing.TB, r testenv.RedisTarget, name string) *Client {
	tb.Helper()
	opts := r.Options()
	opts.ClientName = name
	c := New(goredis.NewUniversalClient(opts), &Config{Prefix: r.Prefix})
	c.owned = true
	require.NoError(tb, c.Ping(context.Background()))
	tb.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

// openClientWithPrefix returns a client on url with the given prefix; a
// non-empty name is set as the name of every connection (CLIENT SETNAME).
func openClientWithPrefix(tb testing.TB, url, prefix, name string) *Client {
	tb.Helper()
	opts, err := goredis.ParseURL(url)
	require.NoError(tb, err)
	opts.ClientName = name
	c := New(goredis.NewClient(opts), &Config{Prefix: prefix})
	c.owned = true
	require.NoError(tb, c.Ping(context.Background()))
	tb.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

// startedList returns a started revocation list, stopped when tb ends.
func startedList(tb testing.TB, c *Client) *RevocationList {
	tb.Helper()
	l := c.RevocationList(nil)
	require.NoError(tb, l.Start(context.Background()))
	tb.Cleanup(func() { require.NoError(tb, l.Stop(context.Background())) })
	return l
}

// deadClient returns a client on a port where nothing listens, failing fast.
func deadClient(t *testing.T) *Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	return New(rdb, &Config{Prefix: "dead:"})
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, func(t *testing.T, target testenv.RedisTarget) {
		storetest.RunLimiter(t, func(t *testing.T) auth.Limiter { return openTarget(t, testenv.RedisOn(t, target.Name), "").Limiter() })
	})
}

func TestBurstCounter(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, func(t *testing.T, target testenv.RedisTarget) {
		storetest.RunBurstCounter(t, func(t *testing.T) analytics.BurstCounter {
			return openTarget(t, testenv.RedisOn(t, target.Name), "").BurstCounter()
		})
	})
}

// A server that has lost the script (a restart, SCRIPT FLUSH) is sent it
// whole, and every add counts exactly once.
func TestBurstCountsSurviveAScriptFlush(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testBurstCountsSurviveAScriptFlush)
}

func testBurstCountsSurviveAScriptFlush(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c := openTarget(t, target, "")
	counter := c.BurstCounter()
	keys := []analytics.BurstKey{{Window: "w", Member: "a"}, {Window: "w", Member: "b"}, {Window: "x", Member: "a"}}
	for range 3 {
		require.NoError(t, c.rdb.ScriptFlush(ctx).Err())
		require.NoError(t, counter.Add(ctx, keys, time.Minute))
	}
	got, err := counter.Counts(ctx, keys)
	require.NoError(t, err)
	require.Equal(t, []int64{3, 3, 3}, got)
}

// A window's counts take a few keys however many viewers it has, each
// expiring: the key space (which SCAN walks) does not grow with traffic.
func TestBurstWindowIsAFewExpiringKeys(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testBurstWindowIsAFewExpiringKeys)
}

func testBurstWindowIsAFewExpiringKeys(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c := openTarget(t, target, "")
	var keys []analytics.BurstKey
	for i := range 2000 {
		keys = append(keys, analytics.BurstKey{Window: "v:impression:1795801740", Member: "viewer-" + strconv.Itoa(i)})
	}
	require.NoError(t, c.BurstCounter().Add(ctx, keys, time.Minute))
	stored, err := testenv.Keys(ctx, c.rdb, c.prefix+"bursts:*")
	require.NoError(t, err)
	require.Len(t, stored, burstShards, "2,000 viewers spread over the window's hashes")
	for _, k := range stored {
		ttl, err := c.rdb.PTTL(ctx, k).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, 50*time.Second, "%s expires with its window", k)
	}
}

func TestRevocationList(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, func(t *testing.T, target testenv.RedisTarget) {
		storetest.RunRevocationList(t, func(t *testing.T) auth.RevocationList {
			return startedList(t, openTarget(t, testenv.RedisOn(t, target.Name), ""))
		})
	})
}

// TestRevocationListUnstarted runs the contract on the fallback path, where
// every check asks Redis.
func TestRevocationListUnstarted(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, func(t *testing.T, target testenv.RedisTarget) {
		storetest.RunRevocationList(t, func(t *testing.T) auth.RevocationList {
			return openTarget(t, testenv.RedisOn(t, target.Name), "").RevocationList(nil)
		})
	})
}

func TestOneTimeStore(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, func(t *testing.T, target testenv.RedisTarget) {
		storetest.RunOneTimeStore(t, func(t *testing.T) auth.OneTimeStore {
			return openTarget(t, testenv.RedisOn(t, target.Name), "").OneTimeStore()
		})
	})
}

func TestLimiterKeyLivesUnderThePrefixUntilAFullBurst(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testLimiterKeyLivesUnderThePrefixUntilAFullBurst)
}

func testLimiterKeyLivesUnderThePrefixUntilAFullBurst(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c := openTarget(t, target, "")
	l := c.Limiter()
	lim := auth.Limit{Rate: 1, Period: time.Hour, Burst: 3}
	r, err := l.Allow(ctx, "login:alice", lim)
	require.NoError(t, err)
	require.True(t, r.Allowed)

	ttl, err := c.Redis().PTTL(ctx, c.Prefix()+"rl:login:alice").Result()
	require.NoError(t, err)
	require.InDelta(t, r.ResetAfter, ttl, float64(time.Second), "the key expires when the burst is full again")
}

func TestLimiterFailsWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	_, err := deadClient(t).Limiter().Allow(context.Background(), "k", auth.Limit{Rate: 1, Period: time.Second, Burst: 1})
	require.Error(t, err)
}

func TestOneTimeStoreKeysLiveUnderThePrefix(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testOneTimeStoreKeysLiveUnderThePrefix)
}

func testOneTimeStoreKeysLiveUnderThePrefix(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c := openTarget(t, target, "")
	require.NoError(t, c.OneTimeStore().PutOnce(ctx, "state:xyz", []byte("v"), time.Minute))
	n, err := c.Redis().Exists(ctx, c.Prefix()+"once:state:xyz").Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

func TestRevocationListAcrossInstances(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testRevocationListAcrossInstances)
}

func testRevocationListAcrossInstances(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	// Two app instances: two clients, two lists, one prefix.
	a := startedList(t, openTarget(t, target, ""))
	b := startedList(t, openTarget(t, target, ""))
	require.True(t, b.Healthy())

	sid, user := uuid.New(), uuid.New()
	issued := time.Now().Add(-time.Minute)
	require.NoError(t, b.CheckToken(ctx, sid, user, issued))

	require.NoError(t, a.RevokeSession(ctx, sid, time.Now().Add(time.Minute)))
	require.Eventually(t, func() bool {
		return b.checkLocal(sid, user, issued) != nil
	}, 2*time.Second, 5*time.Millisecond, "B's local copy learns of A's revocation")
	require.ErrorIs(t, b.CheckToken(ctx, sid, user, issued), auth.ErrTokenRevoked)

	require.NoError(t, a.RevokeUserTokensBefore(ctx, user, time.Now(), time.Now().Add(time.Minute)))
	require.Eventually(t, func() bool {
		return b.checkLocal(uuid.New(), user, issued) != nil
	}, 2*time.Second, 5*time.Millisecond)
	require.ErrorIs(t, b.CheckToken(ctx, uuid.New(), user, issued), auth.ErrTokenRevoked)
	require.NoError(t, b.CheckToken(ctx, uuid.New(), user, time.Now().Add(time.Second)))

	// An earlier mark published by A leaves B's later one in force.
	require.NoError(t, a.RevokeUserTokensBefore(ctx, user, issued.Add(-time.Hour), time.Now().Add(time.Minute)))
	time.Sleep(50 * time.Millisecond)
	require.ErrorIs(t, b.CheckToken(ctx, uuid.New(), user, issued), auth.ErrTokenRevoked)
}

func TestRevocationListLoadsWhatWasRevokedBeforeStart(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testRevocationListLoadsWhatWasRevokedBeforeStart)
}

func testRevocationListLoadsWhatWasRevokedBeforeStart(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	a := openTarget(t, target, "").RevocationList(nil) // never started
	sid, user := uuid.New(), uuid.New()
	before := time.Now()
	require.NoError(t, a.RevokeSession(ctx, sid, time.Now().Add(time.Minute)))
	require.NoError(t, a.RevokeUserTokensBefore(ctx, user, before, time.Now().Add(time.Minute)))

	b := startedList(t, openTarget(t, target, ""))
	require.True(t, b.Healthy())
	require.ErrorIs(t, b.checkLocal(sid, uuid.New(), before), auth.ErrTokenRevoked)
	require.ErrorIs(t, b.checkLocal(uuid.New(), user, before.Add(-time.Second)), auth.ErrTokenRevoked)
	require.NoError(t, b.checkLocal(uuid.New(), user, before.Add(time.Second)))
}

func TestRevocationListWritesTheDocumentedKeys(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testRevocationListWritesTheDocumentedKeys)
}

func testRevocationListWritesTheDocumentedKeys(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c := openTarget(t, target, "")
	l := c.RevocationList(nil)
	sid, user := uuid.New(), uuid.New()
	until := time.UnixMilli(time.Now().Add(time.Minute).UnixMilli())
	before := time.UnixMicro(time.Now().UnixMicro())
	require.NoError(t, l.RevokeSession(ctx, sid, until))
	require.NoError(t, l.RevokeUserTokensBefore(ctx, user, before, until))

	rdb := c.Redis()
	v, err := rdb.Get(ctx, c.Prefix()+"rev:sid:"+sid.String()).Result()
	require.NoError(t, err)
	require.Equal(t, "1", v)
	exp, err := rdb.Do(ctx, "PEXPIRETIME", c.Prefix()+"rev:sid:"+sid.String()).Int64()
	require.NoError(t, err)
	require.Equal(t, until.UnixMilli(), exp)

	v, err = rdb.Get(ctx, c.Prefix()+"rev:user:"+user.String()).Result()
	require.NoError(t, err)
	require.Equal(t, strconv.FormatInt(before.UnixMicro(), 10), v)
	exp, err = rdb.Do(ctx, "PEXPIRETIME", c.Prefix()+"rev:user:"+user.String()).Int64()
	require.NoError(t, err)
	require.Equal(t, until.UnixMilli(), exp)
}

func TestRevocationListFallsBackToRedisBeforeStartAndAfterStop(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testRevocationListFallsBackToRedisBeforeStartAndAfterStop)
}

func testRevocationListFallsBackToRedisBeforeStartAndAfterStop(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	writer := openTarget(t, target, "").RevocationList(nil)
	l := openTarget(t, target, "").RevocationList(nil)
	require.False(t, l.Healthy())

	sid := uuid.New()
	require.NoError(t, writer.RevokeSession(ctx, sid, time.Now().Add(time.Minute)))
	// l's local copy is empty: only Redis knows.
	require.NoError(t, l.checkLocal(sid, uuid.New(), time.Now()))
	require.ErrorIs(t, l.CheckToken(ctx, sid, uuid.New(), time.Now()), auth.ErrTokenRevoked)

	require.NoError(t, l.Start(ctx))
	require.True(t, l.Healthy())
	require.NoError(t, l.Stop(ctx))
	require.False(t, l.Healthy())

	sid2 := uuid.New()
	require.NoError(t, writer.RevokeSession(ctx, sid2, time.Now().Add(time.Minute)))
	require.ErrorIs(t, l.CheckToken(ctx, sid2, uuid.New(), time.Now()), auth.ErrTokenRevoked)
}

func TestRevocationListFailsClosedWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := deadClient(t).RevocationList(nil)
	err := l.CheckToken(ctx, uuid.New(), uuid.New(), time.Now())
	require.Error(t, err)
	require.NotErrorIs(t, err, auth.ErrTokenRevoked, "cannot answer is not the same as revoked")
	require.Error(t, l.RevokeSession(ctx, uuid.New(), time.Now().Add(time.Minute)))

	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	require.Error(t, l.Start(sctx))
	require.False(t, l.Healthy())
	require.NoError(t, l.Stop(ctx))
}

func TestRevocationListLifecycle(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testRevocationListLifecycle)
}

func testRevocationListLifecycle(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c := openTarget(t, target, "")

	l := c.RevocationList(nil)
	require.NoError(t, l.Stop(ctx), "stop before start")
	require.NoError(t, l.Stop(ctx), "stop twice")
	require.Error(t, l.Start(ctx), "a stopped list does not start")

	l = c.RevocationList(nil)
	require.NoError(t, l.Start(ctx))
	require.Error(t, l.Start(ctx), "start twice")
	require.NoError(t, l.Stop(ctx))
	require.NoError(t, l.Stop(ctx))
}

// TestRevocationListReloadsAfterReconnecting kills the list's subscriber
// connection. A revocation written to Redis without being published (as if
// the message were lost while disconnected) must be in the local copy once
// the list is subscribed again.
func TestRevocationListReloadsAfterReconnecting(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testRevocationListReloadsAfterReconnecting)
}

func testRevocationListReloadsAfterReconnecting(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c, name := openNamedTarget(t, target)
	l := c.RevocationList(&RevocationListOptions{RetryBackoff: 20 * time.Millisecond})
	require.NoError(t, l.Start(ctx))
	t.Cleanup(func() { require.NoError(t, l.Stop(context.Background())) })

	sid := uuid.New()
	require.NoError(t, c.Redis().Set(ctx, c.Prefix()+"rev:sid:"+sid.String(), "1", time.Minute).Err())
	require.NoError(t, l.CheckToken(ctx, sid, uuid.New(), time.Now()), "healthy: the local copy answers, and it was not told")

	reloads := l.reloads.Load()
	killSubscriber(t, c, name)

	require.Eventually(t, func() bool {
		return l.reloads.Load() > reloads && l.Healthy()
	}, 5*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, l.checkLocal(sid, uuid.New(), time.Now()), auth.ErrTokenRevoked)
}

// TestRevocationListReopensAStalledSubscription freezes the subscriber
// connection without closing it (as a dead network path does), so go-redis
// sees nothing wrong. The health-check ping goes unanswered, the list opens a
// new subscription, and its reload brings in the revocation whose message
// was lost.
func TestRevocationListReopensAStalledSubscription(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, prefix := testenv.Redis(t)
	c, proxy := openProxiedClient(t, url, prefix)

	l := c.RevocationList(&RevocationListOptions{HealthCheckInterval: 100 * time.Millisecond, RetryBackoff: 20 * time.Millisecond})
	require.NoError(t, l.Start(ctx))
	t.Cleanup(func() { require.NoError(t, l.Stop(context.Background())) })
	reloads := l.reloads.Load()

	proxy.freezeSubscribers()
	writer := openClientWithPrefix(t, url, prefix, "").RevocationList(nil)
	sid := uuid.New()
	require.NoError(t, writer.RevokeSession(ctx, sid, time.Now().Add(time.Minute)))

	require.Eventually(t, func() bool {
		return l.reloads.Load() > reloads && l.Healthy() && l.checkLocal(sid, uuid.New(), time.Now()) != nil
	}, 5*time.Second, 10*time.Millisecond)
	require.GreaterOrEqual(t, proxy.frozen.Load(), int64(1))
}

// BenchmarkRevocationCheck measures CheckToken on the healthy path, against
// a local copy of 10,000 revoked sessions, for a token that passes (the
// common case). Compare with BenchmarkMapLookupBaseline.
func BenchmarkRevocationCheck(b *testing.B) {
	ctx := context.Background()
	c := openClient(b)
	l := c.RevocationList(nil)
	until := time.Now().Add(time.Hour).UnixMilli()
	for range 10_000 {
		l.applySession(uuid.New(), until)
	}
	require.NoError(b, l.Start(ctx))
	b.Cleanup(func() { _ = l.Stop(context.Background()) })
	require.True(b, l.Healthy())
	sid, user, issued := uuid.New(), uuid.New(), time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.CheckToken(ctx, sid, user, issued); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapLookupBaseline is one lookup in a plain map of 10,000 session
// ids: the floor BenchmarkRevocationCheck is measured against.
func BenchmarkMapLookupBaseline(b *testing.B) {
	m := make(map[uuid.UUID]int64, 10_000)
	for range 10_000 {
		m[uuid.New()] = 1
	}
	sid := uuid.New()
	var hits int
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := m[sid]; ok {
			hits++
		}
	}
	if hits != 0 {
		b.Fatal("unexpected hit")
	}
}
