package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// startServer runs the program with args and env until the test ends, and
// returns its base URL and output.
func startServer(t testing.TB, env map[string]string, args ...string) (string, *testenv.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &testenv.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"server", "-addr", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("server did not stop within 20s of cancellation")
		}
	})

	var base string
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("server exited early: %v\n%s", err, out.String())
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			var line struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				base = line.URL
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	return base, out
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestQuickStartOnEmbeddedDefaults(t *testing.T) {
	t.Parallel()
	base, out := startServer(t, nil)

	status, body := get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"status":"ok"}`, body)

	status, body = get(t, base+"/openapi.json")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `"openapi": "3.1.0"`)

	status, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"status":"ok","checks":{"store":"ok","drain":"ok"}}`, body)

	status, body = get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `adshare_http_requests_total{method="GET",route="GET /healthz",status="200"} 1`)
	require.Contains(t, body, "go_goroutines")

	require.Contains(t, out.String(), `"msg":"http request"`, "access logs go to stdout as JSON when it is not a terminal")
}

// It runs on a single Redis (REDIS_URL) and on a Redis Cluster
// (REDIS_CLUSTER_ADDRS).
func TestWithPostgresAndRedis(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testWithPostgresAndRedis)
}

// redisEnv is the server's environment for Redis target r.
func redisEnv(r testenv.RedisTarget) map[string]string {
	if r.Cluster() {
		return map[string]string{"REDIS_CLUSTER_ADDRS": strings.Join(r.Addrs, ","), "ADSHARE_REDIS_PREFIX": r.Prefix}
	}
	return map[string]string{"REDIS_URL": r.URL, "ADSHARE_REDIS_PREFIX": r.Prefix}
}

