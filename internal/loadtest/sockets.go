package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/adshare/adshare/transport/realtime"
)

// SocketConfig is the realtime clients Fleet.OpenSockets holds open.
type SocketConfig struct {
	// Clients is how many WebSocket connections are held open (default:
	// one per owner). Client i is owner i mod len(Owners); the server
	// allows 16 connections a user.
	Clients int
	// Timeout bounds a connection's dial and subscription (default 10 s).
	Timeout time.Duration
}

// Sockets are long-lived WebSocket clients of GET /ws beside a run, one
// app instance each: authenticated as a fleet owner (Authorization before
// the upgrade), subscribed to the owner's space, the owner's alerts and
// the broadcast alerts, and reconnecting after an unexpected close as an
// app does. They count what they receive by type, failed connections and
// unexpected closes, and time each metrics.live from the moment the mix
// sent an impression it reports (Run puts their figures in its Report
// when Config.Sockets is set).
type Sockets struct {
	fleet   *Fleet
	url     string
	timeout time.Duration
	clients []*socket
	byOwner map[int][]*socket
	closing atomic.Bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu           sync.Mutex
	messages     map[string]int
	connects     int
	connectFails int
	closes       int
	closeCodes   map[string]int
	samples      []string
	latency      *histogram
	reported     int64
}

// socket is one client.
type socket struct {
	s      *Sockets
	owner  *Member
	topics []realtime.SubscribeTopic
	space  string // the owner's space topic

	mu      sync.Mutex
	conn    *websocket.Conn
	live    bool        // subscribed to the space: what is sent now is reported to it
	waiting []time.Time // impressions of the space sent and not reported yet, oldest first
	metrics int         // metrics.live messages received
}

// OpenSockets connects cfg.Clients WebSocket clients as the fleet's owners
// and returns once each is subscribed (an error, with every client
// closed, when one cannot connect within cfg.Timeout). The fleet's mixes
// tell them the impressions they send; Close ends them.
func (f *Fleet) OpenSockets(ctx context.Context, cfg SocketConfig) (*Sockets, error) {
	if cfg.Clients < 0 || cfg.Timeout < 0 {
		return nil, errors.New("loadtest: SocketConfig.Clients and Timeout must not be negative")
	}
	if len(f.Owners) == 0 {
		return nil, errors.New("loadtest: OpenSockets needs a fleet with owners")
	}
	if f.sockets.Load() != nil {
		return nil, errors.New("loadtest: the fleet's sockets are open already")
	}
	cfg.Clients = orDefault(cfg.Clients, len(f.Owners))
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	s := &Sockets{fleet: f, url: "ws" + strings.TrimPrefix(f.Base, "http") + "/ws", timeout: cfg.Timeout,
		byOwner: map[int][]*socket{}, messages: map[string]int{}, closeCodes: map[string]int{}, latency: newHistogram()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for i := range cfg.Clients {
		o := i % len(f.Owners)
		id, err := uuid.Parse(f.Owners[o].ID)
		if err != nil {
			return nil, fmt.Errorf("loadtest: owner %s's id %q: %w", f.Owners[o].Email, f.Owners[o].ID, err)
		}
		c := &socket{s: s, owner: f.Owners[o], space: realtime.SpaceTopic(id),
			topics: []realtime.SubscribeTopic{{Topic: realtime.SpaceTopic(id)}, {Topic: realtime.UserTopic(id)}, {Topic: realtime.AlertsTopic}}}
		s.clients = append(s.clients, c)
		s.byOwner[o] = append(s.byOwner[o], c)
	}
	if !f.sockets.CompareAndSwap(nil, s) {
		s.cancel()
		return nil, errors.New("loadtest: the fleet's sockets are open already")
	}
	errs := make(chan error, len(s.clients))
	for _, c := range s.clients {
		s.wg.Go(func() { c.run(ctx, errs) })
	}
	for range s.clients {
		if err := <-errs; err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// run connects the client, reports the first attempt's outcome on ready,
// and then reads until Close, reconnecting (after a pause) when the
// server closes with a code that asks for it or the connection is lost.
func (c *socket) run(ctx context.Context, ready chan<- error) {
	s := c.s
	conn, err := c.connect(ctx)
	ready <- err
	if err != nil {
		return
	}
	pause := 100 * time.Millisecond
	for {
		err := c.read(conn)
		if s.closing.Load() {
			return
		}
		code := int(websocket.CloseStatus(err))
		s.closed(code, err)
		if code >= 0 && !realtime.Reconnect(code) {
			return
		}
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, 2*time.Second)
			if conn, err = c.connect(s.ctx); err == nil {
				break
			}
			if s.closing.Load() {
				return
			}
			s.failed(err)
		}
		pause = 100 * time.Millisecond
	}
}

// connect dials as the client's owner and subscribes, within the
// configured timeout (or ctx).
func (c *socket) connect(ctx context.Context) (*websocket.Conn, error) {
	s := c.s
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	h := http.Header{"Authorization": {"Bearer " + c.owner.Access}, "X-Forwarded-For": {c.owner.Addr},
		"User-Agent": {"AdshareApp/2.1 (iPhone; iOS 18.1)"}}
	conn, _, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, fmt.Errorf("loadtest: connect to %s as %s: %w", s.url, c.owner.Email, err)
	}
	fail := func(err error) (*websocket.Conn, error) {
		_ = conn.Close(websocket.StatusNormalClosure, "")
		return nil, fmt.Errorf("loadtest: subscribe as %s: %w", c.owner.Email, err)
	}
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	if s.closing.Load() { // Close came while dialling
		return fail(errors.New("closing"))
	}
	sub, _ := json.Marshal(realtime.Envelope{V: realtime.ProtocolVersion, Type: realtime.TypeSubscribe, ID: "load",
		Payload: mustJSON(realtime.SubscribePayload{Topics: c.topics})})
	if err := conn.Write(ctx, websocket.MessageText, sub); err != nil {
		return fail(err)
	}
	for pending := len(c.topics); pending > 0; {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return fail(err)
		}
		env := c.handle(data)
		switch env.Type {
		case realtime.TypeError:
			return fail(fmt.Errorf("the server refused the subscription: %s", env.Payload))
		case realtime.TypeSubscribed:
			pending--
			var p realtime.SubscribedPayload
			if json.Unmarshal(env.Payload, &p) == nil && p.Topic == c.space {
				c.mu.Lock()
				c.live, c.waiting = true, nil
				c.mu.Unlock()
			}
		}
	}
	s.mu.Lock()
	s.connects++
	s.mu.Unlock()
	return conn, nil
}

