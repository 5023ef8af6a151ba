package realtime

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/adshare/adshare/auth"
)

// Defaults of HubConfig.
const (
	DefaultQueueSize          = 256
	DefaultMaxTopics          = 32
	DefaultMaxConnsPerUser    = 16
	DefaultMessageRate        = 10
	DefaultMessageBurst       = 20
	DefaultMaxStrikes         = 10
	DefaultStrikeWindow       = time.Minute
	DefaultMetricsInterval    = time.Second
	DefaultRecoveryLimit      = 100
	DefaultAuthTimeout        = 10 * time.Second
	DefaultPingInterval       = 25 * time.Second
	DefaultPongTimeout        = 10 * time.Second
	DefaultRevalidateInterval = 30 * time.Second
	DefaultWriteTimeout       = 5 * time.Second
	DefaultReadLimit          = 4096
	// DefaultRecoveryBuffer bounds the live events a session holds for a
	// topic while it replays the topic's history.
	DefaultRecoveryBuffer = 256
)

// Authenticator verifies an access token (auth.Service implements it). It
// returns auth.ErrTokenExpired-like errors from auth for a bad token and
// auth.ErrAuthUnavailable when it cannot answer.
type Authenticator interface {
	Authenticate(ctx context.Context, accessToken string) (auth.Principal, error)
}

// Auth is what the hub needs of the user system: auth.Service.
type Auth interface {
	Authenticator
	Authorizer
}

// HubConfig configures NewHub. Zero fields take the documented defaults.
type HubConfig struct {
	// Broker carries events between instances. Required.
	Broker Broker
	// Auth verifies tokens and permissions. Required.
	Auth Auth
	// Revocations, when set, is checked for every connection each
	// RevalidateInterval: a safety net under the revocation messages that
	// RevocationNotifier sends at once.
	Revocations auth.RevocationList
	// Logger defaults to discarding; Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time

	// QueueSize bounds each connection's send queue, in messages; a client
	// that falls further behind is closed with CloseSlow. Default 256.
	QueueSize int
	// MaxTopics bounds the topics of one connection. Default 32.
	MaxTopics int
	// MaxConnsPerUser bounds one user's connections on this instance; one
	// more is closed with CloseConnectionLimit. Default 16.
	MaxConnsPerUser int
	// MessageRate and MessageBurst bound the messages a client sends, per
	// second; a client over it gets an error, and one that goes on past the
	// burst is closed with CloseTooManyRequests. Defaults 10 and 20.
	MessageRate  float64
	MessageBurst int
	// MaxStrikes invalid messages within StrikeWindow close the connection
	// with CloseBadRequest. Defaults 10 and a minute.
	MaxStrikes   int
	StrikeWindow time.Duration
	// MetricsInterval is the least time between two metrics.live messages
	// of one connection; figures in between are summed. Default 1 s.
	MetricsInterval time.Duration
	// RecoveryLimit is the most events replayed on a resume; a longer gap
	// gets a reload. Default 100.
	RecoveryLimit int
	// AuthTimeout is how long a connection may stay unauthenticated.
	// Default 10 s.
	AuthTimeout time.Duration
	// PingInterval and PongTimeout drive the WebSocket pings (transport
	// reads them). Defaults 25 s and 10 s.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds one write to a client. Default 5 s.
	WriteTimeout time.Duration
	// ReadLimit is the largest client message, in bytes; a larger one
	// closes the connection with 1009. Default 4096.
	ReadLimit int64
	// RevalidateInterval is how often Revocations is checked. Default 30 s.
	RevalidateInterval time.Duration
	// Metrics is where the channel's metrics (adshare_ws_*) are
	// registered; nil: none.
	Metrics prometheus.Registerer
}

func (c HubConfig) withDefaults() HubConfig {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.QueueSize = cmp.Or(c.QueueSize, DefaultQueueSize)
	c.MaxTopics = cmp.Or(c.MaxTopics, DefaultMaxTopics)
	c.MaxConnsPerUser = cmp.Or(c.MaxConnsPerUser, DefaultMaxConnsPerUser)
	c.MessageRate = cmp.Or(c.MessageRate, DefaultMessageRate)
	c.MessageBurst = cmp.Or(c.MessageBurst, DefaultMessageBurst)
	c.MaxStrikes = cmp.Or(c.MaxStrikes, DefaultMaxStrikes)
	c.StrikeWindow = cmp.Or(c.StrikeWindow, DefaultStrikeWindow)
	c.MetricsInterval = cmp.Or(c.MetricsInterval, DefaultMetricsInterval)
	c.RecoveryLimit = cmp.Or(c.RecoveryLimit, DefaultRecoveryLimit)
	c.AuthTimeout = cmp.Or(c.AuthTimeout, DefaultAuthTimeout)
	c.PingInterval = cmp.Or(c.PingInterval, DefaultPingInterval)
	c.PongTimeout = cmp.Or(c.PongTimeout, DefaultPongTimeout)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, DefaultWriteTimeout)
	c.ReadLimit = cmp.Or(c.ReadLimit, DefaultReadLimit)
	c.RevalidateInterval = cmp.Or(c.RevalidateInterval, DefaultRevalidateInterval)
	return c
}

