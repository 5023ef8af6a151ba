package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/loadgen"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// BenchmarkFillHTTP loads GET /ad-space/{userId} on the example server
// (PostgreSQL + Redis, the local engine, a warm cache) with 64 connections
// for 5 s, and a hello-world net/http handler the same way, in the same
// run, and reports both and their ratio. Run it with -benchtime=1x.
func BenchmarkFillHTTP(b *testing.B) {
	dbURL := postgrestest.URL(b)
	redisURL, prefix := testenv.Redis(b)
	env := map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redisURL, "ADSHARE_REDIS_PREFIX": prefix, "ADSHARE_ACCESS_LOG": "false", "ADSHARE_CLIENT_RATE": "100000000"}
	base, _ := startServer(b, env, "-migrate-on-start")
	owner := seedApprovedAd(b, base, env)

	hello := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"hello":"world"}`))
	}))
	defer hello.Close()

	run := func(url string) loadgen.Result {
		res, err := loadgen.Run(context.Background(), loadgen.Config{
			Concurrency: 64, Duration: 5 * time.Second,
			Request: func(worker, i int) (*http.Request, error) { return http.NewRequest(http.MethodGet, url, nil) },
		})
		require.NoError(b, err)
		return res
	}
	for b.Loop() {
		baseline := run(hello.URL)
		fill := run(base + "/ad-space/" + owner + "?device=bench-device&gdpr_applies=false")
		b.Logf("hello-world: %v", baseline)
		b.Logf("fill:        %v", fill)
		b.ReportMetric(baseline.RPS, "hello-req/s")
		b.ReportMetric(fill.RPS, "fill-req/s")
		b.ReportMetric(fill.RPS/baseline.RPS, "fill/hello")
		b.ReportMetric(float64(fill.P99.Microseconds())/1000, "fill-p99-ms")
	}
}

// seedApprovedAd registers an owner, an advertiser with an approved ad and
// a moderator, and waits until a fill of the owner's space shows the ad.
// It returns the owner's id.
func seedApprovedAd(tb testing.TB, base string, env map[string]string) string {
	tb.Helper()
	ctx := context.Background()
	getenv := func(k string) string { return env[k] }
	const pw = `"password":"a long enough passphrase"`
	owner := postJSON(tb, base+"/auth/register", "", `{"email":"owner@example.com",`+pw+`}`, http.StatusCreated)
	postJSON(tb, base+"/auth/register", "", `{"email":"adv@example.com",`+pw+`}`, http.StatusCreated)
	postJSON(tb, base+"/auth/register", "", `{"email":"mod@example.com",`+pw+`}`, http.StatusCreated)
	for email, role := range map[string]string{"adv@example.com": "advertiser", "mod@example.com": "moderator"} {
		var out bytes.Buffer
		require.NoError(tb, run(ctx, []string{"server", "users", "set-role", email, role}, getenv, &out))
	}
	adv := postJSON(tb, base+"/auth/login", "", `{"email":"adv@example.com",`+pw+`}`, http.StatusOK)["access_token"].(string)
	mod := postJSON(tb, base+"/auth/login", "", `{"email":"mod@example.com",`+pw+`}`, http.StatusOK)["access_token"].(string)
	content := postJSON(tb, base+"/ad-space/content", adv, `{"format":"banner","title":"Fresh beans","body":"Roasted weekly.",
		"click_url":"https://shop.example.com/beans","bid":{"model":"cpm","micros":2000000},"total_budget_micros":1000000000,"submit":true}`, http.StatusCreated)
	postJSON(tb, base+"/moderation/content/"+content["id"].(string)+"/approve", mod, "", http.StatusOK)

	ownerID := owner["user"].(map[string]any)["id"].(string)
	require.Eventually(tb, func() bool {
		_, body := get(tb, base+"/ad-space/"+ownerID+"?device=bench-device")
		return bytes.Contains([]byte(body), []byte("Fresh beans"))
	}, 15*time.Second, 100*time.Millisecond, "the local engine picks up the approved ad")
	return ownerID
}
