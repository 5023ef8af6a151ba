package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
	"github.com/adshare/adshare/transport/realtime"
)

// buildVersion builds the server binary with version set at link time,
// as a release does, and returns its path.
func buildVersion(t *testing.T, dir, v string) string {
	t.Helper()
	bin := filepath.Join(dir, "server-"+v)
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+v, "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run(), "build the server %s", v)
	return bin
}

// instance is one running server process.
type instance struct {
	name, version, base string
	cmd                 *exec.Cmd
	logPath             string
	exited              chan struct{} // closed when the process has exited
	err                 error         // its exit's error, once exited
}

// startInstance starts bin on a free loopback port with env (and nothing
// of the test's own environment but PATH and HOME).
func startInstance(t *testing.T, dir, bin, version, name string, env map[string]string) *instance {
	t.Helper()
	addr := freeAddr(t)
	in := &instance{name: name, version: version, base: "http://" + addr, logPath: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	in.cmd = exec.Command(bin)
	in.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "ADSHARE_ADDR=" + addr}
	for k, v := range env {
		in.cmd.Env = append(in.cmd.Env, k+"="+v)
	}
	log, err := os.Create(in.logPath)
	require.NoError(t, err)
	in.cmd.Stdout, in.cmd.Stderr = log, log
	require.NoError(t, in.cmd.Start())
	go func() {
		in.err = in.cmd.Wait()
		log.Close()
		close(in.exited)
	}()
	t.Cleanup(func() {
		_ = in.cmd.Process.Kill() // an error when it has exited
		<-in.exited
	})
	return in
}

// waitUp waits until the instance answers /healthz.
func (in *instance) waitUp(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		select {
		case <-in.exited:
			t.Fatalf("%s exited: %v\n%s", in.name, in.err, in.logs(t))
		default:
		}
		resp, err := http.Get(in.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "%s up", in.name)
}

func (in *instance) logs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(in.logPath)
	require.NoError(t, err)
	return string(b)
}

// logLines are the instance's JSON log lines with message msg.
func (in *instance) logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(in.logs(t)))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// backend is an instance as the proxy sees it: ready while its /readyz
// answers 200.
type backend struct {
	in     *instance
	target *url.URL
	ready  atomic.Bool
	served atomic.Int64
	stop   chan struct{}
}

// rollProxy is a round-robin reverse proxy on loopback over the ready
// backends, as a load balancer that polls readiness every 50 ms is.
type rollProxy struct {
	srv       *httptest.Server
	transport *http.Transport
	mu        sync.Mutex
	backends  []*backend
	next      int
	errors    atomic.Int64 // requests the proxy answered itself (no backend, or a backend failed)
	errorLog  sync.Map
}

func newRollProxy(t *testing.T) *rollProxy {
	t.Helper()
	p := &rollProxy{transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		p.srv.Close()
		p.mu.Lock()
		for _, b := range p.backends {
			close(b.stop)
		}
		p.mu.Unlock()
	})
	return p
}

func (p *rollProxy) serve(w http.ResponseWriter, r *http.Request) {
	b := p.pick()
	if b == nil {
		p.fail("no ready backend for " + r.URL.Path)
		http.Error(w, "no ready backend", http.StatusServiceUnavailable)
		return
	}
	b.served.Add(1)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(b.target)
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			pr.SetXForwarded() // appends the client's address; the servers trust the proxy's
		},
		Transport: p.transport,
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set("X-Test-Backend", b.in.name)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.fail(fmt.Sprintf("%s %s on %s: %v", r.Method, r.URL.Path, b.in.name, err))
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	rp.ServeHTTP(w, r)
}

func (p *rollProxy) fail(msg string) {
	p.errors.Add(1)
	p.errorLog.Store(msg, true)
}

// pick is the next ready backend, round robin; nil when none is.
func (p *rollProxy) pick() *backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range len(p.backends) {
		b := p.backends[p.next%len(p.backends)]
		p.next++
		if b.ready.Load() {
			return b
		}
	}
	return nil
}

// add puts the instance behind the proxy; it takes requests once its
// readiness passes.
func (p *rollProxy) add(in *instance) *backend {
	u, _ := url.Parse(in.base)
	b := &backend{in: in, target: u, stop: make(chan struct{})}
	go func() {
		client := &http.Client{Timeout: 500 * time.Millisecond}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			resp, err := client.Get(in.base + "/readyz")
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.ready.Store(ok)
			select {
			case <-b.stop:
				return
			case <-tick.C:
			}
		}
	}()
	p.mu.Lock()
	p.backends = append(p.backends, b)
	p.mu.Unlock()
	return b
}

