package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// BenchmarkWrk measures the example server (PostgreSQL + Redis, the
// leased API-wide rate limits on, warm caches) with Debian's wrk, a C load
// generator that spends far less CPU per request than a Go one on the same
// two cores, against a hello-world net/http handler in the same run, all
// at 64 connections on one wrk thread:
//   - fill: GET /ad-space/{userId} of a space whose fill chooses among ten
//     funded ads, each request by another anonymous device;
//   - empty: a space no ad may fill (the whole decision, to no ad);
//   - single: POST /events with one impression, committed before the
//     answer, each token new and each request from its own client network;
//   - batch: POST /events with 100 impressions, in rows per second.
//
// Set ADSHARE_BENCH_CPUPROFILE to a directory to write a CPU profile of
// the server process (this test binary; wrk is another) per phase, and
// allocation profiles before and after it (compare with pprof -base). Run it
// with -benchtime=1x; it skips where wrk is not installed.
func BenchmarkWrk(b *testing.B) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Skip("wrk is not installed (Debian: apt-get install wrk)")
	}
	key := make([]byte, 32)
	redisURL, prefix := testenv.Redis(b)
	env := map[string]string{"DATABASE_URL": postgrestest.URL(b), "REDIS_URL": redisURL, "ADSHARE_REDIS_PREFIX": prefix,
		"ADSHARE_ACCESS_LOG": "false", "ADSHARE_CLIENT_RATE": "60000000", "ADSHARE_TRUSTED_PROXIES": "127.0.0.1/32",
		"ADSHARE_TRACKING_KEYS": base64.StdEncoding.EncodeToString(key)}
	base, _ := startServer(b, env, "-migrate-on-start")
	owner, empty := seedFundedAds(b, base, env, 10)
	hello := helloServer(b)

	const (
		phase     = 5 * time.Second
		batchSize = 100
	)
	dir := b.TempDir()
	seal := numberedImpressions(b, key, uuid.MustParse(owner))
	tokens := func(name string, n int) string {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		require.NoError(b, err)
		w := bufio.NewWriter(f)
		for i := range n {
			_, _ = w.WriteString(seal(i) + "\n")
		}
		require.NoError(b, w.Flush())
		require.NoError(b, f.Close())
		return path
	}
	profiles := os.Getenv("ADSHARE_BENCH_CPUPROFILE")
	if profiles != "" {
		runtime.SetMutexProfileFraction(5)
		b.Cleanup(func() { runtime.SetMutexProfileFraction(0) })
	}
	load := func(name, url string, script wrkScript) wrkResult {
		if profiles != "" {
			f, err := os.Create(filepath.Join(profiles, name+".pprof"))
			require.NoError(b, err)
			require.NoError(b, pprof.StartCPUProfile(f))
			writeAllocs(b, filepath.Join(profiles, name+".allocs.before"))
			defer func() {
				pprof.StopCPUProfile()
				_ = f.Close()
				writeAllocs(b, filepath.Join(profiles, name+".allocs"))
				writeProfile(b, "mutex", filepath.Join(profiles, name+".mutex"))
			}()
		}
		cpu := processCPU()
		res := runWrk(b, wrk, url, script, phase)
		res.CPUPerRequest = (processCPU() - cpu) / time.Duration(max(res.Requests, 1))
		b.Logf("%-7s %v", name+":", res)
		return res
	}

	for b.Loop() {
		b.StopTimer()
		singles := tokens("single", 400_000)
		batches := tokens("batch", 1_500_000)
		b.StartTimer()
		helloGet := load("hello", hello.URL, wrkScript{Method: "GET", Path: "/?gdpr_applies=false&device=d"})
		fill := load("fill", base, wrkScript{Method: "GET", Path: "/ad-space/" + owner + "?gdpr_applies=false&device=d"})
		none := load("empty", base, wrkScript{Method: "GET", Path: "/ad-space/" + empty + "?gdpr_applies=false&device=d"})
		helloPost := load("hello-post", hello.URL, wrkScript{Method: "POST", Path: "/events", Tokens: singles, PerRequest: 1})
		single := load("single", base, wrkScript{Method: "POST", Path: "/events", Tokens: singles, PerRequest: 1})
		batch := load("batch", base, wrkScript{Method: "POST", Path: "/events", Tokens: batches, PerRequest: batchSize})

		for _, r := range []wrkResult{fill, none, single, batch} {
			require.Zero(b, r.Errors, "no request fails")
		}
		b.ReportMetric(helloGet.RPS, "hello-req/s")
		b.ReportMetric(fill.RPS/helloGet.RPS, "fill/hello")
		b.ReportMetric(none.RPS/helloGet.RPS, "empty/hello")
		b.ReportMetric(fill.P99.Seconds()*1000, "fill-p99-ms")
		b.ReportMetric(none.P99.Seconds()*1000, "empty-p99-ms")
		b.ReportMetric(float64(fill.CPUPerRequest)/float64(helloGet.CPUPerRequest), "fill-cpu/hello-cpu")
		b.ReportMetric(float64(none.CPUPerRequest)/float64(helloGet.CPUPerRequest), "empty-cpu/hello-cpu")
		b.ReportMetric(single.RPS/helloPost.RPS, "single/hello")
		b.ReportMetric(single.P99.Seconds()*1000, "single-p99-ms")
		b.ReportMetric(batch.RPS*batchSize, "batch-rows/s")
		b.ReportMetric(batch.P99.Seconds()*1000, "batch-p99-ms")
	}
}

