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
func TestSharedRateLimitsHoldAcrossInstances(t *testing.T) {
	t.Parallel()
	url, prefix := testenv.Redis(t)
	limit := auth.Limit{Rate: 1, Period: time.Hour, Burst: 20}
	server := func() *httptest.Server {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rc, err := redisstore.Open(ctx, url, &redisstore.Config{Prefix: prefix})
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
