package transport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/adshare/adshare/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestHealthzAnswersWithSecurityHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	v := openAPIValidator(t)
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	resp := rec.Result()

	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	requireDocumented(t, v, req, resp)
	var body map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, map[string]string{"status": "ok"}, body)

	h := resp.Header
	require.Equal(t, "default-src 'none'; frame-ancestors 'none'", h.Get("Content-Security-Policy"))
	require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
	require.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
	require.Equal(t, "no-store", h.Get("Cache-Control"))
	require.Empty(t, h.Values("Vary"), "with no CORS origin allowed, no answer depends on Origin")
	require.Empty(t, h.Get("Strict-Transport-Security"), "HSTS only when asked")
	require.Len(t, h.Get(RequestIDHeader), 36)
}

func TestHSTSWhenAsked(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{HSTSMaxAge: 365 * 24 * time.Hour})
	resp := b.do(t, http.MethodGet, "/healthz", nil, nil)
	require.Equal(t, "max-age=31536000; includeSubDomains", resp.Header.Get("Strict-Transport-Security"))
}

func TestHeadOfAGetRoute(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	resp := b.do(t, http.MethodHead, "/healthz", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp 10.0.0.7:5432: connection refused") }
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

	tests := []struct {
		description string
		checks      []ReadinessCheck
		wantStatus  int
		wantChecks  map[string]string
	}{
		{"no dependencies configured", nil, http.StatusOK, map[string]string{}},
		{"all answer", []ReadinessCheck{{"postgres", ok}, {"redis", ok}}, http.StatusOK,
			map[string]string{"postgres": "ok", "redis": "ok"}},
		{"one is down", []ReadinessCheck{{"postgres", down}, {"redis", ok}}, http.StatusServiceUnavailable,
			map[string]string{"postgres": "unavailable", "redis": "ok"}},
		{"one hangs past the timeout", []ReadinessCheck{{"postgres", ok}, {"redis", hang}}, http.StatusServiceUnavailable,
			map[string]string{"postgres": "ok", "redis": "unavailable"}},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewPedanticRegistry()
			b := setup(t, Config{ReadinessChecks: tt.checks, ReadinessTimeout: 50 * time.Millisecond, Metrics: reg})
			v := openAPIValidator(t)
			req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
			rec := httptest.NewRecorder()
			b.handler.ServeHTTP(rec, req)
			resp := rec.Result()
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			requireDocumented(t, v, req, resp)
			ready := 0.0
			if tt.wantStatus == http.StatusOK {
				ready = 1
			}
			require.Equal(t, ready, testenv.Metric(t, reg, "adshare_ready"))
			for name, result := range tt.wantChecks {
				require.Equal(t, 1.0, testenv.Metric(t, reg, "adshare_readiness_checks_total", "check", name, "result", result))
			}
			if tt.wantStatus == http.StatusOK {
				var body struct {
					Status string            `json:"status"`
					Checks map[string]string `json:"checks"`
				}
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
				require.Equal(t, tt.wantChecks, body.Checks)
				return
			}
			p := problemOf(t, resp)
			require.Equal(t, "not_ready", p.Code)
			require.Equal(t, tt.wantChecks, p.Checks)
			require.NotContains(t, p.Detail, "10.0.0.7", "internal addresses stay in the log")
			require.Contains(t, b.logs.String(), "readiness check failed")
		})
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})

	resp := b.do(t, http.MethodGet, "/no/such/thing", nil, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	p := problemOf(t, resp)
	require.Equal(t, "route_not_found", p.Code)

	resp = b.do(t, http.MethodDelete, "/healthz", nil, nil)
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Allow"), "GET")
	p = problemOf(t, resp)
	require.Equal(t, "method_not_allowed", p.Code)

	resp = b.do(t, "BREW", "/healthz", nil, nil)
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	problemOf(t, resp)
}

func TestPanicBecomesAProblemAndIsLogged(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{}, route{http.MethodGet, "/test/panic", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret internal state")
	})})
	resp := b.do(t, http.MethodGet, "/test/panic", nil, nil)
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	p := problemOf(t, resp)
	require.Equal(t, "internal", p.Code)
	require.NotContains(t, p.Detail, "secret")
	logs := b.logs.String()
	require.Contains(t, logs, "handler panicked")
	require.Contains(t, logs, "secret internal state")
	require.Contains(t, logs, `"status":500`, "the access log records the 500")
}