// brokerTimeout bounds the hub's own calls to the broker (filling a gap,
// reading topics back after a reconnection).
const brokerTimeout = 10 * time.Second

// Hub is one instance's side of the realtime channel: it holds the
// sessions of this instance, receives every publication from the Broker
// and hands each to the sessions subscribed to its topic. Safe for
// concurrent use. Start subscribes to the broker; Stop closes every
// session with CloseShutdown.
type Hub struct {
	cfg     HubConfig
	logger  *slog.Logger
	metrics *metrics

	mu       sync.Mutex
	users    map[uuid.UUID]map[*Session]struct{}
	topics   map[string]*topicState
	sessions map[*Session]struct{}
	stopSub  func()
	stopTick chan struct{}
	tickDone chan struct{}
	stopped  bool
}

// topicState is what the hub knows of a topic with local subscribers: them,
// and the last position it delivered (to fill gaps from history).
type topicState struct {
	subs map[*Session]struct{}
	last Position
}

// NewHub validates cfg and returns a hub; it starts nothing.
func NewHub(cfg HubConfig) (*Hub, error) {
	if cfg.Broker == nil {
		return nil, errors.New("realtime: HubConfig.Broker is required (store/memory.NewBroker for one instance, store/redis for a fleet)")
	}
	if cfg.Auth == nil {
		return nil, errors.New("realtime: HubConfig.Auth is required (the auth.Service)")
	}
	cfg = cfg.withDefaults()
	h := &Hub{
		cfg:      cfg,
		logger:   cfg.Logger,
		users:    map[uuid.UUID]map[*Session]struct{}{},
		topics:   map[string]*topicState{},
		sessions: map[*Session]struct{}{},
	}
	var err error
	if h.metrics, err = newMetrics(cfg.Metrics, h); err != nil {
		return nil, err
	}
	return h, nil
}

// Config returns the hub's configuration with defaults applied.
func (h *Hub) Config() HubConfig { return h.cfg }

// Start subscribes to the broker and starts the revalidation sweep. It
// returns an error when the broker does not confirm the subscription.
func (h *Hub) Start(ctx context.Context) error {
	h.mu.Lock()
	if h.stopSub != nil || h.stopped {
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	stop, err := h.cfg.Broker.Subscribe(ctx, h.onPublication)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopSub = stop
	if h.cfg.Revocations != nil {
		h.stopTick, h.tickDone = make(chan struct{}), make(chan struct{})
		go h.revalidateLoop(h.stopTick, h.tickDone)
	}
	return nil
}

// Stop ends the broker subscription and closes every session with
// CloseShutdown. It is idempotent and safe before Start.
func (h *Hub) Stop(ctx context.Context) error {
	h.mu.Lock()
	stop, tick, done := h.stopSub, h.stopTick, h.tickDone
	h.stopSub, h.stopTick, h.tickDone = nil, nil, nil
	h.stopped = true
	sessions := make([]*Session, 0, len(h.sessions))
	for s := range h.sessions {
		sessions = append(sessions, s)
	}
	h.mu.Unlock()
	if stop != nil {
		stop()
	}
	if tick != nil {
		close(tick)
		<-done
	}
	for _, s := range sessions {
		s.Close(CloseShutdown, "server shutting down")
	}
	return nil
}

// NewSession returns a session for a new connection. With a principal
// (authenticated before the upgrade) it is registered at once; without
// one, the client must send an auth message within AuthTimeout. A
// session over the per-user limit is returned already closed.
func (h *Hub) NewSession(p *auth.Principal) *Session {
	s := newSession(h)
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		s.Close(CloseShutdown, "server shutting down")
		return s
	}
	h.sessions[s] = struct{}{}
	h.mu.Unlock()
	if p != nil {
		s.authenticated(*p, false)
	} else {
		s.startAuthTimer()
	}
	return s
}

// Connections returns how many sessions this instance holds.
func (h *Hub) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// registerUser counts s among its user's sessions; false when over the
// limit.
func (h *Hub) registerUser(s *Session, user uuid.UUID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.users[user]
	if set == nil {
		set = map[*Session]struct{}{}
		h.users[user] = set
	}
	if _, ok := set[s]; ok {
		return true
	}
	if len(set) >= h.cfg.MaxConnsPerUser {
		return false
	}
	set[s] = struct{}{}
	return true
}

// remove forgets a closed session.
func (h *Hub) remove(s *Session, user uuid.UUID, topics []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.sessions, s)
	if set := h.users[user]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(h.users, user)
		}
	}
	for _, t := range topics {
		h.dropSubscriber(t, s)
	}
}

func (h *Hub) addSubscriber(topic string, s *Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.topics[topic]
	if ts == nil {
		ts = &topicState{subs: map[*Session]struct{}{}}
		h.topics[topic] = ts
	}
	ts.subs[s] = struct{}{}
}