// remove takes the backend out of the pool.
func (p *rollProxy) remove(b *backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.backends {
		if x == b {
			p.backends = append(p.backends[:i], p.backends[i+1:]...)
			close(b.stop)
			return
		}
	}
}

// loadFailures collects what went wrong for the clients of the load.
type loadFailures struct {
	mu   sync.Mutex
	msgs []string
}

func (f *loadFailures) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *loadFailures) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.msgs...)
}

// call sends one request through the proxy and decodes a JSON answer;
// it returns the status and the backend that served it.
func call(client *http.Client, method, url, token string, body any, out any, header ...string) (int, string, error) {
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, "", err
		}
		r = strings.NewReader(string(raw))
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, "", err
		}
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, resp.Header.Get("X-Test-Backend"), fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header.Get("X-Test-Backend"), nil
}

type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// wsWatcher is a native app's realtime connection through the proxy: it
// follows the owner's space, and after a drop reconnects and resumes from
// the last sequence it saw.
type wsWatcher struct {
	first      realtime.Position // where its first subscription started
	last       atomic.Uint64
	reconnects atomic.Int64
	recovered  atomic.Int64 // resumed subscriptions that replayed missed events
	subscribed chan struct{}
	mu         sync.Mutex
	closes     map[int]int // close codes of the dropped connections
}

func (w *wsWatcher) run(ctx context.Context, wsURL, token, topic string, fail *loadFailures) {
	var pos *realtime.Position
	once := sync.Once{}
	for ctx.Err() == nil {
		c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
		if err != nil {
			if ctx.Err() == nil {
				fail.add("ws dial: %v", err)
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		sub := map[string]any{"topic": topic}
		if pos != nil {
			sub["since"] = pos
		}
		msg, _ := json.Marshal(map[string]any{"v": 1, "type": "subscribe", "payload": map[string]any{"topics": []any{sub}}})
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			_ = c.CloseNow()
			continue
		}
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				_ = c.CloseNow()
				if ctx.Err() != nil {
					return
				}
				code := int(websocket.CloseStatus(err))
				if !realtime.Reconnect(code) {
					fail.add("ws closed with %d, which says not to reconnect: %v", code, err)
					return
				}
				w.reconnects.Add(1)
				w.mu.Lock()
				w.closes[code]++
				w.mu.Unlock()
				time.Sleep(50 * time.Millisecond)
				break
			}
			var env realtime.Envelope
			if err := json.Unmarshal(data, &env); err != nil {
				fail.add("ws: bad message %s", data)
				continue
			}
			switch env.Type {
			case realtime.TypeSubscribed:
				var p realtime.SubscribedPayload
				_ = json.Unmarshal(env.Payload, &p)
				if pos == nil {
					pos = &p.Position
					w.first = p.Position
					w.last.Store(p.Position.Seq)
					once.Do(func() { close(w.subscribed) })
				} else if p.Replayed > 0 {
					w.recovered.Add(1)
				}
			case realtime.TypeAdUpdated:
				if env.Epoch != pos.Epoch {
					fail.add("ws: epoch changed from %s to %s", pos.Epoch, env.Epoch)
				}
				if env.Seq != pos.Seq+1 {
					fail.add("ws: seq %d after %d", env.Seq, pos.Seq)
				}
				pos = &realtime.Position{Seq: env.Seq, Epoch: env.Epoch}
				w.last.Store(env.Seq)
			case realtime.TypeReload:
				fail.add("ws: reload %s: events were lost", env.Payload)
			case realtime.TypeError:
				fail.add("ws: error %s", env.Payload)
			}
		}
	}
}

