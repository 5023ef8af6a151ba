// Package testenv finds the PostgreSQL and Redis servers that integration
// tests run against, and isolates each test from every other; it also
// starts stripe-mock (StripeMock).
//
// A server is found, in order, from ADSHARE_TEST_DATABASE_URL /
// ADSHARE_TEST_REDIS_URL; else from a container started with
// testcontainers-go when a Docker daemon answers (one per test binary,
// reaped by testcontainers when the binary exits); else the test is skipped
// with a message saying what to set. When the environment variable CI is
// set, that skip is a failure instead: CI can never pass without the real
// servers.
//
// The Redis suites also run against a Redis Cluster (ForEachRedis), found
// from ADSHARE_TEST_REDIS_CLUSTER_ADDRS only (.ci/redis-cluster.sh starts
// one); under CI its absence is a failure as well.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
)

// Environment variables read by this package.
const (
	DatabaseURLEnv = "ADSHARE_TEST_DATABASE_URL"
	RedisURLEnv    = "ADSHARE_TEST_REDIS_URL"
	ciEnv          = "CI"
)

// schemaPrefix starts every schema this package creates; the creation time
// follows, so that schemas left by a killed run can be swept.
const schemaPrefix = "adshare_test_"

// staleAfter is how old a test schema must be before a later run drops it.
const staleAfter = 2 * time.Hour

type server struct {
	once   sync.Once
	url    string
	reason string // why no server is available
}

var (
	pgServer    server
	redisServer server
	sweepOnce   sync.Once
)

func (s *server) resolve(env string, start func(context.Context) (string, error)) {
	s.once.Do(func() {
		if u := os.Getenv(env); u != "" {
			s.url = u
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := dockerHealthy(ctx); err != nil {
			s.reason = fmt.Sprintf("%s is not set and no Docker daemon answers (%v); set %s to run this test", env, err, env)
			return
		}
		u, err := start(ctx)
		if err != nil {
			s.reason = fmt.Sprintf("%s is not set and starting a container failed: %v", env, err)
			return
		}
		s.url = u
	})
}

func (s *server) require(tb testing.TB) string {
	tb.Helper()
	if s.url != "" {
		return s.url
	}
	skip(tb, s.reason)
	return ""
}

// skip skips tb for reason, or fails it when CI is set.
func skip(tb testing.TB, reason string) {
	tb.Helper()
	if os.Getenv(ciEnv) != "" {
		tb.Fatalf("integration server missing while CI is set: %s", reason)
	}
	tb.Skip(reason)
}

func dockerHealthy(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("docker provider panicked: %v", r)
		}
	}()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return err
	}
	defer p.Close()
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return p.Health(hctx)
}

// PostgresURL returns the URL of the test PostgreSQL server, or skips (fails
// under CI) when there is none. Prefer PostgresSchema, which isolates.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	pgServer.resolve(DatabaseURLEnv, func(ctx context.Context) (string, error) {
		c, err := tcpostgres.Run(ctx, "postgres:15-alpine",
			tcpostgres.WithDatabase("adshare"), tcpostgres.WithUsername("adshare"), tcpostgres.WithPassword("adshare"),
			tcpostgres.BasicWaitStrategies())
		if err != nil {
			return "", err
		}
		return c.ConnectionString(ctx, "sslmode=disable")
	})
	return pgServer.require(tb)
}

// PostgresSchema creates a fresh, empty schema on the test server and
// returns a URL whose connections use it (search_path). The schema is
// dropped when tb ends. Schemas older than two hours left by killed runs are
// dropped on first use.
func PostgresSchema(tb testing.TB) string {
	tb.Helper()
	base := PostgresURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("testenv: connect to %s: %v", DatabaseURLEnv, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	sweepOnce.Do(func() { sweepStaleSchemas(ctx, conn) })

	name := fmt.Sprintf("%s%d_%s", schemaPrefix, time.Now().Unix(), randomHex(6))
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("testenv: create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("testenv: drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
			tb.Errorf("testenv: drop schema %s: %v", name, err)
		}
	})
	return withSearchPath(base, name)
}

func sweepStaleSchemas(ctx context.Context, conn *pgx.Conn) {
	rows, err := conn.Query(ctx, `SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)`, schemaPrefix)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	cutoff := time.Now().Add(-staleAfter).Unix()
	for _, n := range names {
		var created int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(n, schemaPrefix), "%d_", &created); err != nil || created > cutoff {
			continue
		}
		_, _ = conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{n}.Sanitize()+` CASCADE`)
	}
}

// withSearchPath adds a search_path run-time parameter to a postgres:// URL
// or a key=value DSN.
func withSearchPath(base, schema string) string {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return base + " search_path=" + schema
}

// Redis returns the URL of the test Redis server and a key prefix unique to
// tb; every key under the prefix is deleted when tb ends. It skips (fails
// under CI) when there is no server.
func Redis(tb testing.TB) (redisURL, prefix string) {
	tb.Helper()
	redisServer.resolve(RedisURLEnv, func(ctx context.Context) (string, error) {
		c, err := tcredis.Run(ctx, "redis:7-alpine")
		if err != nil {
			return "", err
		}
		return c.ConnectionString(ctx)
	})
	u := redisServer.require(tb)
	prefix = "adshare-test:" + randomHex(8) + ":"
	tb.Cleanup(func() {
		opts, err := goredis.ParseURL(u)
		if err != nil {
			return
		}
		rdb := goredis.NewClient(opts)
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// A page of keys per SCAN and one UNLINK per page: a benchmark
		// can leave hundreds of thousands of keys, and every cleanup
		// walks the whole key space to find its own.
		for cursor := uint64(0); ; {
			keys, next, err := rdb.Scan(ctx, cursor, prefix+"*", 10_000).Result()
			if err != nil {
				return
			}
			if len(keys) > 0 {
				rdb.Unlink(ctx, keys...)
			}
			if cursor = next; cursor == 0 {
				return
			}
		}
	})
	return u, prefix
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