// writeAllocs writes the allocation profile so far to path: the
// difference of two (pprof -base) is what a phase allocated.
func writeAllocs(tb testing.TB, path string) { writeProfile(tb, "allocs", path) }

// writeProfile writes the named runtime profile so far to path.
func writeProfile(tb testing.TB, name, path string) {
	f, err := os.Create(path)
	require.NoError(tb, err)
	defer f.Close()
	require.NoError(tb, pprof.Lookup(name).WriteTo(f, 0))
}

// wrkScript is what wrk sends: GETs of Path with a device that changes
// every request, or POSTs of impressions, PerRequest per body, each token
// a line of the file Tokens, each request from its own client network.
type wrkScript struct {
	Method     string
	Path       string
	Tokens     string
	PerRequest int
}

// lua is the script wrk runs for s; its done function writes the summary
// as one JSON line.
func (s wrkScript) lua() string {
	var b strings.Builder
	fmt.Fprintf(&b, "local path, per = %q, %d\n", s.Path, s.PerRequest)
	b.WriteString(`local n, tokens, next = 0, {}, 1
init = function(args)
  if args[1] then
    for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  end
end
request = function()
  n = n + 1
  if #tokens == 0 then
    return wrk.format(nil, path .. n)
  end
  local parts = {}
  for i = 1, per do
    parts[i] = '{"type":"impression","token":"' .. tokens[next] .. '"}'
    next = next % #tokens + 1
  end
  local body = per == 1 and parts[1] or ('{"events":[' .. table.concat(parts, ",") .. ']}')
  local headers = {["Content-Type"] = "application/json", ["User-Agent"] = "AdshareApp/2.1 (iPhone; iOS 18.1)",
    ["X-Forwarded-For"] = string.format("10.%d.%d.1", math.floor(n / 256) % 256, n % 256)}
  return wrk.format("POST", path, headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\n{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
`)
	return b.String()
}

// wrkResult is one wrk run's summary.
type wrkResult struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	Errors     int64 `json:"errors"`
	P50US      int64 `json:"p50_us"`
	P99US      int64 `json:"p99_us"`
	P999US     int64 `json:"p999_us"`
	MaxUS      int64 `json:"max_us"`
	RPS        float64
	P99        time.Duration
	// CPUPerRequest is the server process's CPU time (this test binary's:
	// wrk runs apart) over the run, per request: steadier on a shared
	// machine than a rate.
	CPUPerRequest time.Duration
	// WrkCPUPerRequest is wrk's own CPU time per request: the load
	// generator's share of the two cores.
	WrkCPUPerRequest time.Duration
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r wrkResult) String() string {
	return fmt.Sprintf("%d requests, %.0f req/s, p50 %v, p99 %v, p99.9 %v, max %v, %d errors, CPU per request: server %v, wrk %v", r.Requests, r.RPS,
		time.Duration(r.P50US)*time.Microsecond, r.P99, time.Duration(r.P999US)*time.Microsecond,
		time.Duration(r.MaxUS)*time.Microsecond, r.Errors, r.CPUPerRequest.Round(100*time.Nanosecond), r.WrkCPUPerRequest.Round(100*time.Nanosecond))
}

// runWrk runs wrk with one thread and 64 connections for d against base
// and returns its summary.
func runWrk(tb testing.TB, wrk, base string, s wrkScript, d time.Duration) wrkResult {
	tb.Helper()
	script := filepath.Join(tb.TempDir(), "load.lua")
	require.NoError(tb, os.WriteFile(script, []byte(s.lua()), 0o600))
	args := []string{"-t1", "-c64", "-d" + fmt.Sprint(int(d.Seconds())) + "s", "--timeout", "5s", "-s", script, base}
	if s.Tokens != "" {
		args = append(args, "--", s.Tokens)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrk, args...)
	out, err := cmd.CombinedOutput()
	require.NoError(tb, err, "%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var r wrkResult
	require.NoError(tb, json.Unmarshal([]byte(lines[len(lines)-1]), &r), "%s", out)
	r.RPS = float64(r.Requests) / (float64(r.DurationUS) / 1e6)
	r.P99 = time.Duration(r.P99US) * time.Microsecond
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.WrkCPUPerRequest = time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) / time.Duration(max(r.Requests, 1))
	}
	return r
}
