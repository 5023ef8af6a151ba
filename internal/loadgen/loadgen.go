// Package loadgen is a closed-loop HTTP load generator for benchmarks: a
// fixed number of workers each send a request, wait for the answer, and
// send the next, for a duration. It reports throughput and latency
// percentiles, so that an endpoint can be compared with a baseline (a
// hello-world handler) measured in the same run on the same machine.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Config describes one run.
type Config struct {
	// Request builds the i-th request of a worker (called concurrently).
	Request func(worker, i int) (*http.Request, error)
	// Concurrency is the number of workers (connections). Default 64.
	Concurrency int
	// Duration of the measured run. Default 5 s.
	Duration time.Duration
	// Warmup runs before measuring. Default 1 s.
	Warmup time.Duration
	// WantStatus is the status every answer must have. Default 200.
	WantStatus int
}

// Result summarises a run.
type Result struct {
	Requests int
	Errors   int
	Elapsed  time.Duration
	RPS      float64
	P50      time.Duration
	P99      time.Duration
	Max      time.Duration
}

// String formats the result for a benchmark note.
func (r Result) String() string {
	return fmt.Sprintf("%d requests in %v: %.0f req/s, p50 %v, p99 %v, max %v, %d errors",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.RPS, r.P50, r.P99, r.Max, r.Errors)
}

// Run loads the target and returns what it measured.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Request == nil {
		return Result{}, errors.New("loadgen: Config.Request is required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Warmup < 0 {
		cfg.Warmup = 0
	} else if cfg.Warmup == 0 {
		cfg.Warmup = time.Second
	}
	if cfg.WantStatus == 0 {
		cfg.WantStatus = http.StatusOK
	}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: cfg.Concurrency, MaxIdleConnsPerHost: cfg.Concurrency, MaxConnsPerHost: cfg.Concurrency,
		IdleConnTimeout: time.Minute,
	}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	if cfg.Warmup > 0 {
		if _, err := phase(ctx, client, cfg, cfg.Warmup); err != nil {
			return Result{}, err
		}
	}
	return phase(ctx, client, cfg, cfg.Duration)
}

func phase(ctx context.Context, client *http.Client, cfg Config, d time.Duration) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, 1<<16)
		errs      int
		firstErr  error
		wg        sync.WaitGroup
	)
	start := time.Now()
	for w := range cfg.Concurrency {
		wg.Go(func() {
			local := make([]time.Duration, 0, 1<<12)
			localErrs := 0
			var err1 error
			for i := 0; ctx.Err() == nil; i++ {
				req, err := cfg.Request(w, i)
				if err != nil {
					err1 = err
					break
				}
				t0 := time.Now()
				resp, err := client.Do(req.WithContext(ctx))
				if err != nil {
					if ctx.Err() == nil {
						localErrs++
						err1 = cmpErr(err1, err)
					}
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != cfg.WantStatus {
					localErrs++
					err1 = cmpErr(err1, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body)))
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			errs += localErrs
			firstErr = cmpErr(firstErr, err1)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(latencies) == 0 {
		return Result{}, fmt.Errorf("loadgen: no successful request: %v", firstErr)
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(float64(len(latencies))*p))] }
	r := Result{
		Requests: len(latencies), Errors: errs, Elapsed: elapsed,
		RPS: float64(len(latencies)) / elapsed.Seconds(), P50: pct(0.50), P99: pct(0.99), Max: latencies[len(latencies)-1],
	}
	if errs > 0 {
		return r, fmt.Errorf("loadgen: %d errors, first: %v", errs, firstErr)
	}
	return r, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
