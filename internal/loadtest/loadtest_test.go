package loadtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/loadtest"
	"github.com/adshare/adshare/transport/realtime"
)

func TestRunCountsEachRouteAtTheRate(t *testing.T) {
	t.Parallel()
	var fills, events atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ad-space/{id}", func(w http.ResponseWriter, r *http.Request) {
		fills.Add(1)
		if r.PathValue("id") == "gone" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte(`{"ads":[]}`))
	})
	mux.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		events.Add(1)
		if r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "type", http.StatusUnsupportedMediaType)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "x", http.StatusInternalServerError) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	rep, err := loadtest.Run(context.Background(), loadtest.Config{Rate: 200, Duration: 2 * time.Second, Mix: []loadtest.Scenario{
		{Route: "GET /ad-space/{id}", Weight: 6, Next: func(n uint64) loadtest.Request {
			id := "u" + strconv.FormatUint(n%10, 10)
			if n%50 == 49 {
				id = "gone"
			}
			return loadtest.Request{URL: srv.URL + "/ad-space/" + id}
		}, OK: []int{200, 404}},
		{Route: "POST /events", Weight: 3, Next: func(n uint64) loadtest.Request {
			return loadtest.Request{Method: http.MethodPost, URL: srv.URL + "/events", Body: []byte(`{}`),
				Header: http.Header{"Content-Type": {"application/json"}}}
		}},
		{Route: "GET /broken", Weight: 1, Next: func(uint64) loadtest.Request { return loadtest.Request{URL: srv.URL + "/broken"} }},
	}})
	require.NoError(t, err)
	require.InDelta(t, 400, rep.Total.Requests, 4, "open loop: the rate times the duration")
	fill, ev, broken := rep.Route("GET /ad-space/{id}"), rep.Route("POST /events"), rep.Route("GET /broken")
	require.NotNil(t, fill)
	require.Equal(t, 240, fill.Requests, "six tenths of the mix")
	require.EqualValues(t, fills.Load(), fill.Requests)
	require.Zero(t, fill.Errors, "404 is listed as fine for this route")
	require.Equal(t, 4, fill.Statuses["404"])
	require.Equal(t, 120, ev.Requests)
	require.EqualValues(t, events.Load(), ev.Requests)
	require.Equal(t, 120, ev.Statuses["202"])
	require.Equal(t, 40, broken.Errors)
	require.Equal(t, 40, broken.ServerErrors)
	require.Equal(t, 40, rep.Total.Errors)
	fails := rep.Failures(0.001)
	require.Len(t, fails, 1)
	require.Contains(t, fails[0], "GET /broken")

	var js, md, hdr bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	require.NoError(t, rep.WriteMarkdown(&md))
	require.NoError(t, rep.WriteHDR(&hdr))
	var back struct {
		Rate   int `json:"rate_per_s"`
		Routes []struct {
			Route    string `json:"route"`
			Requests int    `json:"requests"`
			Latency  struct {
				P99 float64 `json:"p99_ms"`
			} `json:"latency"`
		} `json:"routes"`
	}
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	require.Equal(t, 200, back.Rate)
	require.Len(t, back.Routes, 3)
	require.Contains(t, md.String(), "| `POST /events` | 120 | 0 |")
	require.True(t, strings.HasPrefix(hdr.String(), "Value(ms)"), hdr.String())
}

// A server that takes its time makes requests wait: their latency counts
// from when they were due, and an open loop keeps sending meanwhile.
func TestLatencyCountsFromTheDueTime(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{}, 1) // one request at a time, 20 ms each: 50 req/s at most
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gate <- struct{}{}
		time.Sleep(20 * time.Millisecond)
		<-gate
	}))
	defer srv.Close()
	rep, err := loadtest.Run(context.Background(), loadtest.Config{Rate: 100, Duration: time.Second, Mix: []loadtest.Scenario{
		{Route: "GET /", Weight: 1, Next: func(uint64) loadtest.Request { return loadtest.Request{URL: srv.URL + "/"} }},
	}})
	require.NoError(t, err)
	r := rep.Route("GET /")
	require.Equal(t, 100, r.Requests, "every request was sent on time although answers lag")
	// 100 requests served one at a time at 20 ms: the last waits ~1 s
	// beyond its due time.
	require.Greater(t, r.Latency.Max, 900.0)
	require.Greater(t, r.Latency.P50, 300.0, "a closed loop would report 20 ms here")
}

