package transport

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/memory"
	redisstore "github.com/adshare/adshare/store/redis"
)

// Two instances whose API-wide limits are leased from one Redis: a client
// alternating between them gets its limit once, not twice, and a refusal
// says when to retry in both the IETF draft's fields and Retry-After.
// It runs against a single Redis and a Redis Cluster.
func TestSharedRateLimitsHoldAcrossInstances(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testSharedRateLimitsHoldAcrossInstances)
}

func testSharedRateLimitsHoldAcrossInstances(t *testing.T, r testenv.RedisTarget) {
	limit := auth.Limit{Rate: 1, Period: time.Hour, Burst: 20}
	server := func() *httptest.Server {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var (
			rc  *redisstore.Client
			err error
		)
		if r.Cluster() {
			rc, err = redisstore.OpenCluster(ctx, r.Addrs, &redisstore.Config{Prefix: r.Prefix})
		} else {
			rc, err = redisstore.Open(ctx, r.URL, &redisstore.Config{Prefix: r.Prefix})
		}
		require.NoError(t, err)
		t.Cleanup(func() { _ = rc.Stop(context.Background()) })
		h, err := New(Config{
			Limiter:         rc.LeasedLimiter(&redisstore.LeasedLimiterOptions{Fallback: memory.NewLimiter()}),
			ClientRateLimit: limit, UserRateLimit: limit,
		})
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv
	}
	a, b := server(), server()
	ok := 0
	var refused *http.Response
	for i := range 60 {
		srv := a
		if i%2 == 1 {
			srv = b
		}
		resp, err := srv.Client().Get(srv.URL + "/healthz")
		require.NoError(t, err)
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
			require.Equal(t, `"ip";q=1;w=3600`, resp.Header.Get("RateLimit-Policy"))
			require.Regexp(t, `^"ip";r=\d+;t=\d+$`, resp.Header.Get("RateLimit"))
		case http.StatusTooManyRequests:
			refused = resp
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	require.LessOrEqual(t, ok, limit.Burst, "alternating instances does not double the limit")
	require.GreaterOrEqual(t, ok, limit.Burst-4, "at most a lease per instance goes unspent")
	require.NotNil(t, refused)
	require.NotEmpty(t, refused.Header.Get("Retry-After"))
	require.Regexp(t, `^"ip";r=0;t=\d+$`, refused.Header.Get("RateLimit"))
}

// A route class with its own limit is counted apart: the auth routes run
// out while the rest of the API still answers, and the policy is named
// after the class.
func TestRouteClassesHaveTheirOwnLimits(t *testing.T) {
	t.Parallel()
	h, err := New(Config{
		Limiter:         memory.NewLimiter(),
		ClientRateLimit: auth.Limit{Rate: 100, Period: time.Minute, Burst: 100},
		RouteLimits:     map[RouteClass]auth.Limit{RouteAuth: {Rate: 2, Period: time.Hour, Burst: 2}},
	})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	get := func(path string) *http.Response {
		resp, err := srv.Client().Get(srv.URL + path)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp
	}
	for range 2 {
		require.Equal(t, `"auth";q=2;w=3600`, get("/auth/providers").Header.Get("RateLimit-Policy"))
	}
	refused := get("/auth/providers")
	require.Equal(t, http.StatusTooManyRequests, refused.StatusCode)
	require.NotEmpty(t, refused.Header.Get("Retry-After"))
	ok := get("/healthz")
	require.Equal(t, http.StatusOK, ok.StatusCode)
	require.Equal(t, `"ip";q=100;w=60`, ok.Header.Get("RateLimit-Policy"))

	_, err = New(Config{Limiter: memory.NewLimiter(), RouteLimits: map[RouteClass]auth.Limit{RouteReports: {}}})
	require.ErrorContains(t, err, "RouteLimits")
}

func TestRouteClass(t *testing.T) {
	t.Parallel()
	for pattern, want := range map[string]RouteClass{
		"POST /auth/login": RouteAuth, "POST /auth/oidc/{provider}/callback": RouteAuth,
		"POST /events": RouteTracking, "GET /c/{token}": RouteTracking,
		"GET /analytics/revenue": RouteReports,
		"GET /ad-space/{userId}": RouteDefault, "GET /healthz": RouteDefault, "unmatched": RouteDefault,
	} {
		require.Equal(t, want, routeClass(pattern), pattern)
	}
}