func testWithPostgresAndRedis(t *testing.T, r testenv.RedisTarget) {
	dbURL := postgrestest.URL(t)
	keys := fleetKeyEnv() // personal data sealed, as in production
	env := redisEnv(r)
	env["DATABASE_URL"] = dbURL
	env["ADSHARE_DATA_KEYS"], env["ADSHARE_DATA_INDEX_KEY"] = keys["ADSHARE_DATA_KEYS"], keys["ADSHARE_DATA_INDEX_KEY"]
	base, _ := startServer(t, env, "-migrate-on-start")

	status, body := get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"status":"ok","checks":{"postgres":"ok","redis":"ok","drain":"ok"}}`, body)

	userFlow(t, base)

	// The first admin is made on the command line.
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"server", "users", "set-role", "Flow@Example.com", "admin"},
		func(k string) string { return env[k] }, &out))
	require.Contains(t, out.String(), "flow@example.com is now admin")
	tokens := postJSON(t, base+"/auth/login", "", `{"email":"flow@example.com","password":"a long enough passphrase"}`, http.StatusOK)
	status, body = getWithToken(t, base+"/audit-events?limit=5", tokens["access_token"].(string))
	require.Equal(t, http.StatusOK, status, body)
	privacyFlow(t, base)
}

func TestUserFlowOnEmbeddedDefaults(t *testing.T) {
	t.Parallel()
	base, out := startServer(t, nil)
	userFlow(t, base)
	require.Contains(t, out.String(), "no ADSHARE_JWT_SEED", "an ephemeral key is announced")
	privacyFlow(t, base)
}

// privacyFlow exports a new user's data, downloads it once, and erases
// the user: the server wires both on every backend.
func privacyFlow(t *testing.T, base string) {
	t.Helper()
	postJSON(t, base+"/auth/register", "", `{"email":"leaver@example.com","password":"a long enough passphrase"}`, http.StatusCreated)
	login := postJSON(t, base+"/auth/login", "", `{"email":"leaver@example.com","password":"a long enough passphrase"}`, http.StatusOK)
	access := login["access_token"].(string)
	started := sendJSON(t, http.MethodGet, base+"/users/me/export", access, "", nil, http.StatusAccepted)
	var download string
	require.Eventually(t, func() bool {
		status, body := getWithToken(t, base+started["status_url"].(string), access)
		if status != http.StatusOK {
			return false
		}
		var e map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &e))
		download, _ = e["download_url"].(string)
		return true
	}, 30*time.Second, 50*time.Millisecond)
	status, body := get(t, base+download)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "leaver@example.com")
	status, body = get(t, base+download)
	require.Equal(t, http.StatusGone, status, body)

	sendJSON(t, http.MethodDelete, base+"/users/me", access, `{"password":"a long enough passphrase"}`, nil, http.StatusAccepted)
	require.Eventually(t, func() bool {
		status, _ := getWithToken(t, base+"/users/me", access)
		return status == http.StatusUnauthorized
	}, 30*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool { // the account goes in the job's last step
		status, _ := sendStatus(t, http.MethodPost, base+"/auth/login", `{"email":"leaver@example.com","password":"a long enough passphrase"}`)
		return status == http.StatusUnauthorized
	}, 30*time.Second, 100*time.Millisecond)
}

// userFlow is the quick start's promise: register, log in, refresh, log out.
func userFlow(t *testing.T, base string) {
	t.Helper()
	reg := postJSON(t, base+"/auth/register", "", `{"email":"Flow@Example.com","password":"a long enough passphrase","display_name":"Flo"}`, http.StatusCreated)
	require.Equal(t, "Bearer", reg["token_type"])
	login := postJSON(t, base+"/auth/login", "", `{"email":"flow@example.com","password":"a long enough passphrase"}`, http.StatusOK)
	access := login["access_token"].(string)

	status, body := getWithToken(t, base+"/users/me", access)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `"display_name":"Flo"`)

	refreshed := postJSON(t, base+"/auth/refresh", "", `{"refresh_token":"`+login["refresh_token"].(string)+`"}`, http.StatusOK)
	newAccess := refreshed["access_token"].(string)
	postJSON(t, base+"/auth/logout", newAccess, ``, http.StatusNoContent)

	status, body = getWithToken(t, base+"/users/me", newAccess)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, body, "token_revoked")
	postJSON(t, base+"/auth/refresh", "", `{"refresh_token":"`+refreshed["refresh_token"].(string)+`"}`, http.StatusUnauthorized)
}

// sendStatus sends a JSON body and returns the answer's status and body.
func sendStatus(t testing.TB, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// postJSON posts body (none when empty) and decodes the JSON answer, which
// must have the wanted status.
func postJSON(t testing.TB, url, token, body string, want int) map[string]any {
	t.Helper()
	return sendJSON(t, http.MethodPost, url, token, body, nil, want)
}

// sendJSON sends body (none when empty) with the headers given and decodes
// the JSON answer, which must have the wanted status.
func sendJSON(t testing.TB, method, url, token, body string, header http.Header, want int) map[string]any {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, url, raw)
	out := map[string]any{}
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out))
	}
	return out
}

func getWithToken(t testing.TB, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestMigrateSubcommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := map[string]string{"DATABASE_URL": postgrestest.URL(t)}
	getenv := func(k string) string { return env[k] }
	migrate := func(action string) string {
		var out bytes.Buffer
		require.NoError(t, run(ctx, []string{"server", "migrate", action}, getenv, &out))
		return out.String()
	}

	// The versions, as status lists them (the SQL files and River's
	// tables, migration 6, which is Go code).
	status := migrate("status")
	var versions []string
	for _, line := range strings.Split(status, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				require.Contains(t, line, "pending")
				versions = append(versions, strconv.Itoa(v))
			}
		}
	}
	require.NotEmpty(t, versions)
	require.Contains(t, migrate("up"), fmt.Sprintf("applied %d migration(s) [%s]", len(versions), strings.Join(versions, " ")))
	require.NotContains(t, migrate("status"), "pending")
	require.Contains(t, migrate("up"), "applied 0 migration(s)")
	for i := len(versions) - 1; i >= 0; i-- {
		require.Contains(t, migrate("down"), "rolled back migration "+versions[i]+"\n")
		require.Contains(t, migrate("status"), "pending")
	}
	require.Contains(t, migrate("down"), "nothing to roll back")
}

func TestBadInvocations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	noenv := func(string) string { return "" }
	for _, tt := range []struct {
		description string
		args        []string
		env         map[string]string
		wantErr     string
	}{
		{"unknown flag", []string{"server", "-nope"}, nil, "flag provided but not defined"},
		{"unknown subcommand", []string{"server", "serve-forever"}, nil, "unexpected argument"},
		{"bad log level", []string{"server", "-log-level", "loud"}, nil, "log level"},
		{"bad log format", []string{"server", "-log-format", "xml"}, nil, "log format"},
		{"bad boolean in env", []string{"server"}, map[string]string{"ADSHARE_MIGRATE_ON_START": "maybe"}, "ADSHARE_MIGRATE_ON_START"},
		{"migrate without a database", []string{"server", "migrate", "up"}, nil, "DATABASE_URL"},
		{"migrate with no action", []string{"server", "migrate"}, map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/x"}, "usage"},
		{"wildcard CORS origin", []string{"server", "-addr", "127.0.0.1:0", "-allowed-origins", "*"}, nil, "exact origin"},
		{"address in use or invalid", []string{"server", "-addr", "127.0.0.1:99999"}, nil, "invalid port"},
		{"users without a database", []string{"server", "users", "set-role", "a@example.com", "admin"}, nil, "DATABASE_URL"},
		{"users with a bad role", []string{"server", "users", "set-role", "a@example.com", "root"}, map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/x"}, "role"},
		{"a JWT seed of the wrong size", []string{"server", "-jwt-seed", "c2hvcnQ="}, nil, "jwt-seed"},
		{"a client rate that is not a number", []string{"server", "-client-rate", "lots"}, nil, "client-rate must be a number of requests per minute"},
		{"a zero user rate", []string{"server"}, map[string]string{"ADSHARE_USER_RATE": "0"}, "user-rate must be a number"},
		{"a route rate without a value", []string{"server", "-route-rates", "auth"}, nil, `"auth": want class=requests per minute`},
		{"a route rate for an unknown class", []string{"server", "-route-rates", "admin=10"}, nil, `unknown route class "admin"`},
		{"a route class given twice", []string{"server", "-route-rates", "auth=10, auth=20"}, nil, "auth is given twice"},
		{"a negative route rate", []string{"server"}, map[string]string{"ADSHARE_ROUTE_RATES": "tracking=-5"}, "route-rates: tracking must be a number"},
		{"a bad trusted proxy", []string{"server", "-trusted-proxies", "10.0.0.0/33"}, nil, "trusted proxy"},
		{"a Stripe key without webhook secrets", []string{"server", "-addr", "127.0.0.1:0"}, map[string]string{"ADSHARE_STRIPE_SECRET_KEY": "sk_test_123"}, "stripe-webhook-secrets is required"},
		{"webhook secrets without a key", []string{"server", "-addr", "127.0.0.1:0", "-stripe-webhook-secrets", "whsec_1"}, nil, "need stripe-secret-key"},
		{"a publishable key", []string{"server", "-addr", "127.0.0.1:0"}, map[string]string{"ADSHARE_STRIPE_SECRET_KEY": "pk_test_123", "ADSHARE_STRIPE_WEBHOOK_SECRETS": "whsec_1"}, "publishable key"},
		{"an API key as webhook secret", []string{"server", "-addr", "127.0.0.1:0"}, map[string]string{"ADSHARE_STRIPE_SECRET_KEY": "sk_test_123", "ADSHARE_STRIPE_WEBHOOK_SECRETS": "sk_test_123"}, "signing secrets"},
		{"Stripe on PostgreSQL without data keys", []string{"server", "-addr", "127.0.0.1:0", "-database-url", "postgres://u@127.0.0.1:1/db"},
			map[string]string{"ADSHARE_STRIPE_SECRET_KEY": "sk_test_123", "ADSHARE_STRIPE_WEBHOOK_SECRETS": "whsec_1"}, "data-keys and data-index-key are required"},
		{"data keys without an index key", []string{"server", "-addr", "127.0.0.1:0"},
			map[string]string{"ADSHARE_DATA_KEYS": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}, "go together"},
		{"a data key that is not a key", []string{"server", "-addr", "127.0.0.1:0", "-database-url", "postgres://u@127.0.0.1:1/db?connect_timeout=2"},
			map[string]string{"ADSHARE_DATA_KEYS": "c2hvcnQ=", "ADSHARE_DATA_INDEX_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}, "data-keys"},
		{"a Redis URL and a cluster", []string{"server", "-redis-url", "redis://127.0.0.1:6379/0", "-redis-cluster", "127.0.0.1:7001"}, nil, "exclusive"},
		{"a cluster password without a cluster", []string{"server"}, map[string]string{"REDIS_CLUSTER_PASSWORD": "pw"}, "needs redis-cluster"},
		{"a hash tag in the prefix on a cluster", []string{"server", "-redis-cluster", "127.0.0.1:7001", "-redis-prefix", "app{1}:"}, nil, "one slot"},
		{"unreachable Redis Cluster", []string{"server", "-addr", "127.0.0.1:0", "-redis-cluster", "127.0.0.1:1"}, nil, "redis"},
		{"unreachable database", []string{"server", "-database-url", "postgres://u:pw@127.0.0.1:1/db?connect_timeout=2"}, nil, "postgres"},
	} {
		t.Run(tt.description, func(t *testing.T) {
			getenv := noenv
			if tt.env != nil {
				getenv = func(k string) string { return tt.env[k] }
			}
			err := run(ctx, tt.args, getenv, io.Discard)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantErr)
			require.NotContains(t, err.Error(), "sk_test_123", "no secret in an error")
		})
	}
}

// With -kevel-fake the server fills spaces from a (fake) Kevel network
// through the caching decorator, and an accepted impression fires Kevel's
// impression pixel.
func TestKevelPath(t *testing.T) {
	t.Parallel()
	base, out := startServer(t, nil, "-kevel-fake")
	owner := postJSON(t, base+"/auth/register", "", `{"email":"owner@example.com","password":"a long enough passphrase"}`, http.StatusCreated)
	ownerID := owner["user"].(map[string]any)["id"].(string)

	status, body := get(t, base+"/ad-space/"+ownerID+"?device=d1&gdpr_applies=false")
	require.Equal(t, http.StatusOK, status, body)
	var fill struct {
		Ads []struct {
			Title    string `json:"title"`
			Tracking struct {
				Token string `json:"token"`
			} `json:"tracking"`
		} `json:"ads"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &fill))
	require.NotEmpty(t, fill.Ads, "the fake Kevel network fills the space: %s", body)
	require.Contains(t, []string{"Ride further", "Brew better"}, fill.Ads[0].Title)
	require.NotContains(t, body, "adzerk", "Kevel's pixels never reach the app")
	require.NotContains(t, body, "/i.gif")

	time.Sleep(time.Second) // an impression is viewable after a second on screen
	req, err := http.NewRequest(http.MethodPost, base+"/events", strings.NewReader(`{"type":"impression","token":"`+fill.Ads[0].Tracking.Token+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "AdshareApp/1.0 (Android 15)") // Go's own agent counts as a bot
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var res map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&res))
	require.Equal(t, "accepted", res["status"])
	require.Equal(t, true, res["billable"], "%v", res)
	require.Contains(t, out.String(), `"decisions: Kevel, cached"`)
	// Kevel's impression pixel was fired once, after the event was stored.
	require.Eventually(t, func() bool {
		_, metrics := get(t, base+"/metrics")
		return strings.Contains(metrics, `adshare_kevel_pixels_total{kind="impression",result="sent"} 1`)
	}, 5*time.Second, 20*time.Millisecond)
}

