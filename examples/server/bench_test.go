package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/loadgen"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// BenchmarkFillHTTP loads GET /ad-space/{userId} on the example server
// (PostgreSQL + Redis, the leased API-wide rate limits on, the local
// engine, warm caches) with 64 connections for 5 s, each request a fill by
// another viewer, and a hello-world net/http handler the same way, in the
// same run, and reports both and their ratio: for a space whose fill
// chooses among ten funded ads, and for one that no ad may fill (its
// owner allows only a category none has), which runs the whole decision
// to an empty answer. Run it with -benchtime=1x.
func BenchmarkFillHTTP(b *testing.B) {
	dbURL := postgrestest.URL(b)
	redisURL, prefix := testenv.Redis(b)
	env := map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redisURL, "ADSHARE_REDIS_PREFIX": prefix, "ADSHARE_ACCESS_LOG": "false",
		"ADSHARE_CLIENT_RATE": "60000000", "ADSHARE_TRUSTED_PROXIES": "127.0.0.1/32"}
	base, _ := startServer(b, env, "-migrate-on-start")
	owner, empty := seedFundedAds(b, base, env, 10)

	hello := helloServer(b)

	run := func(url string) loadgen.Result {
		res, err := loadgen.Run(context.Background(), loadgen.Config{
			Concurrency: 64, Duration: 5 * time.Second,
			Request: func(worker, i int) (*http.Request, error) {
				return http.NewRequest(http.MethodGet, url+"&device=w"+strconv.Itoa(worker)+"-"+strconv.Itoa(i), nil)
			},
		})
		require.NoError(b, err)
		return res
	}
	for b.Loop() {
		baseline := run(hello.URL + "/?gdpr_applies=false")
		fill := run(base + "/ad-space/" + owner + "?gdpr_applies=false")
		none := run(base + "/ad-space/" + empty + "?gdpr_applies=false")
		b.Logf("hello-world: %v", baseline)
		b.Logf("fill:        %v", fill)
		b.Logf("empty fill:  %v", none)
		b.ReportMetric(baseline.RPS, "hello-req/s")
		b.ReportMetric(fill.RPS, "fill-req/s")
		b.ReportMetric(fill.RPS/baseline.RPS, "fill/hello")
		b.ReportMetric(none.RPS/baseline.RPS, "empty/hello")
		b.ReportMetric(float64(fill.P99.Microseconds())/1000, "fill-p99-ms")
		b.ReportMetric(float64(none.P99.Microseconds())/1000, "empty-p99-ms")
	}
}

// seedFundedAds registers an owner, n advertisers with a confirmed top-up
// and an approved ad each, a moderator, an admin, and a second owner whose
// settings let no ad in (only a category no ad has); it waits until fills
// of the first owner's space show ads, and returns both owners' ids. The
// server must trust 127.0.0.1 as a proxy: each registration comes from its
// own client address, as a fleet's do, under the per-address sign-up limit.
func seedFundedAds(tb testing.TB, base string, env map[string]string, n int) (owner, empty string) {
	tb.Helper()
	ctx := context.Background()
	getenv := func(k string) string { return env[k] }
	const pw = `"password":"a long enough passphrase"`
	client := 0
	from := func() http.Header {
		client++
		return http.Header{"X-Forwarded-For": {fmt.Sprintf("10.0.%d.%d", client/250, client%250+1)}}
	}
	register := func(email string) map[string]any {
		return sendJSON(tb, http.MethodPost, base+"/auth/register", "", `{"email":"`+email+`",`+pw+`}`, from(), http.StatusCreated)
	}
	login := func(email string) string {
		return sendJSON(tb, http.MethodPost, base+"/auth/login", "", `{"email":"`+email+`",`+pw+`}`, from(), http.StatusOK)["access_token"].(string)
	}
	setRole := func(email, role string) {
		var out bytes.Buffer
		require.NoError(tb, run(ctx, []string{"server", "users", "set-role", email, role}, getenv, &out))
	}
	owner = register("owner@example.com")["user"].(map[string]any)["id"].(string)
	empty = register("empty@example.com")["user"].(map[string]any)["id"].(string)
	for _, u := range []struct{ email, role string }{{"mod@example.com", "moderator"}, {"admin@example.com", "admin"}} {
		register(u.email)
		setRole(u.email, u.role)
	}
	for i := range n {
		email := fmt.Sprintf("adv%d@example.com", i)
		register(email)
		setRole(email, "advertiser")
	}
	time.Sleep(1100 * time.Millisecond) // a token issued in the second of a role change is refused
	mod, admin := login("mod@example.com"), login("admin@example.com")
	emptyOwner := login("empty@example.com")
	status, raw := getWithToken(tb, base+"/ad-space/settings", emptyOwner)
	require.Equal(tb, http.StatusOK, status, raw)
	var space struct{ Settings map[string]any }
	require.NoError(tb, json.Unmarshal([]byte(raw), &space))
	settings := space.Settings
	settings["allowed_categories"] = []string{"no-such-category"}
	put, err := json.Marshal(settings)
	require.NoError(tb, err)
	sendJSON(tb, http.MethodPut, base+"/ad-space/settings", emptyOwner, string(put), nil, http.StatusOK)
	for i := range n {
		adv := login(fmt.Sprintf("adv%d@example.com", i))
		topUp := sendJSON(tb, http.MethodPost, base+"/billing/topups", adv, `{"amount":100000,"currency":"usd"}`,
			withHeader(from(), "Idempotency-Key", "bench-"+strconv.Itoa(i)), http.StatusCreated)
		postJSON(tb, base+"/billing/topups/"+topUp["id"].(string)+"/confirm", admin, "", http.StatusOK)
		content := postJSON(tb, base+"/ad-space/content", adv, fmt.Sprintf(`{"format":"banner","title":"Fresh beans %d","body":"Roasted weekly.",
			"click_url":"https://shop.example.com/beans","bid":{"model":"cpm","micros":%d},"total_budget_micros":1000000000,"submit":true}`, i, 2_000_000+i), http.StatusCreated)
		postJSON(tb, base+"/moderation/content/"+content["id"].(string)+"/approve", mod, "", http.StatusOK)
	}
	device := 0
	require.Eventually(tb, func() bool {
		device++
		_, body := get(tb, base+"/ad-space/"+owner+"?device=seed-"+strconv.Itoa(device))
		return strings.Contains(body, "Fresh beans")
	}, 15*time.Second, 100*time.Millisecond, "the local engine picks up the funded ads")
	_, body := get(tb, base+"/ad-space/"+empty+"?device=seed")
	require.Contains(tb, body, `"ads":[]`, "no ad is in the empty space's category")
	return owner, empty
}

