package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/loadtest"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// binaryServer is the server binary run on fresh PostgreSQL and Redis,
// with keys that survive a restart (as a deployment's do), so that its
// goroutines, heap and pools are its own (not the load generator's).
type binaryServer struct {
	base string
	env  map[string]string
	// start runs the binary (again, after a kill) and waits until it is
	// ready; the process is killed when the test ends.
	start func() *exec.Cmd
}

// serverProcess builds the server binary and starts it once.
func serverProcess(t *testing.T) *binaryServer {
	t.Helper()
	dir := t.TempDir()
	bin := buildVersion(t, dir, "test")
	key := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	redisURL, prefix := testenv.Redis(t)
	addr := freeAddr(t)
	s := &binaryServer{base: "http://" + addr, env: map[string]string{
		"DATABASE_URL": postgrestest.URL(t), "REDIS_URL": redisURL, "ADSHARE_REDIS_PREFIX": prefix, "ADSHARE_ADDR": addr,
		"ADSHARE_MIGRATE_ON_START": "true", "ADSHARE_ACCESS_LOG": "false", "ADSHARE_LOG_FORMAT": "json",
		"ADSHARE_CLIENT_RATE": "6000000", "ADSHARE_USER_RATE": "6000000", "ADSHARE_TRUSTED_PROXIES": "127.0.0.1/32",
		"ADSHARE_TRACKING_KEYS": key(), "ADSHARE_JWT_SEED": key(), "ADSHARE_REFRESH_KEY": key(), "ADSHARE_VIEWER_KEY_SECRET": key(),
	}}
	environ := os.Environ()
	for k, v := range s.env {
		environ = append(environ, k+"="+v)
	}
	s.start = func() *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env = environ
		log, err := os.Create(filepath.Join(dir, fmt.Sprintf("server-%d.log", time.Now().UnixNano())))
		require.NoError(t, err)
		cmd.Stdout, cmd.Stderr = log, log
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		require.Eventually(t, func() bool { return send(http.MethodGet, s.base+"/readyz", "").status == http.StatusOK },
			60*time.Second, 50*time.Millisecond, "server ready")
		return cmd
	}
	return s
}

// fleet sets up a fleet on the server.
func (s *binaryServer) fleet(t *testing.T, cfg loadtest.FleetConfig) *loadtest.Fleet {
	t.Helper()
	cfg.Base = s.base
	cfg.Promote = func(ctx context.Context, email, role string) error {
		return run(ctx, []string{"server", "users", "set-role", email, role}, func(k string) string { return s.env[k] }, &testenv.Buffer{})
	}
	if cfg.Payees > 0 {
		cfg.Earn = ledgerEarn(t, s.env["DATABASE_URL"])
	}
	fleet, err := loadtest.Setup(context.Background(), cfg)
	require.NoError(t, err)
	return fleet
}

