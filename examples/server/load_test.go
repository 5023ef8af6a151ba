package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/loadtest"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// loadProfile is ADSHARE_LOAD_PROFILE: "ci" (the default: short runs at
// modest rates, for every CI run) or "full" (the capacity search, the
// 10-minute soak and long fault windows; see the README's load section).
func loadProfile() string {
	if p := os.Getenv("ADSHARE_LOAD_PROFILE"); p != "" {
		return p
	}
	return "ci"
}

// loadResults writes a run's JSON, Markdown and HDR files under
// ADSHARE_LOAD_RESULTS (a directory) when set, and logs the Markdown.
func loadResults(t *testing.T, name string, rep *loadtest.Report) {
	t.Helper()
	var md bytes.Buffer
	require.NoError(t, rep.WriteMarkdown(&md))
	t.Logf("%s\n%s", name, md.String())
	dir := os.Getenv("ADSHARE_LOAD_RESULTS")
	if dir == "" {
		return
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for ext, write := range map[string]func(*bytes.Buffer) error{
		".json": func(b *bytes.Buffer) error { return rep.WriteJSON(b) },
		".md":   func(b *bytes.Buffer) error { _, err := b.Write(md.Bytes()); return err },
		".hdr":  func(b *bytes.Buffer) error { return rep.WriteHDR(b) },
	} {
		var b bytes.Buffer
		require.NoError(t, write(&b))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+ext), b.Bytes(), 0o644))
	}
}

// loadServer starts the example server on PostgreSQL and Redis for load:
// client limits out of the way (the fleet comes from many addresses
// through a trusted proxy, which is what is measured), and sets up a
// fleet on it.
func loadServer(t *testing.T, env map[string]string, cfg loadtest.FleetConfig) (string, *loadtest.Fleet) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if env["DATABASE_URL"] == "" {
		env["DATABASE_URL"] = postgrestest.URL(t)
	}
	if env["REDIS_URL"] == "" {
		redisURL, prefix := testenv.Redis(t)
		env["REDIS_URL"], env["ADSHARE_REDIS_PREFIX"] = redisURL, prefix
	}
	for k, v := range map[string]string{"ADSHARE_ACCESS_LOG": "false", "ADSHARE_CLIENT_RATE": "6000000", "ADSHARE_USER_RATE": "6000000",
		"ADSHARE_TRUSTED_PROXIES": "127.0.0.1/32"} {
		if env[k] == "" {
			env[k] = v
		}
	}
	base, _ := startServer(t, env, "-migrate-on-start")
	dbEnv := map[string]string{"DATABASE_URL": env["DATABASE_URL"]}
	cfg.Base = base
	cfg.Promote = func(ctx context.Context, email, role string) error {
		var out bytes.Buffer
		return run(ctx, []string{"server", "users", "set-role", email, role}, func(k string) string { return dbEnv[k] }, &out)
	}
	fleet, err := loadtest.Setup(context.Background(), cfg)
	require.NoError(t, err)
	return base, fleet
}

// TestLoadMix sends the fleet's mix at a fixed rate to the example server
// on PostgreSQL and Redis: every route answers, nothing fails, and no 5xx.
func TestLoadMix(t *testing.T) {
	t.Parallel()
	_, fleet := loadServer(t, nil, loadtest.FleetConfig{Owners: 20, Tokens: 1000})
	rate, d := 150, 5*time.Second
	if loadProfile() == "full" {
		rate, d = 600, 60*time.Second
	}
	rep, err := loadtest.Run(context.Background(), loadtest.Config{Rate: rate, Duration: d, Mix: fleet.Mix(loadtest.Weights{})})
	require.NoError(t, err)
	loadResults(t, "mix", rep)
	require.Empty(t, rep.Failures(0), "every request of the mix succeeds")
	for _, route := range []string{loadtest.RouteFill, loadtest.RouteEvents, loadtest.RouteClick, loadtest.RouteSettings,
		loadtest.RoutePerformance, loadtest.RouteBalance, loadtest.RouteSignIn, loadtest.RouteRefresh, loadtest.RouteTopUp} {
		r := rep.Route(route)
		require.NotNil(t, r, "%s was sent", route)
		require.NotZero(t, r.Requests, route)
	}
	require.InDelta(t, rate*int(d/time.Second), rep.Total.Requests, float64(rate)/10, "open loop: rate times duration")
	require.False(t, strings.Contains(rep.Route(loadtest.RouteFill).Route, "unmatched"))
}
