package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision/kevel/kevelfake"
	"github.com/adshare/adshare/internal/faultproxy"
	"github.com/adshare/adshare/internal/loadtest"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// faultWindow is how long a dependency stays down: 10 s in the full
// profile, as the issue asks, 3 s in CI.
func faultWindow() time.Duration {
	if loadProfile() == "full" {
		return 10 * time.Second
	}
	return 3 * time.Second
}

// proxied returns rawURL with its host:port replaced by addr.
func proxied(t *testing.T, rawURL, addr string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	u.Host = addr
	return u.String()
}

// backgroundLoad sends the fleet's mix by w, without sign-ins and
// refreshes, at rate until stop is called, and returns the report then.
func backgroundLoad(t *testing.T, fleet *loadtest.Fleet, rate int, max time.Duration, w loadtest.Weights) (stop func() *loadtest.Report) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		rep *loadtest.Report
		wg  sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Sign-ins and refreshes use up the fleet's accounts and tokens.
		w.SignIn, w.Refresh = -1, -1
		rep, _ = loadtest.Run(ctx, loadtest.Config{Rate: rate, Duration: max, Timeout: 10 * time.Second, Mix: fleet.Mix(w)})
	}()
	return func() *loadtest.Report {
		cancel()
		wg.Wait()
		return rep
	}
}

// probe is one request of a fault row's checks, with what came back and
// how long it took.
type probe struct {
	status  int
	header  http.Header
	body    string
	elapsed time.Duration
	err     error
}

func send(method, target, body string, header ...string) probe {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, target, r)
	if err != nil {
		return probe{err: err}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "AdshareApp/2.1 (iPhone; iOS 18.1)")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	began := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return probe{err: err, elapsed: time.Since(began)}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return probe{status: resp.StatusCode, header: resp.Header, body: string(raw), elapsed: time.Since(began)}
}

// impressionOf posts one impression of token and returns the answer.
func impressionOf(base, token, addr string) probe {
	body, _ := json.Marshal(map[string]string{"type": "impression", "token": token, "occurred_at": time.Now().UTC().Format(time.RFC3339Nano)})
	return send(http.MethodPost, base+"/events", string(body), "X-Forwarded-For", addr)
}

