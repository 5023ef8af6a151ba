package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// fleetKeyEnv is a full set of the keys a fleet shares: valid and
// distinct, and not secret (tests only).
func fleetKeyEnv() map[string]string {
	key := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	return map[string]string{
		"ADSHARE_JWT_SEED":          key(1),
		"ADSHARE_REFRESH_KEY":       key(2),
		"ADSHARE_TRACKING_KEYS":     key(3) + "," + key(4),
		"ADSHARE_VIEWER_KEY_SECRET": key(5),
		"ADSHARE_DATA_KEYS":         key(6),
		"ADSHARE_DATA_INDEX_KEY":    key(7),
	}
}

// merge returns the union of envs, later ones winning; an empty value
// removes the variable.
func merge(envs ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, e := range envs {
		maps.Copy(out, e)
	}
	maps.DeleteFunc(out, func(_, v string) bool { return v == "" })
	return out
}

// runCheckCmd runs `server check args…` with env and returns its output.
func runCheckCmd(t testing.TB, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"server", "check"}, args...), func(k string) string { return env[k] }, &out)
	return out.String(), err
}

// migratedURL returns the URL of a fresh schema with every migration
// applied, by the server's own migrate command.
func migratedURL(t testing.TB) string {
	t.Helper()
	url := postgrestest.URL(t)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"server", "migrate", "up"}, func(k string) string {
		return map[string]string{"DATABASE_URL": url}[k]
	}, &out))
	return url
}

// silentListener accepts connections and never answers: a server that
// hangs, which check must give up on within its timeout.
func silentListener(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// wantLine is a line check must print: its verdict, its name, and a part
// of what it says.
type wantLine struct {
	state  checkState
	name   string
	detail string
}

func requireLine(t testing.TB, out string, w wantLine) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == string(w.state) && strings.HasPrefix(strings.TrimLeft(line[len(f[0]):], " "), w.name+" ") && strings.Contains(line, w.detail) {
			return
		}
	}
	t.Fatalf("no line %q %q containing %q in:\n%s", w.state, w.name, w.detail, out)
}

