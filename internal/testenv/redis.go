package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// RedisClusterAddrsEnv names the environment variable holding the
// comma-separated addresses (host:port) of a Redis Cluster's nodes, as
// .ci/redis-cluster.sh prints them. A cluster has no separate databases:
// tests are isolated by key prefix alone.
const RedisClusterAddrsEnv = "ADSHARE_TEST_REDIS_CLUSTER_ADDRS"

// Names of the Redis deployments a RedisTarget can be.
const (
	RedisSingle  = "single"
	RedisCluster = "cluster"
)

// RedisTarget is one Redis deployment a test runs against, with a key
// prefix unique to the test: every key under Prefix is deleted when the
// test ends.
type RedisTarget struct {
	// Name is RedisSingle or RedisCluster; it names the subtest.
	Name string
	// URL is the single server's URL (RedisSingle only).
	URL string
	// Addrs are the cluster's seed nodes (RedisCluster only).
	Addrs []string
	// Prefix is unique to the test and holds no hash tag, so that the
	// code's own hash tags decide the slots.
	Prefix string
}

// Cluster reports whether the target is a Redis Cluster.
func (r RedisTarget) Cluster() bool { return r.Name == RedisCluster }

// Options returns go-redis options for the target; NewUniversalClient makes
// a *goredis.Client of them for a single server and a
// *goredis.ClusterClient for a cluster.
func (r RedisTarget) Options() *goredis.UniversalOptions {
	if r.Cluster() {
		return &goredis.UniversalOptions{Addrs: r.Addrs, IsClusterMode: true}
	}
	opts, err := goredis.ParseURL(r.URL)
	if err != nil {
		panic(fmt.Sprintf("testenv: %s does not parse: %v", RedisURLEnv, err))
	}
	return &goredis.UniversalOptions{
		Addrs: []string{opts.Addr}, DB: opts.DB, Username: opts.Username, Password: opts.Password,
		TLSConfig: opts.TLSConfig, Protocol: opts.Protocol,
	}
}

// NewClient returns a new go-redis client on the target, closed when tb
// ends. edit, when not nil, changes the options first (a client name, a
// timeout).
func (r RedisTarget) NewClient(tb testing.TB, edit func(*goredis.UniversalOptions)) goredis.UniversalClient {
	tb.Helper()
	opts := r.Options()
	if edit != nil {
		edit(opts)
	}
	rdb := goredis.NewUniversalClient(opts)
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// ForEachRedis runs fn in two parallel subtests, "single" against the
// single test server (Redis) and "cluster" against the test Redis Cluster
// (RedisClusterAddrsEnv), each with its own prefix. fn must not call
// t.Parallel. Like Redis, a missing server skips the subtest, and fails it
// when CI is set.
func ForEachRedis(t *testing.T, fn func(t *testing.T, r RedisTarget)) {
	t.Helper()
	for _, name := range []string{RedisSingle, RedisCluster} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, RedisOn(t, name))
		})
	}
}

// RedisOn returns a target named name (RedisSingle or RedisCluster) with a
// prefix unique to tb, or skips (fails under CI) when that deployment is
// not available.
func RedisOn(tb testing.TB, name string) RedisTarget {
	tb.Helper()
	switch name {
	case RedisSingle:
		u, prefix := Redis(tb)
		return RedisTarget{Name: RedisSingle, URL: u, Prefix: prefix}
	case RedisCluster:
		addrs, prefix := RedisClusterAddrs(tb)
		return RedisTarget{Name: RedisCluster, Addrs: addrs, Prefix: prefix}
	}
	tb.Fatalf("testenv: no Redis deployment named %q", name)
	return RedisTarget{}
}

// RedisClusterAddrs returns the test Redis Cluster's node addresses (from
// RedisClusterAddrsEnv) and a key prefix unique to tb; every key under the
// prefix is deleted, on every master, when tb ends. It skips (fails under
// CI) when the variable is not set: there is no container fallback, start
// one with .ci/redis-cluster.sh.
func RedisClusterAddrs(tb testing.TB) (addrs []string, prefix string) {
	tb.Helper()
	v := os.Getenv(RedisClusterAddrsEnv)
	for _, a := range strings.Split(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		skip(tb, fmt.Sprintf("%s is not set; start a cluster with .ci/redis-cluster.sh and set %s to what it prints", RedisClusterAddrsEnv, RedisClusterAddrsEnv))
		return nil, ""
	}
	prefix = "adshare-test:" + randomHex(8) + ":"
	tb.Cleanup(func() {
		rdb := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = rdb.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			deletePrefix(ctx, c, prefix)
			return nil
		})
	})
	return addrs, prefix
}

// deletePrefix deletes every key under prefix on one server: a page of
// keys per SCAN and one UNLINK per key (keys of one page may sit in
// different slots of a cluster node, and a multi-key UNLINK must not
// cross slots).
func deletePrefix(ctx context.Context, rdb *goredis.Client, prefix string) {
	for cursor := uint64(0); ; {
		keys, next, err := rdb.Scan(ctx, cursor, prefix+"*", 10_000).Result()
		if err != nil {
			return
		}
		if len(keys) > 0 {
			_, _ = rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for _, k := range keys {
					p.Unlink(ctx, k)
				}
				return nil
			})
		}
		if cursor = next; cursor == 0 {
			return
		}
	}
}

// Keys returns every key matching pattern, on every master of a cluster
// or on the one server otherwise (KEYS on a cluster client asks one random
// node). For tests only: KEYS walks the whole key space.
func Keys(ctx context.Context, rdb goredis.UniversalClient, pattern string) ([]string, error) {
	cc, ok := rdb.(*goredis.ClusterClient)
	if !ok {
		return rdb.Keys(ctx, pattern).Result()
	}
	var (
		mu  sync.Mutex
		out []string
	)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		keys, err := c.Keys(ctx, pattern).Result()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		out = append(out, keys...)
		return nil
	})
	return out, err
}