// read handles the connection's messages until it ends, and returns why.
func (c *socket) read(conn *websocket.Conn) error {
	defer func() {
		c.mu.Lock()
		c.live, c.waiting = false, nil // what is sent while away is not reported to it
		c.mu.Unlock()
	}()
	for {
		_, data, err := conn.Read(c.s.ctx)
		if err != nil {
			return err
		}
		c.handle(data)
	}
}

// handle counts a server message and, for the space's metrics.live, times
// the impressions it reports.
func (c *socket) handle(data []byte) realtime.Envelope {
	s := c.s
	var env realtime.Envelope
	if json.Unmarshal(data, &env) != nil {
		env.Type = "unreadable"
	}
	now := time.Now()
	var waited []time.Duration
	var reported int64
	if env.Type == realtime.TypeMetricsLive && env.Topic == c.space {
		var m realtime.MetricsPayload
		_ = json.Unmarshal(env.Payload, &m)
		reported = m.Impressions
		c.mu.Lock()
		c.metrics++
		// The server takes impressions about in the order they are sent.
		n := min(int(max(m.Impressions, 0)), len(c.waiting))
		for _, t := range c.waiting[:n] {
			waited = append(waited, now.Sub(t))
		}
		c.waiting = slices.Delete(c.waiting, 0, n)
		c.mu.Unlock()
	}
	s.mu.Lock()
	s.messages[env.Type]++
	s.reported += reported
	for _, d := range waited {
		s.latency.record(d)
	}
	s.mu.Unlock()
	return env
}

// expect notes an impression of owner's space sent at t.
func (s *Sockets) expect(owner int, t time.Time) {
	for _, c := range s.byOwner[owner] {
		c.mu.Lock()
		if c.live {
			c.waiting = append(c.waiting, t)
		}
		c.mu.Unlock()
	}
}

// closed counts an unexpected end of a connection.
func (s *Sockets) closed(code int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closes++
	name := "none"
	if code >= 0 {
		name = fmt.Sprint(code)
	}
	s.closeCodes[name]++
	s.sample(err)
}

// failed counts a connection that could not be made.
func (s *Sockets) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connectFails++
	s.sample(err)
}

func (s *Sockets) sample(err error) {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if len(s.samples) < 5 && !slices.Contains(s.samples, msg) {
		s.samples = append(s.samples, msg)
	}
}