// TestRollingUpdate runs two instances of the server binary on one
// PostgreSQL and Redis behind a round-robin proxy that follows their
// readiness, loads them (sign-in and refresh, fills, impressions, settings
// changes watched over WebSockets), and replaces each in turn with a newer
// build (start the new one, wait until it is ready, SIGTERM the old one:
// readiness fails, the proxy stops sending, the server drains and stops).
// No request fails at the proxy, every accepted event is stored, refresh
// tokens issued by one instance work on the others, WebSocket clients
// reconnect and resume without a gap, and the migrations ran once.
func TestRollingUpdate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const oldVersion, newVersion = "v1.0.0", "v1.1.0"
	oldBin := buildVersion(t, dir, oldVersion)
	newBin := buildVersion(t, dir, newVersion)

	dbURL := postgrestest.URL(t)
	redisURL, prefix := testenv.Redis(t)
	p := newRollProxy(t)
	env := merge(fleetKeyEnv(), map[string]string{
		"DATABASE_URL": dbURL, "REDIS_URL": redisURL, "ADSHARE_REDIS_PREFIX": prefix,
		"ADSHARE_ISSUER":           p.srv.URL, // one issuer for the fleet: what clients see
		"ADSHARE_TRUSTED_PROXIES":  "127.0.0.1/32",
		"ADSHARE_MIGRATE_ON_START": "true", "ADSHARE_DRAIN_DELAY": "1s", "ADSHARE_SHUTDOWN_TIMEOUT": "10s",
		"ADSHARE_CLIENT_RATE": "60000000", "ADSHARE_USER_RATE": "60000000", "ADSHARE_ACCESS_LOG": "false", "ADSHARE_LOG_FORMAT": "json",
	})

	// Two old instances start together; both migrate on start.
	a := startInstance(t, dir, oldBin, oldVersion, "a-"+oldVersion, env)
	b := startInstance(t, dir, oldBin, oldVersion, "b-"+oldVersion, env)
	a.waitUp(t)
	b.waitUp(t)
	old := []*backend{p.add(a), p.add(b)}
	require.Eventually(t, func() bool { return old[0].ready.Load() && old[1].ready.Load() }, 10*time.Second, 10*time.Millisecond)
	for _, in := range []*instance{a, b} {
		_, metrics := get(t, in.base+"/metrics")
		require.Contains(t, metrics, `adshare_build_info{version="`+oldVersion+`"} 1`)
	}

	client := &http.Client{Timeout: 10 * time.Second}
	const pw = "a long enough passphrase"
	register := func(email string) uuid.UUID {
		var out struct {
			User struct {
				ID uuid.UUID `json:"id"`
			} `json:"user"`
		}
		_, _, err := call(client, http.MethodPost, p.srv.URL+"/auth/register", "", map[string]string{"email": email, "password": pw}, &out)
		require.NoError(t, err)
		return out.User.ID
	}
	login := func(base, email string) (tokenPair, string) {
		var tp tokenPair
		_, by, err := call(client, http.MethodPost, base+"/auth/login", "", map[string]string{"email": email, "password": pw}, &tp)
		require.NoError(t, err)
		return tp, by
	}
	owner := register("owner@example.com")
	ownerTokens, _ := login(p.srv.URL, "owner@example.com")
	sessionUsers := []string{"s0@example.com", "s1@example.com", "s2@example.com"}
	for _, e := range sessionUsers {
		register(e)
	}
	// A session begun on A goes on on B, and one begun on the old build
	// goes on on the new one (checked after the rollout).
	onA, _ := login(a.base, "s0@example.com")
	var fromB tokenPair
	_, _, err := call(client, http.MethodPost, b.base+"/auth/refresh", "", map[string]string{"refresh_token": onA.RefreshToken}, &fromB)
	require.NoError(t, err, "a refresh token issued by A works on B")
	_, _, err = call(client, http.MethodGet, a.base+"/users/me", fromB.AccessToken, nil, nil)
	require.NoError(t, err, "an access token issued by B works on A")
	kept, _ := login(a.base, "s1@example.com")

	var settings struct {
		Settings map[string]any `json:"settings"`
	}
	_, _, err = call(client, http.MethodGet, p.srv.URL+"/ad-space/settings", ownerTokens.AccessToken, nil, &settings)
	require.NoError(t, err)

	var (
		fail        loadFailures
		wg          sync.WaitGroup
		acceptedMu  sync.Mutex
		accepted    = map[uuid.UUID]bool{}
		requests    atomic.Int64
		crossed     atomic.Int64 // refreshes served by another instance than the one that issued the token
		settingsPut atomic.Int64
	)
	loadCtx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	wsCtx, stopWS := context.WithCancel(context.Background())
	defer stopWS()

	// WebSocket watchers, subscribed before anything is published.
	wsURL := "ws" + strings.TrimPrefix(p.srv.URL, "http") + "/ws"
	watchers := make([]*wsWatcher, 6)
	for i := range watchers {
		w := &wsWatcher{subscribed: make(chan struct{}), closes: map[int]int{}}
		watchers[i] = w
		wg.Go(func() { w.run(wsCtx, wsURL, ownerTokens.AccessToken, realtime.SpaceTopic(owner), &fail) })
	}
	for _, w := range watchers {
		select {
		case <-w.subscribed:
		case <-time.After(10 * time.Second):
			t.Fatalf("a watcher did not subscribe: %v", fail.list())
		}
	}

	// Sessions: log in, then refresh and use the new access token, again
	// and again, wherever the proxy sends each request.
	// Each refresh comes from another device's address, as a fleet's do
	// (a device refreshes every quarter of an hour, well within the
	// per-client limit).
	for w, email := range sessionUsers {
		wg.Go(func() {
			tp, issuer := login(p.srv.URL, email)
			for n := 0; loadCtx.Err() == nil; n++ {
				var next tokenPair
				requests.Add(1)
				device := fmt.Sprintf("10.%d.%d.%d", w, n/250%250, n%250+1)
				_, by, err := call(client, http.MethodPost, p.srv.URL+"/auth/refresh", "", map[string]string{"refresh_token": tp.RefreshToken}, &next,
					"X-Forwarded-For", device)
				if err != nil {
					fail.add("refresh: %v", err)
					return
				}
				if by != issuer {
					crossed.Add(1)
				}
				tp, issuer = next, by
				requests.Add(1)
				if _, _, err := call(client, http.MethodGet, p.srv.URL+"/users/me", tp.AccessToken, nil, nil); err != nil {
					fail.add("users/me: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	// Fills of the owner's space by anonymous viewers.
	for i := range 2 {
		wg.Go(func() {
			for n := 0; loadCtx.Err() == nil; n++ {
				requests.Add(1)
				if _, _, err := call(client, http.MethodGet, fmt.Sprintf("%s/ad-space/%s?device=fill-%d-%d", p.srv.URL, owner, i, n), "", nil, nil); err != nil {
					fail.add("fill: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	// Impressions, ten a request; every accepted one must be stored.
	sealer := newImpressionSealer(t, env["ADSHARE_TRACKING_KEYS"])
	for range 3 {
		wg.Go(func() {
			for loadCtx.Err() == nil {
				tokens := make([]string, 10)
				for i := range tokens {
					tokens[i] = sealer.seal(t, owner)
				}
				requests.Add(1)
				res, err := postImpressions(client, p.srv.URL, tokens)
				if err != nil {
					fail.add("events: %v", err)
					continue
				}
				acceptedMu.Lock()
				for _, r := range res {
					if r.Status == "accepted" || r.Status == "duplicate" {
						accepted[r.TrackingID] = true
					} else {
						fail.add("event %s: %s", r.TrackingID, r.Status)
					}
				}
				acceptedMu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	// The owner changes settings: each change is an ad.updated with the
	// next sequence on the space's topic, which the watchers follow.
	var writer sync.WaitGroup
	writer.Go(func() {
		for n := 0; loadCtx.Err() == nil; n++ {
			settings.Settings["refresh_interval_seconds"] = 30 + n%3000
			requests.Add(1)
			if _, _, err := call(client, http.MethodPut, p.srv.URL+"/ad-space/settings", ownerTokens.AccessToken, settings.Settings, nil); err != nil {
				fail.add("settings: %v", err)
				continue
			}
			settingsPut.Add(1)
			time.Sleep(25 * time.Millisecond)
		}
	})

	// The rollout: for each old instance, start a new one, wait until the
	// proxy sends to it, then drain the old one and take it out.
	time.Sleep(time.Second)
	var fresh []*instance
	for i, ob := range old {
		in := startInstance(t, dir, newBin, newVersion, fmt.Sprintf("%c-%s", 'a'+i, newVersion), env)
		in.waitUp(t)
		nb := p.add(in)
		require.Eventually(t, nb.ready.Load, 10*time.Second, 10*time.Millisecond, "%s ready", in.name)
		fresh = append(fresh, in)
		time.Sleep(300 * time.Millisecond)

		require.NoError(t, ob.in.cmd.Process.Signal(syscall.SIGTERM))
		require.Eventually(t, func() bool { return !ob.ready.Load() }, 5*time.Second, 10*time.Millisecond, "%s leaves the pool as it drains", ob.in.name)
		select {
		case <-ob.in.exited:
			require.NoError(t, ob.in.err, "%s stops cleanly:\n%s", ob.in.name, ob.in.logs(t))
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not stop", ob.in.name)
		}
		p.remove(ob)
	}
	time.Sleep(time.Second)
	stopLoad()
	writer.Wait()

	// Every watcher reaches the last change, having seen every one.
	published := uint64(settingsPut.Load())
	for i, w := range watchers {
		require.Eventually(t, func() bool { return w.last.Load() >= w.first.Seq+published }, 10*time.Second, 10*time.Millisecond,
			"watcher %d saw %d of %d changes; failures: %v", i, w.last.Load()-w.first.Seq, published, fail.list())
		require.Equal(t, w.first.Seq+published, w.last.Load(), "watcher %d", i)
		require.GreaterOrEqual(t, w.reconnects.Load(), int64(1), "watcher %d was on an old instance and moved", i)
		w.mu.Lock()
		require.Equal(t, map[int]int{realtime.CloseShutdown: int(w.reconnects.Load())}, w.closes, "watcher %d: the draining server said goodbye", i)
		w.mu.Unlock()
	}
	stopWS()
	wg.Wait()

	var proxyErrors []string
	p.errorLog.Range(func(k, _ any) bool { proxyErrors = append(proxyErrors, k.(string)); return true })
	require.Zero(t, p.errors.Load(), "requests failed at the proxy: %v", proxyErrors)
	require.Empty(t, fail.list(), "failed client requests")
	require.Positive(t, crossed.Load(), "refresh tokens moved between instances")
	for _, in := range append([]*instance{a, b}, fresh...) {
		require.NotEmpty(t, in.logLines(t, "listening"), in.name)
	}
	p.mu.Lock()
	for _, nb := range p.backends {
		require.Positive(t, nb.served.Load(), "%s served requests", nb.in.name)
	}
	p.mu.Unlock()
	for _, ob := range old {
		require.Positive(t, ob.served.Load(), "%s served requests", ob.in.name)
		require.NotEmpty(t, ob.in.logLines(t, "draining: not ready, still serving"), ob.in.name)
		require.NotEmpty(t, ob.in.logLines(t, "stopped"), ob.in.name)
	}

	// The fleet runs the new build, and the old sessions go on on it.
	for _, in := range fresh {
		_, metrics := get(t, in.base+"/metrics")
		require.Contains(t, metrics, `adshare_build_info{version="`+newVersion+`"} 1`, in.name)
		starting := in.logLines(t, "starting")
		require.Len(t, starting, 1)
		require.Equal(t, newVersion, starting[0]["version"])
	}
	_, _, err = call(client, http.MethodPost, fresh[1].base+"/auth/refresh", "", map[string]string{"refresh_token": kept.RefreshToken}, nil)
	require.NoError(t, err, "a refresh token issued by the old build works on the new one")

	// No accepted event is lost.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	ids := make([]uuid.UUID, 0, len(accepted))
	for id := range accepted {
		ids = append(ids, id)
	}
	var stored int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(DISTINCT tracking_id) FROM events WHERE tracking_id = ANY($1)`, ids).Scan(&stored))
	require.Equal(t, len(ids), stored, "every accepted event is stored")

	// The migrations ran once: each version is recorded once, applied by
	// one of the first two instances, and the new build found none to run.
	var versions, distinct int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT version_id) FROM `+postgres.MigrationTable+` WHERE version_id > 0`).Scan(&versions, &distinct))
	require.Positive(t, versions)
	require.Equal(t, distinct, versions, "no migration recorded twice")
	applied := func(in *instance) int {
		lines := in.logLines(t, "migrations applied")
		require.Len(t, lines, 1, in.name)
		return int(lines[0]["count"].(float64))
	}
	require.Equal(t, versions, applied(a)+applied(b), "the old instances applied each migration once between them")
	for _, in := range fresh {
		require.Zero(t, applied(in), "%s had nothing to migrate", in.name)
	}
	var recovered, reconnects int64
	for _, w := range watchers {
		recovered += w.recovered.Load()
		reconnects += w.reconnects.Load()
	}
	t.Logf("%d requests through the proxy, 0 failed; %d events accepted and stored; %d refreshes crossed instances; "+
		"%d settings changes seen by %d watchers without a gap over %d reconnects (%d resumed with replay)",
		requests.Load(), len(ids), crossed.Load(), published, len(watchers), reconnects, recovered)
}
