package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/loadgen"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres/postgrestest"
	"github.com/adshare/adshare/transport/realtime"
)

// BenchmarkLiveMetricsLatency measures how long an impression accepted by
// POST /events takes to reach its owner's WebSocket as metrics.live, on the
// example server with PostgreSQL and Redis (the path through the group
// commit, the live counters and the Redis broker), while other owners'
// impressions arrive at a fixed rate of half the ingest's maximum, which
// the same run measures first (single-event POSTs from 64 connections).
//
// The background is open loop: requests leave on schedule whether or not
// earlier ones were answered, so a slow server meets more load, not less.
// The probes are one impression of the watched owner every 1.2 s, more
// than the channel's one-second coalescing apart, so each is its own
// message; a probe's latency runs from its POST to the message that
// counts it. Run it with -benchtime=1x.
func BenchmarkLiveMetricsLatency(b *testing.B) {
	const probes = 30
	dbURL := postgrestest.URL(b)
	key := make([]byte, 32)
	env := map[string]string{
		"DATABASE_URL": dbURL, "ADSHARE_ACCESS_LOG": "false", "ADSHARE_CLIENT_RATE": "60000000",
		"ADSHARE_TRACKING_KEYS": base64.StdEncoding.EncodeToString(key), "ADSHARE_TRUSTED_PROXIES": "127.0.0.1/32",
	}
	env["REDIS_URL"], env["ADSHARE_REDIS_PREFIX"] = testenv.Redis(b)
	base, _ := startServer(b, env, "-migrate-on-start")
	const pw = `"password":"a long enough passphrase"`
	watched := postJSON(b, base+"/auth/register", "", `{"email":"watched@example.com",`+pw+`}`, http.StatusCreated)
	watchedID := uuid.MustParse(watched["user"].(map[string]any)["id"].(string))
	other := postJSON(b, base+"/auth/register", "", `{"email":"busy@example.com",`+pw+`}`, http.StatusCreated)
	otherID := uuid.MustParse(other["user"].(map[string]any)["id"].(string))
	access := watched["access_token"].(string)
	probeToken, busyToken := impressionSealer(b, key, watchedID), impressionSealer(b, key, otherID)

	var devices atomic.Uint32
	impression := func(token string) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, base+"/events", strings.NewReader(`{"type":"impression","token":"`+token+`"}`))
		if err == nil {
			d := devices.Add(1)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "AdshareApp/2.1 (iPhone; iOS 18.1)")
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", d>>16&0xff, d>>8&0xff, d&0xff|1))
		}
		return req, err
	}
	tokens := make(chan string, 200_000)
	for i := range cap(tokens) {
		tokens <- busyToken(i)
	}
	next := func() string {
		select {
		case t := <-tokens:
			return t
		default:
			return busyToken(0)
		}
	}

	for b.Loop() {
		most, err := loadgen.Run(context.Background(), loadgen.Config{Concurrency: 64, Duration: 3 * time.Second,
			Request: func(int, int) (*http.Request, error) { return impression(next()) }})
		require.NoError(b, err)
		rate := most.RPS / 2

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		lat := watchLive(b, ctx, base, access, watchedID, probes, func(i int) error {
			req, err := impression(probeToken(i))
			if err != nil {
				return err
			}
			return expectStatus(http.DefaultClient, req, http.StatusOK)
		}, func(ctx context.Context) openLoopResult {
			return openLoop(ctx, rate, func() error {
				req, err := impression(next())
				if err != nil {
					return err
				}
				return expectStatus(http.DefaultClient, req, http.StatusOK)
			})
		})
		cancel()
		b.Logf("ingest maximum (closed loop, 64 connections): %v", most)
		b.Logf("background at half of it: %v", lat.background)
		b.Logf("impression to metrics.live over %d probes: p50 %v, p99 %v, max %v", len(lat.probes), lat.p(0.50), lat.p(0.99), lat.p(1))
		b.ReportMetric(most.RPS, "ingest-max-req/s")
		b.ReportMetric(lat.background.rate(), "background-req/s")
		b.ReportMetric(float64(lat.p(0.50).Milliseconds()), "live-p50-ms")
		b.ReportMetric(float64(lat.p(0.99).Milliseconds()), "live-p99-ms")
		require.Zero(b, lat.background.failed, "the background load is answered")
		require.Len(b, lat.probes, probes, "every probe reached the owner")
	}
}

// liveLatencies are the probes' latencies and what the background did.
type liveLatencies struct {
	probes     []time.Duration
	background openLoopResult
}

