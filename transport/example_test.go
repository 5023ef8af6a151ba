package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/transport"
)

// New returns the API as an http.Handler that the host mounts in its own
// server; here with only readiness checks (the domain services are nil, so
// their routes are not mounted). Errors are RFC 9457 problem documents
// with a stable code.
func ExampleNew() {
	redisUp := true
	h, err := transport.New(transport.Config{
		ReadinessChecks: []transport.ReadinessCheck{{Name: "redis", Check: func(context.Context) error {
			if !redisUp {
				return errors.New("connection refused")
			}
			return nil
		}}},
	})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(path string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK {
			fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
			return
		}
		var p transport.Problem
		if err := json.Unmarshal(body, &p); err != nil {
			panic(err)
		}
		fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), p.Code, p.Detail, p.Checks, p.RequestID != "")
	}
	get("/readyz")
	redisUp = false
	get("/readyz")
	// Output:
	// 200 {"checks":{"redis":"ok"},"status":"ok"}
	// 503 application/problem+json not_ready a dependency is not reachable map[redis:unavailable] true
}

// API-wide rate limits are per client address (and per user once signed
// in); every answer names the policy (IETF RateLimit fields), and a
// refusal is a 429 problem with Retry-After.
func ExampleConfig_rateLimits() {
	h, err := transport.New(transport.Config{
		Limiter:         memory.NewLimiter(), // store/redis's LeasedLimiter shares it across instances
		ClientRateLimit: auth.Limit{Rate: 2, Period: time.Minute, Burst: 2},
	})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for range 3 {
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			panic(err)
		}
		p := transport.Problem{Code: "-"}
		if resp.StatusCode != http.StatusOK {
			_ = json.NewDecoder(resp.Body).Decode(&p)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, p.Code, resp.Header.Get("RateLimit-Policy"))
	}
	// Output:
	// 200 - "ip";q=2;w=60
	// 200 - "ip";q=2;w=60
	// 429 rate_limited "ip";q=2;w=60
}