// A request sent on time to a fast server has its service time as latency,
// not the pacing interval as well: at 4 req/s (250 ms apart) nothing nears
// 250 ms.
func TestAnOnTimeRequestCarriesNoPacingDelay(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	rep, err := loadtest.Run(context.Background(), loadtest.Config{Rate: 4, Duration: time.Second, Mix: []loadtest.Scenario{
		{Route: "GET /", Weight: 1, Next: func(uint64) loadtest.Request { return loadtest.Request{URL: srv.URL + "/"} }},
	}})
	require.NoError(t, err)
	r := rep.Route("GET /")
	require.Equal(t, 4, r.Requests)
	require.Less(t, r.Latency.P50, 100.0, "latency counts from when a request was due, and it was sent when due")
}

// Past the server's capacity the open loop stops at MaxInFlight requests
// outstanding, instead of opening connections without end; the requests
// held back leave late, and their latency counts from when they were due.
func TestInFlightIsBounded(t *testing.T) {
	t.Parallel()
	var now, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(100 * time.Millisecond)
		now.Add(-1)
	}))
	defer srv.Close()
	rep, err := loadtest.Run(context.Background(), loadtest.Config{Rate: 200, Duration: 500 * time.Millisecond, MaxInFlight: 4,
		Mix: []loadtest.Scenario{{Route: "GET /", Weight: 1, Next: func(uint64) loadtest.Request { return loadtest.Request{URL: srv.URL} }}}})
	require.NoError(t, err)
	require.LessOrEqual(t, peak.Load(), int64(4), "no more than MaxInFlight at once")
	r := rep.Route("GET /")
	require.Positive(t, r.Requests)
	require.Greater(t, r.Latency.Max, 200.0, "the held-back requests' wait counts")
	require.Positive(t, rep.Unsent, "what could not leave in the run is counted")
	require.Equal(t, 100, rep.Unsent+r.Requests, "every request due is sent or counted unsent")
	require.NotEmpty(t, rep.Failures(0.001))
	require.Contains(t, rep.Failures(0.001)[0], "never sent")
}

// A run closes its connections when it ends: a capacity search's steps
// would otherwise pile up idle connections until descriptors run out.
func TestARunClosesItsConnections(t *testing.T) {
	t.Parallel()
	var open atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	defer srv.Close()
	_, err := loadtest.Run(context.Background(), loadtest.Config{Rate: 200, Duration: 300 * time.Millisecond,
		Mix: []loadtest.Scenario{{Route: "GET /", Weight: 1, Next: func(uint64) loadtest.Request { return loadtest.Request{URL: srv.URL} }}}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return open.Load() == 0 }, 2*time.Second, 10*time.Millisecond,
		"%d connections left open after the run", open.Load())
}

func TestATimeoutIsAnError(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	rep, err := loadtest.Run(context.Background(), loadtest.Config{Rate: 20, Duration: 500 * time.Millisecond, Timeout: 200 * time.Millisecond,
		Mix: []loadtest.Scenario{{Route: "GET /", Weight: 1, Next: func(uint64) loadtest.Request { return loadtest.Request{URL: srv.URL} }}}})
	require.NoError(t, err)
	r := rep.Route("GET /")
	require.Equal(t, 10, r.Requests)
	require.Equal(t, 10, r.Transport)
	require.Equal(t, 10, r.Errors)
	require.NotEmpty(t, r.ErrorSamples)
	require.LessOrEqual(t, r.Latency.Max, 400.0, "no request hangs past its deadline")
}

func TestBadConfigs(t *testing.T) {
	t.Parallel()
	next := func(uint64) loadtest.Request { return loadtest.Request{URL: "http://127.0.0.1:1/"} }
	for name, cfg := range map[string]loadtest.Config{
		"no rate":      {Duration: time.Second, Mix: []loadtest.Scenario{{Route: "GET /", Weight: 1, Next: next}}},
		"empty mix":    {Rate: 1, Duration: time.Second},
		"no weight":    {Rate: 1, Duration: time.Second, Mix: []loadtest.Scenario{{Route: "GET /", Next: next}}},
		"bad route":    {Rate: 1, Duration: time.Second, Mix: []loadtest.Scenario{{Route: "GET /{", Weight: 1, Next: next}}},
		"no generator": {Rate: 1, Duration: time.Second, Mix: []loadtest.Scenario{{Route: "GET /", Weight: 1}}},
	} {
		_, err := loadtest.Run(context.Background(), cfg)
		require.Error(t, err, name)
	}
}

