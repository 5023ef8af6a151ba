package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/transport/client"
)

// tokenServer is a stand-in API whose access tokens the test expires at
// will: /users/me answers 401 token_expired to any token but the current
// one, and /auth/refresh rotates (slowly, so that callers pile up).
type tokenServer struct {
	mu        sync.Mutex
	current   int
	refreshes atomic.Int64
}

func (s *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	cur := s.current
	s.mu.Unlock()
	switch r.URL.Path {
	case "/auth/refresh":
		s.refreshes.Add(1)
		time.Sleep(50 * time.Millisecond)
		var body struct {
			RefreshToken string `json:"refresh_token"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body.RefreshToken != "r"+strconv.Itoa(cur) {
			problem(w, http.StatusUnauthorized, "invalid_grant")
			return
		}
		s.mu.Lock()
		s.current++
		cur = s.current
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"a`+strconv.Itoa(cur)+`","token_type":"Bearer","expires_in":900,"refresh_token":"r`+strconv.Itoa(cur)+
			`","refresh_token_expires_at":"2030-01-01T00:00:00Z","session_id":"01a24d7d-04e3-7508-968d-7180949f0616"}`)
	case "/users/me":
		if r.Header.Get("Authorization") != "Bearer a"+strconv.Itoa(cur) {
			problem(w, http.StatusUnauthorized, "token_expired")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"01a24d7d-04e3-7508-968d-7180949f0616","email":"o@example.com"}`)
	default:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html>bad gateway</html>")
	}
}

func problem(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"type":"urn:adshare:problem:`+code+`","title":"x","status":`+strconv.Itoa(status)+`,"code":"`+code+`","detail":"d"}`)
}

// A 401 on a token the server no longer takes makes the client refresh
// once and retry; concurrent callers share that one refresh, and
// OnTokens hears of the new pair once.
func TestClientRefreshesOnceAfter401(t *testing.T) {
	t.Parallel()
	ts := &tokenServer{}
	srv := httptest.NewServer(ts)
	defer srv.Close()
	var told atomic.Int64
	c, err := client.New(srv.URL, &client.Config{OnTokens: func(client.Tokens) { told.Add(1) }})
	require.NoError(t, err)
	c.SetTokens(&client.Tokens{AccessToken: "a0", RefreshToken: "r0"})
	_, err = c.Me(context.Background())
	require.NoError(t, err)
	require.Zero(t, ts.refreshes.Load(), "a token the server takes is not refreshed")

	ts.mu.Lock()
	ts.current = 1 // the server moved on: a1 is the only good token, and r0 is spent
	ts.mu.Unlock()
	c.SetTokens(&client.Tokens{AccessToken: "a0", RefreshToken: "r1"})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = c.Me(context.Background()) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.Equal(t, int64(1), ts.refreshes.Load(), "one refresh, shared by every caller")
	require.Equal(t, int64(1), told.Load())
	require.Equal(t, "r2", c.Tokens().RefreshToken)

	// A refresh the server refuses ends the session: the caller gets both
	// problems, and no retry loop.
	c.SetTokens(&client.Tokens{AccessToken: "stale", RefreshToken: "spent"})
	_, err = c.Me(context.Background())
	require.ErrorIs(t, err, &client.Problem{Code: "token_expired"})
	require.ErrorIs(t, err, &client.Problem{Code: "invalid_grant"})
	require.Equal(t, int64(2), ts.refreshes.Load())

	// An answer that is not problem+json (a proxy's page) is still a Problem.
	_, err = c.Click(context.Background(), "/somewhere")
	var p *client.Problem
	require.ErrorAs(t, err, &p)
	require.Equal(t, http.StatusBadGateway, p.Status)
	require.Equal(t, "unexpected_response", p.Code)
}