// TestPostgresFaultsUnderLoad puts a fault proxy between the example
// server and PostgreSQL and, while the fleet's mix flows, takes
// PostgreSQL away and brings it back, adds latency and resets its
// connections. The rows state what the API must do.
func TestPostgresFaultsUnderLoad(t *testing.T) {
	t.Parallel()
	loadSlot(t)
	dbURL := postgrestest.URL(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	proxy, err := faultproxy.Start(u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	redisURL, prefix := testenv.Redis(t)
	env := map[string]string{"DATABASE_URL": proxied(t, dbURL, proxy.Addr()), "REDIS_URL": redisURL, "ADSHARE_REDIS_PREFIX": prefix}
	base, fleet := loadServer(t, env, loadtest.FleetConfig{Owners: 12, Spare: 1, Tokens: 800})
	// The checker reports impressions of its own owner's space, which the
	// mix leaves alone: the events stored for that owner are the ones it
	// was told were accepted.
	checked := fleet.Spare[0]
	mine := tokensOf(t, base, checked.ID, 300)

	stop := backgroundLoad(t, fleet, 100, 5*time.Minute, loadtest.Weights{})
	accepted := map[string]bool{} // checker tokens the server said it stored
	var refused []string          // and those it did not (503): the app retries them
	next := 0
	post := func() probe {
		tok := mine[next]
		next++
		p := impressionOf(base, tok, "10.250.0.1")
		if p.status == http.StatusOK && strings.Contains(p.body, `"accepted"`) {
			accepted[tok] = true
		} else {
			refused = append(refused, tok)
		}
		return p
	}

	t.Run("down, then back", func(t *testing.T) {
		require.Equal(t, http.StatusOK, post().status, "before the fault")
		proxy.Down()
		t.Cleanup(func() { _ = proxy.Up() }) // whatever fails below, the next rows get PostgreSQL back
		downAt := time.Now()
		// Ingest answers 503 with Retry-After and accepts nothing it
		// cannot commit.
		p := post()
		require.Equal(t, http.StatusServiceUnavailable, p.status, p.body)
		require.NotEmpty(t, p.header.Get("Retry-After"))
		require.Less(t, p.elapsed, 6*time.Second, "no request hangs")
		// Readiness fails.
		require.Eventually(t, func() bool { return send(http.MethodGet, base+"/readyz", "").status == http.StatusServiceUnavailable },
			5*time.Second, 100*time.Millisecond, "readiness fails while PostgreSQL is down")
		for time.Since(downAt) < faultWindow() {
			p := post()
			require.NotEqual(t, http.StatusOK, p.status, "nothing is accepted while PostgreSQL is away: %s", p.body)
			require.Less(t, p.elapsed, 6*time.Second)
			time.Sleep(200 * time.Millisecond)
		}
		require.NoError(t, proxy.Up())
		upAt := time.Now()
		require.Eventually(t, func() bool { return send(http.MethodGet, base+"/readyz", "").status == http.StatusOK },
			10*time.Second, 100*time.Millisecond)
		require.Eventually(t, func() bool { return post().status == http.StatusOK }, 5*time.Second, 100*time.Millisecond,
			"ingest recovers within 5 s of PostgreSQL's return")
		t.Logf("recovered %v after PostgreSQL came back", time.Since(upAt).Round(time.Millisecond))
	})

	t.Run("latency spike", func(t *testing.T) {
		// 100 ms each way on every PostgreSQL round trip: ingest slows
		// down and still commits.
		proxy.Set(faultproxy.Fault{Latency: 100 * time.Millisecond})
		t.Cleanup(proxy.Clear)
		p := post()
		require.Equal(t, http.StatusOK, p.status, p.body)
		require.Contains(t, p.body, `"accepted"`)
		proxy.Clear()
	})

	t.Run("half-open", func(t *testing.T) {
		proxy.Set(faultproxy.Fault{HalfOpen: true})
		t.Cleanup(proxy.Clear)
		p := post()
		t.Logf("half-open: %d in %v: %s", p.status, p.elapsed, p.body)
		require.Equal(t, http.StatusServiceUnavailable, p.status, p.body)
		require.Less(t, p.elapsed, 6*time.Second, "no request hangs on a PostgreSQL that does not answer")
		proxy.Clear()
		require.Eventually(t, func() bool { return post().status == http.StatusOK }, 10*time.Second, 100*time.Millisecond)
	})

	t.Run("connections reset", func(t *testing.T) {
		proxy.Reset()
		require.Eventually(t, func() bool { return post().status == http.StatusOK }, 5*time.Second, 50*time.Millisecond)
	})

	// The app retries what was refused: each is stored now ("accepted"),
	// or had been stored by a write whose answer was lost ("duplicate").
	for _, tok := range refused {
		p := impressionOf(base, tok, "10.250.0.1")
		require.Equal(t, http.StatusOK, p.status, p.body)
		require.True(t, strings.Contains(p.body, `"accepted"`) || strings.Contains(p.body, `"duplicate"`), p.body)
		accepted[tok] = true
	}
	rep := stop()
	loadResults(t, "faults-postgres", rep)
	require.Zero(t, rep.Route(loadtest.RouteFill).Errors, "fills go on from the caches while PostgreSQL is away")
	for _, r := range rep.Routes {
		require.Zero(t, r.Statuses["500"], "%s: a PostgreSQL out of reach is a 503, never an internal error", r.Route)
	}
	for _, r := range rep.Routes {
		require.Less(t, r.Latency.Max, 11_000.0, "%s: no request hangs past the client's deadline", r.Route)
	}
	// Every event the server said it accepted is stored, once.
	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var stored, distinct int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT tracking_id) FROM events
		WHERE type = 'impression' AND owner_id = $1`, checked.ID).Scan(&stored, &distinct))
	require.Equal(t, len(accepted), stored, "every impression the server took is stored, none it never took")
	require.Equal(t, stored, distinct, "none twice")
	require.Positive(t, stored)
}

// tokensOf fills owner's space until it has n tracking tokens, each
// fill by another device, and waits the second an impression needs on
// screen.
func tokensOf(t *testing.T, base, owner string, n int) []string {
	t.Helper()
	var tokens []string
	for i := 0; len(tokens) < n; i++ {
		p := send(http.MethodGet, base+"/ad-space/"+owner+"?gdpr_applies=false", "", "X-Adshare-Device", "checker-"+strconv.Itoa(i),
			"X-Forwarded-For", "10.251.0.1")
		require.Equal(t, http.StatusOK, p.status, p.body)
		var fill struct {
			Ads []struct {
				Tracking struct {
					Token string `json:"token"`
				} `json:"tracking"`
			} `json:"ads"`
		}
		require.NoError(t, json.Unmarshal([]byte(p.body), &fill))
		require.NotEmpty(t, fill.Ads, "the checked space is filled")
		for _, ad := range fill.Ads {
			tokens = append(tokens, ad.Tracking.Token)
		}
	}
	time.Sleep(1100 * time.Millisecond)
	return tokens
}

// login signs m in from its own address and returns the answer.
func login(base string, m *loadtest.Member) probe {
	body, _ := json.Marshal(map[string]string{"email": m.Email, "password": loadtest.FleetPassword})
	return send(http.MethodPost, base+"/auth/login", string(body), "X-Forwarded-For", m.Addr)
}

// fillOf fills owner's space once, as a new device.
func fillOf(base, owner string, device int) probe {
	return send(http.MethodGet, base+"/ad-space/"+owner+"?gdpr_applies=false", "", "X-Adshare-Device", "probe-"+strconv.Itoa(device),
		"X-Forwarded-For", "10.252.0.1")
}

// TestRedisFaultsUnderLoad puts a fault proxy between the example server
// and Redis: while Redis is down, half-open or slow, fills and ingest go
// on with local fallbacks (rate limits, burst counts), sign-in fails
// closed (its attempt limits live in Redis), and all recover once Redis
// is back.
func TestRedisFaultsUnderLoad(t *testing.T) {
	t.Parallel()
	loadSlot(t)
	redisURL, prefix := testenv.Redis(t)
	u, err := url.Parse(redisURL)
	require.NoError(t, err)
	proxy, err := faultproxy.Start(u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	env := map[string]string{"REDIS_URL": proxied(t, redisURL, proxy.Addr()), "ADSHARE_REDIS_PREFIX": prefix}
	base, fleet := loadServer(t, env, loadtest.FleetConfig{Owners: 12, Spare: 1, Tokens: 800})
	checked, signer := fleet.Spare[0], fleet.SignIns[0]
	mine := tokensOf(t, base, checked.ID, 100)
	next, device := 0, 0
	post := func() probe { next++; return impressionOf(base, mine[next-1], "10.250.0.2") }
	fill := func() probe { device++; return fillOf(base, checked.ID, device) }

	stop := backgroundLoad(t, fleet, 100, 5*time.Minute, loadtest.Weights{})
	rows := []struct {
		name  string
		apply func()
	}{
		{"down", proxy.Down},
		{"half-open", func() { proxy.Set(faultproxy.Fault{HalfOpen: true}) }},
		{"slow", func() { proxy.Set(faultproxy.Fault{Latency: 200 * time.Millisecond}) }},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			row.apply()
			t.Cleanup(func() { proxy.Clear(); _ = proxy.Up() })
			began := time.Now()
			for time.Since(began) < faultWindow() {
				f := fill()
				require.Equal(t, http.StatusOK, f.status, "fills go on: %s", f.body)
				require.Contains(t, f.body, `"tracking"`, "with ads")
				require.Less(t, f.elapsed, 2*time.Second, "a fill does not wait for Redis")
				p := post()
				require.Equal(t, http.StatusOK, p.status, "ingest goes on: %s", p.body)
				require.Contains(t, p.body, `"accepted"`)
				require.Less(t, p.elapsed, 5*time.Second)
				time.Sleep(250 * time.Millisecond)
			}
			if row.name != "slow" {
				l := login(base, signer)
				require.Equal(t, http.StatusServiceUnavailable, l.status, "sign-in fails closed without its attempt limits: %s", l.body)
				require.Less(t, l.elapsed, 8*time.Second)
			}
			proxy.Clear()
			require.NoError(t, proxy.Up())
			require.Eventually(t, func() bool { return login(base, signer).status == http.StatusOK }, 10*time.Second, 250*time.Millisecond,
				"sign-in is back once Redis is")
		})
	}
	rep := stop()
	loadResults(t, "faults-redis", rep)
	fillRep := rep.Route(loadtest.RouteFill)
	require.NotNil(t, fillRep)
	require.Zero(t, fillRep.ServerErrors+fillRep.Transport, "no fill failed while Redis was away")
	events := rep.Route(loadtest.RouteEvents)
	require.Zero(t, events.ServerErrors+events.Transport, "no ingest failed while Redis was away")
	for _, r := range rep.Routes {
		// Signed-in routes fail closed (503) when revocations cannot be
		// checked, each Redis call bounded (1.5 s) and the request by its
		// 5 s deadline; nothing hangs.
		require.Less(t, r.Latency.Max, 6000.0, "%s: no request outlives its deadline waiting on Redis", r.Route)
		require.Zero(t, r.Transport, "%s: every request answered", r.Route)
	}
}

// TestKevelFaultsUnderLoad puts a fault proxy between the example server
// and the project's fake Kevel: Kevel down, half-open or slower than the
// decision deadline opens the circuit, and fills keep answering 200 within
// the deadline (house ads or none) until Kevel is back.
func TestKevelFaultsUnderLoad(t *testing.T) {
	t.Parallel()
	loadSlot(t)
	fake := httptest.NewServer(kevelfake.NewFake(kevelfake.Config{NetworkID: 23, SiteIDs: []int64{1}, Ads: demoAds()}))
	t.Cleanup(fake.Close)
	proxy, err := faultproxy.Start(strings.TrimPrefix(fake.URL, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	env := map[string]string{"ADSHARE_KEVEL_NETWORK_ID": "23", "ADSHARE_KEVEL_SITE_ID": "1", "ADSHARE_KEVEL_URL": "http://" + proxy.Addr()}
	base, fleet := loadServer(t, env, loadtest.FleetConfig{Owners: 12, Spare: 1, Tokens: 800})
	checked := fleet.Spare[0]
	device := 0
	fill := func() probe { device++; return fillOf(base, checked.ID, device) }
	metric := func(name string) string {
		for _, line := range strings.Split(send(http.MethodGet, base+"/metrics", "").body, "\n") {
			if strings.HasPrefix(line, name+" ") {
				return strings.TrimPrefix(line, name+" ")
			}
		}
		return ""
	}

	stop := backgroundLoad(t, fleet, 100, 5*time.Minute, loadtest.Weights{})
	for _, row := range []struct {
		name  string
		apply func()
	}{
		{"down", proxy.Down},
		{"half-open", func() { proxy.Set(faultproxy.Fault{HalfOpen: true}) }},
		{"slower than the deadline", func() { proxy.Set(faultproxy.Fault{Latency: 2 * time.Second}) }},
	} {
		t.Run(row.name, func(t *testing.T) {
			row.apply()
			t.Cleanup(func() { proxy.Clear(); _ = proxy.Up() })
			began := time.Now()
			for time.Since(began) < faultWindow() {
				f := fill()
				require.Equal(t, http.StatusOK, f.status, f.body)
				require.Less(t, f.elapsed, 2*time.Second, "no fill waits past the decision deadline")
				time.Sleep(100 * time.Millisecond)
			}
			require.Contains(t, []string{"1", "2"}, metric("adshare_kevel_circuit_state"), "the circuit is open (2), or half-open (1) probing")
			proxy.Clear()
			require.NoError(t, proxy.Up())
			require.Eventually(t, func() bool {
				f := fill()
				return f.status == http.StatusOK && (strings.Contains(f.body, "Ride further") || strings.Contains(f.body, "Brew better"))
			}, 30*time.Second, 250*time.Millisecond, "Kevel's ads are back once the circuit closes")
		})
	}
	rep := stop()
	loadResults(t, "faults-kevel", rep)
	fillRep := rep.Route(loadtest.RouteFill)
	require.Zero(t, fillRep.Errors, "every fill of the mix answered while Kevel was away")
	require.Less(t, fillRep.Latency.Max, 3000.0, "no fill hangs")
}