// p is the q-quantile of the probes' latencies (1: the largest).
func (l liveLatencies) p(q float64) time.Duration {
	s := slices.Sorted(slices.Values(l.probes))
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// watchLive connects to /ws as the owner, subscribes to their space, runs
// background for as long as the probes take, sends n probes 1.2 s apart
// (probe(i) posts one impression of the owner's), and returns how long
// each took to be counted by a metrics.live message.
func watchLive(tb testing.TB, ctx context.Context, base, access string, owner uuid.UUID, n int,
	probe func(i int) error, background func(context.Context) openLoopResult) liveLatencies {
	tb.Helper()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + access}}})
	require.NoError(tb, err)
	defer c.CloseNow()
	read := func() realtime.Envelope {
		_, raw, err := c.Read(ctx)
		require.NoError(tb, err)
		var env realtime.Envelope
		require.NoError(tb, json.Unmarshal(raw, &env))
		return env
	}
	require.Equal(tb, realtime.TypeWelcome, read().Type)
	sub, err := json.Marshal(map[string]any{"v": 1, "type": "subscribe", "payload": map[string]any{"topics": []map[string]any{{"topic": realtime.SpaceTopic(owner)}}}})
	require.NoError(tb, err)
	require.NoError(tb, c.Write(ctx, websocket.MessageText, sub))
	require.Equal(tb, realtime.TypeSubscribed, read().Type)

	var (
		mu   sync.Mutex
		sent []time.Time
		got  []time.Duration
	)
	counted := make(chan struct{})
	go func() { // the owner's app: every metrics.live counts probes
		defer close(counted)
		var seen int64
		for int(seen) < n {
			_, raw, err := c.Read(ctx)
			if err != nil {
				return
			}
			at := time.Now()
			var env realtime.Envelope
			if json.Unmarshal(raw, &env) != nil || env.Type != realtime.TypeMetricsLive {
				continue
			}
			var m realtime.MetricsPayload
			if json.Unmarshal(env.Payload, &m) != nil {
				continue
			}
			mu.Lock()
			for i := seen; i < seen+m.Impressions && int(i) < len(sent); i++ {
				got = append(got, at.Sub(sent[i]))
			}
			mu.Unlock()
			seen += m.Impressions
		}
	}()
	bgCtx, stopBackground := context.WithCancel(ctx)
	bg := make(chan openLoopResult, 1)
	go func() { bg <- background(bgCtx) }()
	time.Sleep(time.Second) // the background reaches its rate first
	for i := range n {
		mu.Lock()
		sent = append(sent, time.Now())
		mu.Unlock()
		require.NoError(tb, probe(i))
		time.Sleep(1200 * time.Millisecond)
	}
	select {
	case <-counted:
	case <-time.After(10 * time.Second):
	}
	stopBackground()
	mu.Lock()
	defer mu.Unlock()
	return liveLatencies{probes: slices.Clone(got), background: <-bg}
}

// openLoopResult is what an open-loop run sent.
type openLoopResult struct {
	sent, failed int
	elapsed      time.Duration
	p99          time.Duration // from each request's scheduled time
}

func (r openLoopResult) rate() float64 { return float64(r.sent) / r.elapsed.Seconds() }

func (r openLoopResult) String() string {
	return fmt.Sprintf("%d requests in %v (%.0f/s), %d failed, p99 %v from the scheduled send", r.sent, r.elapsed.Round(time.Millisecond), r.rate(), r.failed, r.p99)
}

// openLoop calls send at a fixed rate until ctx ends, each call at its
// scheduled time in its own goroutine (so a slow answer delays nothing),
// and measures each from when it was due.
func openLoop(ctx context.Context, rate float64, send func() error) openLoopResult {
	interval := time.Duration(float64(time.Second) / rate)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		lat    []time.Duration
		failed int
	)
	start := time.Now()
	for i := 0; ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			err := send()
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, time.Since(due))
			if err != nil {
				failed++
			}
		})
	}
	elapsed := time.Since(start)
	wg.Wait()
	slices.Sort(lat)
	r := openLoopResult{sent: len(lat), failed: failed, elapsed: elapsed}
	if len(lat) > 0 {
		r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return r
}

// expectStatus sends req and drains the answer, which must have status want.
func expectStatus(client *http.Client, req *http.Request, want int) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d", req.Method, req.URL.Path, resp.StatusCode, want)
	}
	return nil
}