// -route-rates gives a route class its own per-address budget, reported
// in RateLimit-Policy and enforced apart from the rest of the API.
func TestRouteRates(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, nil, "-route-rates", "auth=10", "-client-rate", "600", "-access-log=false")
	first, err := http.Get(base + "/auth/providers")
	require.NoError(t, err)
	first.Body.Close()
	require.Equal(t, http.StatusOK, first.StatusCode)
	require.Equal(t, `"auth";q=10;w=60`, first.Header.Get("RateLimit-Policy"))

	// A burst is a fifth of the minute's budget: two requests, then 429,
	// while the rest of the API still answers.
	status := first.StatusCode
	for i := 0; i < 5 && status != http.StatusTooManyRequests; i++ {
		resp, err := http.Get(base + "/auth/providers")
		require.NoError(t, err)
		resp.Body.Close()
		status = resp.StatusCode
	}
	require.Equal(t, http.StatusTooManyRequests, status, "the auth class's budget runs out")
	other, err := http.Get(base + "/openapi.json")
	require.NoError(t, err)
	other.Body.Close()
	require.Equal(t, http.StatusOK, other.StatusCode, "other routes keep their own budget")
	require.Equal(t, `"ip";q=600;w=60`, other.Header.Get("RateLimit-Policy"))
}