func (h *Hub) removeSubscriber(topic string, s *Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropSubscriber(topic, s)
}

func (h *Hub) dropSubscriber(topic string, s *Session) {
	if ts := h.topics[topic]; ts != nil {
		delete(ts.subs, s)
		if len(ts.subs) == 0 {
			delete(h.topics, topic)
		}
	}
}

// notePosition raises the hub's last position of topic to pos (a
// session's position after recovery), so gaps after it are filled.
func (h *Hub) notePosition(topic string, pos Position) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ts := h.topics[topic]; ts != nil && (ts.last.Epoch != pos.Epoch || ts.last.Seq < pos.Seq) {
		ts.last = pos
	}
}

// delivery is a publication ready for sessions: decoded once, encoded once.
type delivery struct {
	pub     Publication
	typ     string
	frame   []byte          // the envelope as clients get it
	metrics *MetricsPayload // for metrics.live, which sessions coalesce
}

func (h *Hub) prepare(p Publication) (delivery, bool) {
	var env Envelope
	if err := json.Unmarshal(p.Data, &env); err != nil {
		h.logger.Warn("realtime: undecodable publication dropped", slog.String("topic", p.Topic), slog.Any("error", err))
		return delivery{}, false
	}
	env.Topic, env.Seq, env.Epoch = p.Topic, p.Seq, p.Epoch
	d := delivery{pub: p, typ: env.Type, frame: encode(env)}
	if env.Type == TypeMetricsLive && p.Seq == 0 {
		var m MetricsPayload
		if err := json.Unmarshal(env.Payload, &m); err == nil {
			d.metrics = &m
		}
	}
	return d, true
}

// onPublication is the broker's handler: it runs on the broker's
// goroutine, one publication at a time.
func (h *Hub) onPublication(p Publication) {
	switch p.Topic {
	case "":
		h.resync()
		return
	case controlTopic:
		h.control(p.Data)
		return
	}
	h.mu.Lock()
	ts := h.topics[p.Topic]
	if ts == nil {
		h.mu.Unlock()
		return
	}
	var gapFrom *Position
	if p.Seq > 0 {
		if ts.last.Epoch == p.Epoch && ts.last.Seq > 0 && p.Seq > ts.last.Seq+1 {
			from := ts.last
			gapFrom = &from
		}
		if ts.last.Epoch != p.Epoch || p.Seq > ts.last.Seq {
			ts.last = Position{Seq: p.Seq, Epoch: p.Epoch}
		}
	}
	subs := sessionsOf(ts)
	h.mu.Unlock()

	pubs := []Publication{p}
	if gapFrom != nil { // a publication was missed: fill from history
		ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
		missed, _, err := h.cfg.Broker.History(ctx, p.Topic, *gapFrom, h.cfg.RecoveryLimit)
		cancel()
		if err == nil {
			pubs = append(missed[:len(missed):len(missed)], p)
		} else {
			h.logger.Warn("realtime: gap not filled; sessions will reload", slog.String("topic", p.Topic), slog.Any("error", err))
		}
	}
	h.deliverAll(subs, pubs)
}

func (h *Hub) deliverAll(subs []*Session, pubs []Publication) {
	for _, p := range pubs {
		d, ok := h.prepare(p)
		if !ok {
			continue
		}
		for _, s := range subs {
			s.deliver(d)
		}
	}
}

func sessionsOf(ts *topicState) []*Session {
	out := make([]*Session, 0, len(ts.subs))
	for s := range ts.subs {
		out = append(out, s)
	}
	return out
}

// resync runs after the broker says publications may have been missed:
// every topic with subscribers is read back from its last position; what
// cannot be recovered gets a reload.
func (h *Hub) resync() {
	h.mu.Lock()
	type topicSubs struct {
		topic string
		last  Position
		subs  []*Session
	}
	var all []topicSubs
	for t, ts := range h.topics {
		all = append(all, topicSubs{t, ts.last, sessionsOf(ts)})
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	for _, t := range all {
		if t.last.Epoch == "" {
			continue // nothing delivered yet: sessions check against their own positions
		}
		pubs, _, err := h.cfg.Broker.History(ctx, t.topic, t.last, h.cfg.RecoveryLimit)
		if err != nil {
			reason := "too_old"
			if !errors.Is(err, ErrUnrecoverable) {
				reason = "unavailable"
			}
			pos, perr := h.cfg.Broker.Position(ctx, t.topic)
			for _, s := range t.subs {
				s.reload(t.topic, reason, pos, perr == nil)
			}
			if perr == nil {
				h.notePosition(t.topic, pos)
			}
			continue
		}
		h.deliverAll(t.subs, pubs)
		if n := len(pubs); n > 0 {
			h.notePosition(t.topic, Position{Seq: pubs[n-1].Seq, Epoch: pubs[n-1].Epoch})
		}
	}
}
