package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestWorkerRunsTheJobs runs the worker on a fresh PostgreSQL schema
// (migrated on start): it answers health and readiness, serves no API,
// and runs billing's periodic sweep from River's queue, as its metrics
// show.
func TestWorkerRunsTheJobs(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	env := map[string]string{"DATABASE_URL": postgrestest.URL(t), "MIGRATE_ON_START": "true", "ADDR": "127.0.0.1:0",
		"SWEEP_INTERVAL": "1s", "JOB_WORKERS": "2"}
	out := &testenv.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(40 * time.Second):
			t.Error("the worker did not stop within 40s of cancellation")
		}
		if t.Failed() {
			t.Logf("the worker's log:\n%s", out.String())
		}
	})
	var base string
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("the worker exited early: %v\n%s", err, out.String())
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			var line struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				base = line.URL
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond)
	require.Contains(t, out.String(), `"migrations applied"`)

	status, body := get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"status":"ok"}`, body)
	status, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"status":"ok","checks":{"postgres":"ok"}}`, body)
	status, _ = get(t, base+"/auth/login")
	require.Equal(t, http.StatusNotFound, status, "a worker serves no API")

	// River elects a leader, which enqueues the periodic sweep; a worker
	// runs it.
	ran := regexp.MustCompile(`adshare_billing_jobs_total\{kind="[^"]*sweep[^"]*",outcome="ok"\} [1-9]`)
	require.Eventually(t, func() bool {
		_, metrics := get(t, base+"/metrics")
		return ran.MatchString(metrics)
	}, 30*time.Second, 100*time.Millisecond, "the sweep ran")
}

func TestWorkerConfiguration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		description string
		env         map[string]string
		expectErr   string
	}{
		{"no database", map[string]string{}, "DATABASE_URL is required"},
		{"bad workers", map[string]string{"DATABASE_URL": "postgres://x", "JOB_WORKERS": "many"}, "JOB_WORKERS"},
		{"bad interval", map[string]string{"DATABASE_URL": "postgres://x", "SWEEP_INTERVAL": "-1s"}, "SWEEP_INTERVAL"},
		{"bad flag", map[string]string{"DATABASE_URL": "postgres://x", "MIGRATE_ON_START": "perhaps"}, "MIGRATE_ON_START"},
		{"half the keys", map[string]string{"DATABASE_URL": "postgres://x", "ADSHARE_DATA_KEYS": "a2V5"}, "go together"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			t.Parallel()
			_, err := parseConfig(func(k string) string { return tc.env[k] })
			require.ErrorContains(t, err, tc.expectErr)
		})
	}
	c, err := parseConfig(func(k string) string { return map[string]string{"DATABASE_URL": "postgres://x"}[k] })
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8083", c.addr)
	require.False(t, c.migrateOnStart)
}