// The capacity search finds the rate a server with a fixed service rate
// sustains: one request at a time, 4 ms each, is 250 req/s.
func TestCapacityFindsTheKnee(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gate <- struct{}{}
		time.Sleep(4 * time.Millisecond)
		<-gate
	}))
	defer srv.Close()
	res, err := loadtest.Capacity(context.Background(), loadtest.CapacityConfig{
		Config: loadtest.Config{Duration: time.Second, Mix: []loadtest.Scenario{
			{Route: "GET /", Weight: 1, Next: func(uint64) loadtest.Request { return loadtest.Request{URL: srv.URL} }}}},
		Start: 40, Growth: 2, Route: "GET /", MaxP99: 50 * time.Millisecond, Pause: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(res.Steps), 3)
	require.GreaterOrEqual(t, res.Sustained, 40, "steps: %+v", res.Steps)
	require.LessOrEqual(t, res.Sustained, 250, "more than the service rate cannot hold: %+v", res.Steps)
	last := res.Steps[len(res.Steps)-1]
	require.NotZero(t, last.Rate)
	var failed bool
	for _, s := range res.Steps {
		if !s.Held {
			failed = true
			require.Contains(t, s.Why, "p99")
		}
	}
	require.True(t, failed, "the search went past the knee")
	for _, s := range res.Steps {
		if s.Held {
			require.LessOrEqual(t, s.Rate, res.Sustained, "the answer is the highest rate that held")
		}
	}
}

// A step that fails on a passing burst is tried again when Retries allows,
// and the rate holds; without retries the same burst ends the search.
func TestCapacityRetriesAFailedStep(t *testing.T) {
	t.Parallel()
	for _, retries := range []int{0, 1} {
		var slow atomic.Bool
		slow.Store(true)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slow.Load() {
				time.Sleep(80 * time.Millisecond)
			}
		}))
		// The burst is over during the pause after the first step.
		time.AfterFunc(650*time.Millisecond, func() { slow.Store(false) })
		res, err := loadtest.Capacity(context.Background(), loadtest.CapacityConfig{
			Config: loadtest.Config{Duration: 500 * time.Millisecond, Mix: []loadtest.Scenario{
				{Route: "GET /", Weight: 1, Next: func(uint64) loadtest.Request {
					return loadtest.Request{URL: srv.URL}
				}}}},
			Start: 40, Max: 40, Route: "GET /", MaxP99: 50 * time.Millisecond, Retries: retries,
			Pause: 300 * time.Millisecond,
		})
		srv.Close()
		require.NoError(t, err)
		require.False(t, res.Steps[0].Held, "steps: %+v", res.Steps)
		if retries == 0 {
			require.Less(t, res.Sustained, 40, "steps: %+v", res.Steps)
			for _, s := range res.Steps[1:] {
				require.Less(t, s.Rate, 40, "the search bisects below the failed start")
			}
		} else {
			require.Equal(t, 40, res.Sustained, "steps: %+v", res.Steps)
			require.Len(t, res.Steps, 2)
			require.True(t, res.Steps[1].Held)
		}
	}
}