func TestRequestIDs(t *testing.T) {
	t.Parallel()

	t.Run("generated and unique by default, even when the client sends one", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		a := b.do(t, http.MethodGet, "/healthz", nil, http.Header{RequestIDHeader: {"client-chosen"}})
		c := b.do(t, http.MethodGet, "/healthz", nil, nil)
		require.NotEqual(t, "client-chosen", a.Header.Get(RequestIDHeader))
		require.NotEqual(t, a.Header.Get(RequestIDHeader), c.Header.Get(RequestIDHeader))
	})

	t.Run("kept when trusted and plain", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{TrustRequestID: true})
		resp := b.do(t, http.MethodGet, "/healthz", nil, http.Header{RequestIDHeader: {"lb-1234.abc"}})
		require.Equal(t, "lb-1234.abc", resp.Header.Get(RequestIDHeader))
		resp = b.do(t, http.MethodGet, "/healthz", nil, http.Header{RequestIDHeader: {"bad id\n{\"forged\":1}"}})
		require.NotContains(t, resp.Header.Get(RequestIDHeader), "forged")
		require.NotContains(t, b.logs.String(), "forged")
	})
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.do(t, http.MethodGet, "/healthz?token=hunter2", nil, nil)
	var entry map[string]any
	line, _, _ := strings.Cut(b.logs.String(), "\n")
	require.NoError(t, json.Unmarshal([]byte(line), &entry))
	require.Equal(t, "http request", entry["msg"])
	require.Equal(t, "GET", entry["method"])
	require.Equal(t, "/healthz", entry["path"])
	require.Equal(t, "GET /healthz", entry["route"])
	require.EqualValues(t, 200, entry["status"])
	require.NotEmpty(t, entry["request_id"])
	require.NotContains(t, b.logs.String(), "hunter2", "query strings may carry secrets and are not logged")
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := setup(t, Config{Metrics: reg})
	b.do(t, http.MethodGet, "/healthz", nil, nil)
	b.do(t, http.MethodGet, "/healthz", nil, nil)
	b.do(t, http.MethodGet, "/random/path/1", nil, nil)
	b.do(t, "BREW", "/healthz", nil, nil)

	const want = `
# HELP adshare_http_requests_total HTTP requests answered, by method, route pattern and status code.
# TYPE adshare_http_requests_total counter
adshare_http_requests_total{method="GET",route="GET /healthz",status="200"} 2
adshare_http_requests_total{method="GET",route="unmatched",status="404"} 1
adshare_http_requests_total{method="OTHER",route="unmatched",status="405"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "adshare_http_requests_total"))
	n, err := testutil.GatherAndCount(reg, "adshare_http_request_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 3, n)

	_, err = New(Config{Metrics: reg})
	require.Error(t, err, "registering twice on one registry is a configuration error")
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{AllowedOrigins: []string{"*"}},
		{AllowedOrigins: []string{"https://*.example.com"}},
		{AllowedOrigins: []string{"https://example.com/app"}},
		{AllowedOrigins: []string{"example.com"}},
		{AllowedOrigins: []string{"ftp://example.com"}},
		{MaxBodyBytes: -1},
		{ReadinessChecks: []ReadinessCheck{{Name: "postgres"}}},
	} {
		_, err := New(cfg)
		require.Error(t, err, "%+v", cfg)
	}
}

// The security headers' values are shared by every response: a handler
// adding to one must not write into the shared slice.
func TestSecurityHeadersAreNotSharedForWriting(t *testing.T) {
	t.Parallel()
	for _, f := range securityHeaders(time.Hour) {
		require.Equal(t, http.CanonicalHeaderKey(f.key), f.key)
		require.Equal(t, len(f.value), cap(f.value), "%s has spare capacity", f.key)
	}
	headers := securityHeaders(0)
	h := http.Header{}
	for _, f := range headers {
		h[f.key] = f.value
	}
	h.Add("Cache-Control", "private")
	require.Equal(t, []string{"no-store", "private"}, h.Values("Cache-Control"))
	for _, f := range headers {
		if f.key == "Cache-Control" {
			require.Equal(t, []string{"no-store"}, f.value, "the shared value is untouched")
		}
	}
}