// Report returns the sockets' figures so far (since OpenSockets), once
// the impressions sent are reported or up to settle has passed: live
// figures come at most a second apart.
func (s *Sockets) Report(settle time.Duration) *SocketReport {
	// Wait while reports still come: until none is missing, settle has
	// passed, or three seconds brought none (what is left was dropped).
	left, progressed := s.unreported(), time.Now()
	for deadline := time.Now().Add(settle); left > 0 && time.Now().Before(deadline) && time.Since(progressed) < 3*time.Second; {
		time.Sleep(50 * time.Millisecond)
		if n := s.unreported(); n < left {
			left, progressed = n, time.Now()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &SocketReport{Clients: len(s.clients), Connects: s.connects, ConnectErrors: s.connectFails, UnexpectedCloses: s.closes,
		CloseCodes: maps.Clone(s.closeCodes), Messages: maps.Clone(s.messages), ErrorSamples: slices.Clone(s.samples),
		ImpressionsReported: s.reported, Samples: len(s.latency.d)}
	for _, c := range s.clients {
		c.mu.Lock()
		if c.live {
			r.Open++
		}
		if c.metrics == 0 {
			r.WithoutMetrics++
		}
		r.Unreported += len(c.waiting)
		c.mu.Unlock()
	}
	r.MetricsLatency = (&histogram{d: slices.Clone(s.latency.d)}).summary()
	return r
}

// unreported is how many impressions sent no socket has seen reported.
func (s *Sockets) unreported() int {
	n := 0
	for _, c := range s.clients {
		c.mu.Lock()
		n += len(c.waiting)
		c.mu.Unlock()
	}
	return n
}

// Close closes every connection (normal closure) and returns the final
// figures. The fleet may open sockets again afterwards.
func (s *Sockets) Close() *SocketReport {
	if s.closing.Swap(true) {
		return s.Report(0)
	}
	rep := s.Report(0)
	var wg sync.WaitGroup
	for _, c := range s.clients {
		c.mu.Lock()
		conn := c.conn
		c.mu.Unlock()
		if conn != nil {
			wg.Go(func() { _ = conn.Close(websocket.StatusNormalClosure, "load run over") })
		}
	}
	wg.Wait()
	s.cancel()
	s.wg.Wait()
	s.fleet.sockets.CompareAndSwap(s, nil)
	return rep
}

// SocketReport is what the WebSocket clients saw.
type SocketReport struct {
	Clients int `json:"clients"`
	// Open is how many were connected and subscribed at the report.
	Open int `json:"open"`
	// Connects counts connections made and subscribed, first ones and
	// reconnections.
	Connects int `json:"connects"`
	// ConnectErrors counts reconnections that failed (dial, upgrade or
	// subscription).
	ConnectErrors int `json:"connect_errors"`
	// UnexpectedCloses counts connections that ended before Close, by
	// close code in CloseCodes ("none": no close frame).
	UnexpectedCloses int            `json:"unexpected_closes"`
	CloseCodes       map[string]int `json:"close_codes"`
	ErrorSamples     []string       `json:"error_samples,omitempty"`
	// Messages counts what was received, by type.
	Messages map[string]int `json:"messages"`
	// WithoutMetrics is how many clients received no metrics.live.
	WithoutMetrics int `json:"without_metrics"`
	// ImpressionsReported sums the impressions metrics.live reported.
	ImpressionsReported int64 `json:"impressions_reported"`
	// MetricsLatency is from an impression's sending (the first of its
	// token in the fleet's mixes, while the client was subscribed) to the
	// metrics.live that reports it, over Samples impressions; Unreported
	// were still waiting at the report.
	MetricsLatency Latency `json:"metrics_live_latency"`
	Samples        int     `json:"metrics_live_samples"`
	Unreported     int     `json:"unreported"`
}

// failures describes what went wrong with the sockets.
func (r *SocketReport) failures() []string {
	if r.ConnectErrors == 0 && r.UnexpectedCloses == 0 && r.Open == r.Clients {
		return nil
	}
	return []string{fmt.Sprintf("websocket: %d of %d open; %d failed connections, %d unexpected closes (codes %v; %s)",
		r.Open, r.Clients, r.ConnectErrors, r.UnexpectedCloses, r.CloseCodes, strings.Join(r.ErrorSamples, "; "))}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("loadtest: " + err.Error())
	}
	return b
}