// BenchmarkIngestHTTP measures event ingest through the example server on
// PostgreSQL, against baselines measured in the same run:
//   - batches of 100 events per POST /events, in rows per second, against
//     a bare CopyFrom loop of 100-row batches into the events table;
//   - single-event POST /events (each event committed before its answer),
//     in requests per second, against a hello-world handler, both at 64
//     and at 256 concurrent connections: group commit needs requests in
//     flight to fill its batches, and apps reporting events are many.
//
// Tokens are sealed before the clock starts, as a load tool sends
// prepared requests. Each request comes from its own client network
// (X-Forwarded-For through a trusted proxy, as behind a load balancer) and
// each token names its own viewer, so the traffic is what many devices
// send and the events are valid and billable: the full write path.
//
// It runs twice: on PostgreSQL alone (one instance: burst counts in
// memory, no live figures) and with Redis too (burst counts shared between
// instances and live figures kept, one round trip each per group commit).
// Run it with -benchtime=1x.
func BenchmarkIngestHTTP(b *testing.B) {
	b.Run("postgres", func(b *testing.B) { benchmarkIngestHTTP(b, false) })
	b.Run("postgres+redis", func(b *testing.B) { benchmarkIngestHTTP(b, true) })
}

func benchmarkIngestHTTP(b *testing.B, withRedis bool) {
	dbURL := postgrestest.URL(b)
	key := make([]byte, 32)
	env := map[string]string{
		"DATABASE_URL": dbURL, "ADSHARE_ACCESS_LOG": "false", "ADSHARE_CLIENT_RATE": "60000000",
		"ADSHARE_TRACKING_KEYS":   base64.StdEncoding.EncodeToString(key),
		"ADSHARE_TRUSTED_PROXIES": "127.0.0.1/32",
	}
	if withRedis {
		env["REDIS_URL"], env["ADSHARE_REDIS_PREFIX"] = testenv.Redis(b)
	}
	base, _ := startServer(b, env, "-migrate-on-start")
	owner := postJSON(b, base+"/auth/register", "", `{"email":"owner@example.com","password":"a long enough passphrase"}`, http.StatusCreated)
	ownerID := uuid.MustParse(owner["user"].(map[string]any)["id"].(string))
	seal := numberedImpressions(b, key, ownerID)
	tokens := make(chan string, 1<<20)
	mint := func(n int) {
		for i := range n {
			tokens <- seal(i)
		}
	}
	next := func() string { // a prepared token, or a fresh one should they run out
		select {
		case tok := <-tokens:
			return tok
		default:
			return seal(0)
		}
	}
	const (
		batchSize = 100
		phase     = 5 * time.Second
	)
	hello := helloServer(b)
	var devices atomic.Uint32
	post := func(url, body string) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err == nil {
			d := devices.Add(1)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "AdshareApp/2.1 (iPhone; iOS 18.1)") // Go's own is a script's
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.1", d>>8&0xff, d&0xff))
		}
		return req, err
	}
	load := func(concurrency int, request func() (*http.Request, error)) loadgen.Result {
		res, err := loadgen.Run(context.Background(), loadgen.Config{Concurrency: concurrency, Duration: phase,
			Request: func(worker, i int) (*http.Request, error) { return request() }})
		require.NoError(b, err)
		return res
	}

	for b.Loop() {
		b.StopTimer()
		mint(cap(tokens) - len(tokens))
		b.StartTimer()
		copyRows := copyFromBaseline(b, dbURL, batchSize, phase)
		batches := load(16, func() (*http.Request, error) {
			var sb strings.Builder
			sb.WriteString(`{"events":[`)
			for j := range batchSize {
				if j > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString(`{"type":"impression","token":"` + next() + `"}`)
			}
			sb.WriteString(`]}`)
			return post(base+"/events", sb.String())
		})
		httpRows := batches.RPS * batchSize
		b.Logf("CopyFrom baseline:   %.0f rows/s", copyRows)
		b.Logf("HTTP batches of %d: %.0f rows/s (%v)", batchSize, httpRows, batches)
		b.ReportMetric(httpRows/copyRows, "batch/copy")
		b.ReportMetric(httpRows, "batch-rows/s")

		b.StopTimer()
		mint(cap(tokens) - len(tokens))
		b.StartTimer()
		for _, c := range []int{64, 256} {
			baseline := load(c, func() (*http.Request, error) { return post(hello.URL, `{"type":"impression"}`) })
			single := load(c, func() (*http.Request, error) {
				return post(base+"/events", `{"type":"impression","token":"`+next()+`"}`)
			})
			b.Logf("%d connections: hello-world: %v", c, baseline)
			b.Logf("%d connections: single-event POST: %v", c, single)
			b.ReportMetric(single.RPS/baseline.RPS, fmt.Sprintf("single/hello@%d", c))
			b.ReportMetric(single.RPS, fmt.Sprintf("single-req/s@%d", c))
		}
	}
	// The load is what real devices send: the events pass the filters.
	var all, invalid int64
	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(b, err)
	defer conn.Close(context.Background())
	require.NoError(b, conn.QueryRow(context.Background(),
		`SELECT count(*), count(*) FILTER (WHERE NOT valid) FROM events WHERE source = 'local' AND ad_id <> 'ad-1'`).Scan(&all, &invalid))
	rules, err := conn.Query(context.Background(), `SELECT rule, count(*) FROM events WHERE NOT valid GROUP BY rule`)
	require.NoError(b, err)
	for rules.Next() {
		var (
			rule string
			n    int64
		)
		require.NoError(b, rules.Scan(&rule, &n))
		b.Logf("  flagged %s: %d", rule, n)
	}
	require.NoError(b, rules.Err())
	b.Logf("events stored through HTTP: %d, of which invalid traffic: %d", all, invalid)
	require.Less(b, float64(invalid), 0.01*float64(all))
}