// wsFake is a /ws endpoint that answers as the server does: a welcome and
// one subscribed a topic, then ad.updated and metrics.live on the space;
// then each connection's close code (0: stays open) is taken from closes.
func wsFake(t *testing.T, closes chan websocket.StatusCode) *httptest.Server {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" || r.Header.Get("Authorization") != "Bearer owner-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		conns.Add(1)
		ctx := r.Context()
		write := func(typ, topic, payload string) {
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"v":1,"type":"`+typ+`","topic":"`+topic+`","payload":`+payload+`}`))
		}
		write("welcome", "", `{"user_id":"x"}`)
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		var sub struct {
			Payload struct {
				Topics []struct {
					Topic string `json:"topic"`
				} `json:"topics"`
			} `json:"payload"`
		}
		require.NoError(t, json.Unmarshal(data, &sub))
		for _, tp := range sub.Payload.Topics {
			write("subscribed", "", `{"topic":"`+tp.Topic+`"}`)
		}
		space := sub.Payload.Topics[0].Topic
		write("ad.updated", space, `{"kind":"settings"}`)
		write("metrics.live", space, `{"impressions":0}`)
		if code := <-closes; code != 0 {
			_ = c.Close(code, "test")
			return
		}
		_, _, _ = c.Read(ctx) // until the client closes
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The sockets count what they receive, reconnect after a close that
// asks for it (and not after one that does not), and report it all.
func TestSocketsCountReconnectAndReport(t *testing.T) {
	t.Parallel()
	closes := make(chan websocket.StatusCode, 8)
	srv := wsFake(t, closes)
	owner := &loadtest.Member{ID: "0190a000-0000-7000-8000-000000000001", Access: "owner-token", Email: "o@example.com", Addr: "10.0.0.1"}
	fleet := &loadtest.Fleet{Base: srv.URL, Owners: []*loadtest.Member{owner}}

	_, err := fleet.OpenSockets(context.Background(), loadtest.SocketConfig{Clients: -1})
	require.Error(t, err, "a negative count")
	_, err = (&loadtest.Fleet{Base: srv.URL}).OpenSockets(context.Background(), loadtest.SocketConfig{})
	require.Error(t, err, "no owners")
	bad := &loadtest.Fleet{Base: srv.URL, Owners: []*loadtest.Member{{ID: owner.ID, Access: "forged"}}}
	_, err = bad.OpenSockets(context.Background(), loadtest.SocketConfig{Timeout: time.Second})
	require.ErrorContains(t, err, "401", "a client that cannot connect fails the opening")

	ss, err := fleet.OpenSockets(context.Background(), loadtest.SocketConfig{Clients: 2})
	require.NoError(t, err)
	_, err = fleet.OpenSockets(context.Background(), loadtest.SocketConfig{})
	require.Error(t, err, "one set of sockets at a time")
	closes <- realtime.CloseSlow           // reconnect
	closes <- 0                            // the reconnection stays
	closes <- realtime.CloseSessionRevoked // sign in again: no reconnection
	require.Eventually(t, func() bool {
		r := ss.Report(0)
		return r.UnexpectedCloses == 2 && r.Connects == 3
	}, 5*time.Second, 10*time.Millisecond)
	rep := ss.Report(0)
	require.Equal(t, 2, rep.Clients)
	require.Equal(t, 1, rep.Open, "the revoked one stays closed")
	require.Equal(t, map[string]int{"4002": 1, "4501": 1}, rep.CloseCodes)
	require.Zero(t, rep.ConnectErrors)
	require.Equal(t, 3, rep.Messages["welcome"])
	require.Equal(t, 9, rep.Messages["subscribed"], "a space, the user's alerts and the broadcasts each time")
	require.Equal(t, 3, rep.Messages["metrics.live"])
	require.Equal(t, 3, rep.Messages["ad.updated"])
	require.Zero(t, rep.WithoutMetrics)

	r, err := loadtest.Run(context.Background(), loadtest.Config{Rate: 10, Duration: 200 * time.Millisecond, Sockets: ss,
		Mix: []loadtest.Scenario{{Route: "GET /", Weight: 1, Next: func(uint64) loadtest.Request { return loadtest.Request{URL: srv.URL} }}}})
	require.NoError(t, err)
	require.NotNil(t, r.Sockets)
	require.Contains(t, strings.Join(r.Failures(1), "\n"), "websocket: 1 of 2 open")
	var md, js bytes.Buffer
	require.NoError(t, r.WriteMarkdown(&md))
	require.Contains(t, md.String(), "| `metrics.live` | 3 |")
	require.Contains(t, md.String(), "WebSocket clients: 2, 1 open at the end; 3 connections, 0 failed, 2 unexpected closes 4002×1, 4501×1;")
	require.NoError(t, r.WriteJSON(&js))
	require.Contains(t, js.String(), `"unexpected_closes": 2`)

	final := ss.Close()
	require.Equal(t, 2, final.UnexpectedCloses, "closing is not an unexpected close")
	closes <- 0
	again, err := fleet.OpenSockets(context.Background(), loadtest.SocketConfig{Clients: 1, Timeout: time.Second})
	require.NoError(t, err, "closed sockets can be opened again")
	require.Equal(t, 1, again.Close().Open)
}

func TestSetupRefusesBadPayoutConfigs(t *testing.T) {
	t.Parallel()
	promote := func(context.Context, string, string) error { return nil }
	earn := func(context.Context, string, int64) error { return nil }
	for name, cfg := range map[string]loadtest.FleetConfig{
		"payees without Earn": {Payees: 2},
		"negative payees":     {Payees: -1, Earn: earn},
		"negative payout":     {Payees: 1, Earn: earn, PayoutAmount: -5},
	} {
		cfg.Base, cfg.Promote = "http://127.0.0.1:1", promote
		_, err := loadtest.Setup(context.Background(), cfg)
		require.Error(t, err, name)
		require.NotContains(t, err.Error(), "127.0.0.1", "%s: refused before any request", name)
	}
}
