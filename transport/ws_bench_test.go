package transport

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/transport/realtime"
)

// benchAuth accepts any token that is a user id, and every permission: the
// benchmarks measure the channel, not token verification.
type benchAuth struct{}

func (benchAuth) Authenticate(_ context.Context, token string) (auth.Principal, error) {
	id, err := uuid.Parse(token)
	if err != nil {
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	return auth.Principal{UserID: id, SessionID: id, Role: auth.RoleUser, IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}, nil
}

func (benchAuth) Authorize(context.Context, auth.Principal, auth.Permission) error { return nil }

// bareServer is coder/websocket alone: accept, then read until closed;
// broadcast writes a message to every connection through a queue and a
// writer goroutine each (the usual shape of a fan-out server).
type bareServer struct {
	mu    sync.Mutex
	conns map[chan []byte]struct{}
}

func (s *bareServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	q := make(chan []byte, 256)
	s.mu.Lock()
	s.conns[q] = struct{}{}
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		defer cancel()
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	for {
		select {
		case m := <-q:
			if c.Write(ctx, websocket.MessageText, m) != nil {
				return
			}
		case <-ctx.Done():
			s.mu.Lock()
			delete(s.conns, q)
			s.mu.Unlock()
			_ = c.CloseNow()
			return
		}
	}
}

func (s *bareServer) broadcast(m []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for q := range s.conns {
		q <- m
	}
}

// benchClients dials n clients to url; each runs hello (after dialing) and
// then counts the messages it reads into got.
func benchClients(b *testing.B, url string, n int, hello func(*websocket.Conn) error, got *atomic.Int64) func() {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := hello(c); err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
				got.Add(1)
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

func heapAndStacks() uint64 {
	heap, stacks := memoryInUse()
	return heap + stacks
}

// memoryInUse is the heap and the goroutine stacks in use after a GC.
func memoryInUse() (heap, stacks uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

// adshareHello authenticates in the first message and subscribes to the
// alerts topic, reading the answers.
func adshareHello(c *websocket.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, m := range []string{
		`{"v":1,"type":"auth","payload":{"token":"` + uuid.NewString() + `"}}`,
		`{"v":1,"type":"subscribe","payload":{"topics":[{"topic":"alerts"}]}}`,
	} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			return err
		}
		if _, _, err := c.Read(ctx); err != nil {
			return err
		}
	}
	return nil
}

func newBenchChannel(b *testing.B) (url string, pub *realtime.Publisher, hub *realtime.Hub) {
	b.Helper()
	broker := memory.NewBroker(nil)
	hub, err := realtime.NewHub(realtime.HubConfig{Broker: broker, Auth: benchAuth{}, QueueSize: 1024, MessageRate: 1000, MessageBurst: 1000})
	if err != nil {
		b.Fatal(err)
	}
	if err := hub.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = hub.Stop(context.Background()) })
	h, err := New(Config{Auth: &auth.Service{}, Realtime: hub}) // first-message auth only: the hub's benchAuth
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", realtime.NewPublisher(broker, nil), hub
}

// BenchmarkWSIdleMemory holds 10,000 idle connections on a bare
// coder/websocket server and on the channel (authenticated and
// subscribed), their clients in another process (this test binary again,
// TestWSIdleClientProcess), and reports the heap and stacks per
// connection on the server side of each, and their ratio.
func BenchmarkWSIdleMemory(b *testing.B) {
	const n = 10_000
	measure := func(url, hello string) (heapBytes, stackBytes float64) {
		heap0, stacks0 := memoryInUse()
		stop := idleClientProcess(b, url, hello, n)
		heap1, stacks1 := memoryInUse()
		stop()
		return float64(heap1-heap0) / n, float64(stacks1-stacks0) / n
	}
	for range b.N {
		bare := &bareServer{conns: map[chan []byte]struct{}{}}
		srv := httptest.NewServer(bare)
		bareHeap, bareStacks := measure("ws"+strings.TrimPrefix(srv.URL, "http"), "bare")
		srv.Close()
		url, _, _ := newBenchChannel(b)
		heap, stacks := measure(url, "adshare")
		b.ReportMetric((bareHeap+bareStacks)/1024, "bare-KiB/conn")
		b.ReportMetric((heap+stacks)/1024, "adshare-KiB/conn")
		b.ReportMetric(bareStacks/1024, "bare-stack-KiB/conn")
		b.ReportMetric(stacks/1024, "adshare-stack-KiB/conn")
		b.ReportMetric((heap+stacks)/(bareHeap+bareStacks), "ratio")
	}
}