// copyFromBaseline copies batches of rows shaped like events into the
// events table for d, and returns rows per second.
func copyFromBaseline(tb testing.TB, dbURL string, batchSize int, d time.Duration) float64 {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(tb, err)
	defer conn.Close(ctx)
	cols := []string{"issued_at", "tracking_id", "type", "owner_id", "viewer_key", "placement", "source", "ad_id",
		"advertiser_id", "price_model", "price_micros", "occurred_at", "received_at", "billable", "valid", "spend_micros",
		"owner_earnings_micros", "owner_share_bp"}
	owner := pgtype.UUID{Bytes: uuid.New(), Valid: true}
	rows, start := 0, time.Now()
	for time.Since(start) < d {
		now := time.Now().UTC()
		batch := make([][]any, batchSize)
		for i := range batch {
			batch[i] = []any{now, pgtype.UUID{Bytes: uuid.Must(uuid.NewV7()), Valid: true}, "impression", owner, "v", "main", "local", "ad-1",
				"adv-1", "cpm", int64(2_000_000), now, now, true, true, int64(2000), int64(1000), 5000}
		}
		n, err := conn.CopyFrom(ctx, pgx.Identifier{"events"}, cols, pgx.CopyFromRows(batch))
		require.NoError(tb, err)
		rows += int(n)
	}
	return float64(rows) / time.Since(start).Seconds()
}

// numberedImpressions returns a function that seals the i-th tracking
// token of a billable impression in owner's space, under key (the
// server's ADSHARE_TRACKING_KEYS), for viewer i and one of fifty ads: what
// a fill five seconds ago would have given a device.
func numberedImpressions(tb testing.TB, key []byte, owner uuid.UUID) func(i int) string {
	s := newImpressionSealer(tb, base64.StdEncoding.EncodeToString(key))
	return func(i int) string { return s.sealAd(tb, owner, strconv.Itoa(i), "ad-"+strconv.Itoa(i%50)) }
}

func withHeader(h http.Header, key, value string) http.Header {
	h.Set(key, value)
	return h
}

// helloServer is the baseline of the load figures: a net/http handler
// that answers a small JSON document, closed when the test ends.
func helloServer(tb testing.TB) *httptest.Server {
	hello := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"hello":"world"}`))
	}))
	tb.Cleanup(hello.Close)
	return hello
}