// scrape reads the gauges and counters named from base's /metrics (the
// sum over label sets when a name has several).
func scrape(t *testing.T, base string, names ...string) map[string]float64 {
	t.Helper()
	p := send(http.MethodGet, base+"/metrics", "")
	require.Equal(t, http.StatusOK, p.status)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(p.body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, n := range names {
			if strings.HasPrefix(line, n+" ") || strings.HasPrefix(line, n+"{") {
				v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
				require.NoError(t, err, line)
				out[n] += v
			}
		}
	}
	return out
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// TestCapacityAndSoak steps the fleet's mix up against the server binary
// until the fill's p99 passes 50 ms or errors pass 0.1%, beside a
// hello-world handler searched the same way in the same run, then soaks
// the server at half the capacity found: no 5xx, and goroutines, heap and
// the connection pool steady (slopes reported). CI runs short steps and a
// short soak; ADSHARE_LOAD_PROFILE=full runs 10 s steps and the 10-minute
// soak. It is the package's one sequential test, so the package's other
// binaries and fault rows do not share the two cores while it measures,
// and a failed step is tried once more before it counts.
func TestCapacityAndSoak(t *testing.T) {
	full := loadProfile() == "full"
	step, soak, maxRate := 2*time.Second, 15*time.Second, 400
	if full {
		step, soak, maxRate = 10*time.Second, 10*time.Minute, 0
	}
	srv := serverProcess(t)
	srv.start()
	base := srv.base
	fleet := srv.fleet(t, loadtest.FleetConfig{Owners: 40, SignIns: 40, Tokens: 2000})
	// Sign-ins, refreshes, top-ups and payouts use up what the fleet holds
	// (tokens, per-account and per-advertiser limits), so that a search's
	// rising steps would end on their refusals rather than the server's
	// limit: they are left to the mix test.
	// Viewers return, as real ones do: per-viewer state (frequency counts
	// for an hour, rate-limit buckets) then stops growing once all have
	// been seen, and what still grows in the soak is a leak.
	fleet.Viewers = 20_000
	mix := fleet.Mix(loadtest.Weights{SignIn: -1, Refresh: -1, TopUp: -1, Payout: -1})

	hello := helloServer(t)
	search := func(route string, mix []loadtest.Scenario) loadtest.CapacityResult {
		res, err := loadtest.Capacity(context.Background(), loadtest.CapacityConfig{
			Config: loadtest.Config{Duration: step, Mix: mix, Timeout: 5 * time.Second},
			Start:  100, Growth: 1.5, Max: maxRate, Route: route, MaxP99: 50 * time.Millisecond, Refine: 2, Retries: 1,
		})
		require.NoError(t, err)
		return res
	}
	helloCap := search("GET /", []loadtest.Scenario{{Route: "GET /", Weight: 1,
		Next: func(uint64) loadtest.Request { return loadtest.Request{URL: hello.URL + "/"} }}})
	mixCap := search(loadtest.RouteFill, mix)
	for _, c := range []loadtest.CapacityResult{helloCap, mixCap} {
		for _, s := range c.Steps {
			t.Logf("%s at %d req/s: held %v, p99 %.1f ms %s", c.Route, s.Rate, s.Held, s.P99, s.Why)
		}
	}
	t.Logf("capacity: mix %d req/s (fill p99 ≤ 50 ms, errors ≤ 0.1%%), hello-world %d req/s on the same run", mixCap.Sustained, helloCap.Sustained)
	require.GreaterOrEqual(t, mixCap.Sustained, 100, "the mix holds at least its first step")
	if dir := os.Getenv("ADSHARE_LOAD_RESULTS"); dir != "" {
		raw, err := json.MarshalIndent(map[string]any{"mix": mixCap, "hello": helloCap}, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "capacity.json"), raw, 0o644))
	}

	// Soak at half the capacity found, sampling the server every second.
	rate := max(mixCap.Sustained/2, 50)
	names := []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "adshare_db_pool_connections"}
	var xs []float64
	series := map[string][]float64{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sampled := make(chan struct{})
	began := time.Now()
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				m := scrape(t, base, names...)
				xs = append(xs, time.Since(began).Minutes())
				for _, n := range names {
					series[n] = append(series[n], m[n])
				}
			}
		}
	}()
	require.NoError(t, fleet.RenewAccess(ctx), "the setup's access tokens may not last through the search and the soak")
	rep, err := loadtest.Run(context.Background(), loadtest.Config{Rate: rate, Duration: soak, Mix: mix, Timeout: 5 * time.Second})
	require.NoError(t, err)
	cancel()
	<-sampled
	loadResults(t, "soak", rep)
	require.Zero(t, rep.Total.ServerErrors, "no 5xx during the soak")
	require.Zero(t, rep.Total.Transport, "every request answered")
	require.Zero(t, rep.Total.Errors, "every request succeeds, the signed-in ones on renewed sessions: %v", rep.Total.Statuses)
	require.GreaterOrEqual(t, len(xs), 5)
	// Slopes over the second half, once warm.
	half := len(xs) / 2
	var summary []string
	for _, n := range names {
		s := slope(xs[half:], series[n][half:])
		summary = append(summary, fmt.Sprintf("%s %.0f → %.0f (slope %.1f/min)", n, series[n][0], series[n][len(xs)-1], s))
	}
	t.Logf("soak at %d req/s for %v: %s", rate, soak, strings.Join(summary, "; "))
	g := series["go_goroutines"]
	require.LessOrEqual(t, g[len(g)-1], g[half]*1.5+50, "goroutines do not grow")
	pool := series["adshare_db_pool_connections"]
	require.LessOrEqual(t, pool[len(pool)-1], pool[half]+4, "the pool is steady")
	heap := series["go_memstats_heap_inuse_bytes"]
	require.LessOrEqual(t, heap[len(heap)-1], heap[half]*2+64<<20, "the heap does not grow without bound")
}