func TestCheckFindsBadSetups(t *testing.T) {
	t.Parallel()
	migrated, unmigrated := migratedURL(t), postgrestest.URL(t)
	redisURL, prefix := testenv.Redis(t)
	hanging := silentListener(t)

	// A database one migration ahead of this build, as after a newer
	// build's expand step.
	ahead := migratedURL(t)
	conn, err := pgx.Connect(context.Background(), ahead)
	require.NoError(t, err)
	_, err = conn.Exec(context.Background(), `INSERT INTO adshare_schema_version (version_id, is_applied) VALUES (9999, true)`)
	require.NoError(t, err)
	require.NoError(t, conn.Close(context.Background()))

	fleet := merge(map[string]string{"DATABASE_URL": migrated, "REDIS_URL": redisURL, "ADSHARE_REDIS_PREFIX": prefix}, fleetKeyEnv())
	for _, tt := range []struct {
		description string
		args        []string
		env         map[string]string
		want        []wantLine
		wantErr     string // empty: check passes
		maxDuration time.Duration
	}{
		{
			description: "a bad duration in the environment",
			env:         merge(fleet, map[string]string{"ADSHARE_SHUTDOWN_TIMEOUT": "soon"}),
			want:        []wantLine{{checkFail, "config", "ADSHARE_SHUTDOWN_TIMEOUT must be a duration"}},
			wantErr:     "check failed: config",
		},
		{
			description: "an unexpected argument",
			args:        []string{"now"},
			env:         fleet,
			want:        []wantLine{{checkFail, "config", `unexpected argument "now"`}},
			wantErr:     "check failed: config",
		},
		{
			description: "a wildcard CORS origin, which only the assembly refuses",
			env:         merge(fleet, map[string]string{"ADSHARE_ALLOWED_ORIGINS": "*"}),
			want:        []wantLine{{checkFail, "config", "exact origin"}},
			wantErr:     "check failed: config",
		},
		{
			description: "a publishable key for Stripe",
			env:         merge(fleet, map[string]string{"ADSHARE_STRIPE_SECRET_KEY": "pk_test_123", "ADSHARE_STRIPE_WEBHOOK_SECRETS": "whsec_1"}),
			want:        []wantLine{{checkFail, "config", "publishable key"}},
			wantErr:     "check failed: config",
		},
		{
			description: "a fleet without its shared keys",
			env:         map[string]string{"DATABASE_URL": migrated, "REDIS_URL": redisURL, "ADSHARE_REDIS_PREFIX": prefix},
			want: []wantLine{
				{checkFail, "ADSHARE_JWT_SEED", "DATABASE_URL makes this a fleet"},
				{checkFail, "ADSHARE_REFRESH_KEY", "openssl rand -base64 32"},
				{checkFail, "ADSHARE_TRACKING_KEYS", "are refused"},
				{checkFail, "ADSHARE_VIEWER_KEY_SECRET", "frequency caps"},
				{checkOK, "postgres", "PostgreSQL 15"},
				{checkOK, "migrations", "applied"},
			},
			wantErr: "check failed: ADSHARE_JWT_SEED, ADSHARE_REFRESH_KEY, ADSHARE_TRACKING_KEYS, ADSHARE_VIEWER_KEY_SECRET",
		},
		{
			description: "a fleet missing one key",
			env:         merge(fleet, map[string]string{"ADSHARE_VIEWER_KEY_SECRET": ""}),
			want:        []wantLine{{checkOK, "ADSHARE_JWT_SEED", "set"}, {checkOK, "ADSHARE_TRACKING_KEYS", "2 keys"}, {checkFail, "ADSHARE_VIEWER_KEY_SECRET", "not set"}},
			wantErr:     "check failed: ADSHARE_VIEWER_KEY_SECRET",
		},
		{
			description: "PostgreSQL refusing connections",
			env:         merge(fleet, map[string]string{"DATABASE_URL": "postgres://adshare:pw-never-shown@127.0.0.1:1/adshare?sslmode=disable"}),
			want:        []wantLine{{checkFail, "postgres", "check DATABASE_URL"}, {checkSkip, "migrations", "PostgreSQL did not answer"}, {checkOK, "redis", "answers"}},
			wantErr:     "check failed: postgres",
		},
		{
			description: "PostgreSQL that never answers, given up on within the timeout",
			args:        []string{"-timeout", "300ms"},
			env:         merge(fleet, map[string]string{"DATABASE_URL": "postgres://adshare@" + hanging + "/adshare?sslmode=disable"}),
			want:        []wantLine{{checkFail, "postgres", "(timeout 300ms)"}},
			wantErr:     "check failed: postgres",
			maxDuration: 5 * time.Second,
		},
		{
			description: "Redis refusing connections",
			env:         merge(fleet, map[string]string{"REDIS_URL": "redis://:pw-never-shown@127.0.0.1:1/0"}),
			want:        []wantLine{{checkFail, "redis", "check REDIS_URL"}, {checkOK, "postgres", ""}},
			wantErr:     "check failed: redis",
		},
		{
			description: "pending migrations",
			env:         merge(fleet, map[string]string{"DATABASE_URL": unmigrated}),
			want:        []wantLine{{checkFail, "migrations", "pending (1, 2, "}, {checkFail, "migrations", "server migrate up"}},
			wantErr:     "check failed: migrations",
		},
		{
			description: "pending migrations allowed: the rollout migrates",
			args:        []string{"-allow-pending"},
			env:         merge(fleet, map[string]string{"DATABASE_URL": unmigrated}),
			want:        []wantLine{{checkWarn, "migrations", "allowed by -allow-pending"}},
		},
		{
			description: "a database ahead of this build",
			env:         merge(fleet, map[string]string{"DATABASE_URL": ahead}),
			want:        []wantLine{{checkWarn, "migrations", "the database has migration 9999"}},
		},
		{
			description: "one instance on the memory store without keys: warned, not failed",
			want: []wantLine{
				{checkWarn, "ADSHARE_JWT_SEED", "memory store only"}, {checkWarn, "ADSHARE_VIEWER_KEY_SECRET", "memory store only"},
				{checkSkip, "postgres", "in-memory store"}, {checkSkip, "redis", ""}, {checkSkip, "migrations", ""},
			},
		},
		{
			description: "one secret given for two purposes",
			env:         merge(fleet, map[string]string{"ADSHARE_VIEWER_KEY_SECRET": fleetKeyEnv()["ADSHARE_REFRESH_KEY"]}),
			want:        []wantLine{{checkWarn, "key reuse", "ADSHARE_REFRESH_KEY and ADSHARE_VIEWER_KEY_SECRET"}},
		},
		{
			description: "a fleet without Redis",
			env:         merge(fleet, map[string]string{"REDIS_URL": ""}),
			want:        []wantLine{{checkWarn, "redis", "logouts"}},
		},
	} {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			out, err := runCheckCmd(t, tt.env, tt.args...)
			for _, w := range tt.want {
				requireLine(t, out, w)
			}
			if tt.wantErr == "" {
				require.NoError(t, err, out)
				require.Contains(t, out, "check passed")
			} else {
				require.Error(t, err, out)
				require.Equal(t, tt.wantErr, err.Error())
				require.NotContains(t, out, "check passed")
			}
			if tt.maxDuration > 0 {
				require.Less(t, time.Since(start), tt.maxDuration)
			}
			require.NotContains(t, out, "pw-never-shown", "no password in the report")
			for _, k := range fleetKeyEnv() {
				require.NotContains(t, out, k, "no key in the report")
			}
		})
	}
}

// A configuration ready for a fleet passes every check, on the test
// PostgreSQL and Redis: exit 0 and every line ok.
// It runs on a single Redis and on a Redis Cluster.
func TestCheckPassesAGoodSetup(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testCheckPassesAGoodSetup)
}

func testCheckPassesAGoodSetup(t *testing.T, r testenv.RedisTarget) {
	env := merge(map[string]string{"DATABASE_URL": migratedURL(t)}, redisEnv(r), fleetKeyEnv())
	out, err := runCheckCmd(t, env)
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Equal(t, "check passed (0 warning(s))", lines[len(lines)-1])
	var names []string
	for _, line := range lines[:len(lines)-1] {
		require.True(t, strings.HasPrefix(line, "ok  "), line)
		names = append(names, strings.Fields(line)[1])
	}
	require.Equal(t, []string{"config", "ADSHARE_JWT_SEED", "ADSHARE_REFRESH_KEY", "ADSHARE_TRACKING_KEYS", "ADSHARE_VIEWER_KEY_SECRET", "postgres", "redis", "migrations"}, names)
}

// probe is the container healthcheck: success on 2xx, an error naming
// the status otherwise or when nothing answers.
func TestProbe(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, nil)
	ctx := context.Background()
	probe := func(args ...string) error {
		return run(ctx, append([]string{"server", "probe"}, args...), func(string) string { return "" }, &bytes.Buffer{})
	}
	require.NoError(t, probe(base+"/readyz"))
	require.NoError(t, probe("-timeout", "1s", base+"/healthz"))
	err := probe(base + "/no-such-path")
	require.ErrorContains(t, err, "answered 404")
	require.ErrorContains(t, probe("http://127.0.0.1:1/readyz"), "probe:")
	require.ErrorContains(t, probe(), "usage")
}
