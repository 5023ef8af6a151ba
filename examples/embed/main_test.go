package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/testenv"
)

// TestTheHostServesAdshareUnderAPrefix runs the host service and uses both
// its own route and adshare's, mounted under /adshare, with the host's
// logger and registry.
func TestTheHostServesAdshareUnderAPrefix(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	out := &testenv.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"embed", "-addr", "127.0.0.1:0"}, out) }()
	var base string
	require.Eventually(t, func() bool {
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			var line struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				base = line.URL
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)

	status, body := get(t, base+"/hello")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "hello from the host service\n", body)
	status, body = get(t, base+"/adshare/healthz")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"status":"ok"}`, body)
	status, _ = get(t, base+"/healthz")
	require.Equal(t, http.StatusNotFound, status, "adshare answers only under its prefix")

	// A user flow through the prefix: sign up, then fill the new space.
	resp, err := http.Post(base+"/adshare/auth/register", "application/json",
		strings.NewReader(`{"email":"host@example.com","password":"a long enough passphrase"}`))
	require.NoError(t, err)
	var reg struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&reg))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	status, body = get(t, base+"/adshare/ad-space/"+reg.User.ID)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"ads":[]`, "nobody has funded an ad yet")

	status, body = get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `adshare_http_requests_total{method="POST",route="POST /auth/register",status="201"} 1`,
		"adshare registers on the host's registry")
	require.Contains(t, body, "go_goroutines", "beside the host's own metrics")
	require.Contains(t, out.String(), `"component":"adshare"`, "adshare logs through the host's logger")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the host did not stop within 20s")
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