// idleClientProcess starts this test binary as TestWSIdleClientProcess
// with n clients of url (hello "bare": none; "adshare": adshareHello) and
// returns once they are all connected; stop ends the process.
func idleClientProcess(b *testing.B, url, hello string, n int) (stop func()) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWSIdleClientProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ADSHARE_WS_IDLE_URL="+url, "ADSHARE_WS_IDLE_HELLO="+hello, "ADSHARE_WS_IDLE_N="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
	}
	if sc.Text() != "ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.Fatalf("the client process ended before its %d clients were connected", n)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}
}

// TestWSIdleClientProcess is BenchmarkWSIdleMemory's client process: with
// ADSHARE_WS_IDLE_URL set it connects ADSHARE_WS_IDLE_N clients, prints
// "ready" and holds them until its standard input closes. Without it (a
// plain test run) it checks only that a client process of one connects
// and holds.
func TestWSIdleClientProcess(t *testing.T) {
	url, hello := os.Getenv("ADSHARE_WS_IDLE_URL"), os.Getenv("ADSHARE_WS_IDLE_HELLO")
	if url == "" {
		bare := &bareServer{conns: map[chan []byte]struct{}{}}
		srv := httptest.NewServer(bare)
		defer srv.Close()
		conn, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		require.NoError(t, err)
		_ = conn.CloseNow()
		return
	}
	n, err := strconv.Atoi(os.Getenv("ADSHARE_WS_IDLE_N"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conns := make([]*websocket.Conn, 0, n)
	for range n {
		c, _, err := websocket.Dial(ctx, url, nil)
		require.NoError(t, err)
		if hello == "adshare" {
			require.NoError(t, adshareHello(c))
		}
		go func() { // read what comes (pings are answered while reading)
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}()
		conns = append(conns, c)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		_ = c.CloseNow()
	}
}

// BenchmarkWSFanout sends 50 alerts to 2,000 connected clients through a
// bare coder/websocket server and through the channel (publisher → broker
// → hub → sessions), and reports deliveries per second and their ratio.
func BenchmarkWSFanout(b *testing.B) {
	const n, msgs = 2000, 50
	run := func(url string, hello func(*websocket.Conn) error, ready func() bool, send func(i int)) float64 {
		var got atomic.Int64
		stop := benchClients(b, url, n, hello, &got)
		defer stop()
		for !ready() {
			time.Sleep(time.Millisecond)
		}
		start := time.Now()
		for i := range msgs {
			send(i)
		}
		for got.Load() < n*msgs {
			if time.Since(start) > time.Minute {
				b.Fatalf("delivered %d of %d", got.Load(), n*msgs)
			}
			time.Sleep(time.Millisecond)
		}
		return float64(n*msgs) / time.Since(start).Seconds()
	}
	payload, _ := json.Marshal(realtime.AlertPayload{Kind: "announcement", Message: "maintenance at noon"})
	for range b.N {
		bare := &bareServer{conns: map[chan []byte]struct{}{}}
		srv := httptest.NewServer(bare)
		frame := []byte(`{"v":1,"type":"system.alert","topic":"alerts","payload":` + string(payload) + `}`)
		bareRate := run("ws"+strings.TrimPrefix(srv.URL, "http"), func(*websocket.Conn) error { return nil },
			func() bool { bare.mu.Lock(); defer bare.mu.Unlock(); return len(bare.conns) == n }, func(int) { bare.broadcast(frame) })
		srv.Close()
		url, pub, _ := newBenchChannel(b)
		ours := run(url, adshareHello, func() bool { return true }, func(int) {
			if err := pub.Broadcast(context.Background(), "announcement", "maintenance at noon"); err != nil {
				b.Fatal(err)
			}
		})
		b.ReportMetric(bareRate, "bare-msgs/s")
		b.ReportMetric(ours, "adshare-msgs/s")
		b.ReportMetric(ours/bareRate, "ratio")
	}
}
