package realtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/adshare/adshare/auth"
)

// ErrClosed is returned by Session.Next once the session is closed; the
// writer then closes the socket with Session.CloseStatus.
var ErrClosed = errors.New("realtime: session closed")

// Session is one client connection's state, independent of the socket:
// authentication, subscriptions and their positions, the bounded send
// queue, coalesced metrics and the limits. The transport feeds it the
// client's messages (Handle, HandleBinary) from one reader goroutine and
// writes what Next returns from one writer goroutine. Safe for concurrent
// use.
type Session struct {
	hub *Hub
	cfg *HubConfig

	notify chan struct{} // a message was queued (capacity 1)
	done   chan struct{} // closed by Close

	mu          sync.Mutex
	p           auth.Principal
	authed      bool
	queue       [][]byte
	overflow    bool // the queue overflowed: close with CloseSlow
	closed      bool
	closeCode   int
	closeReason string
	subs        map[string]*subscription
	authTimer   *time.Timer
	expiryTimer *time.Timer

	tokens     float64 // message rate bucket
	refilledAt time.Time
	overLimit  int
	strikes    int
	strikesAt  time.Time

	pending      map[string]*MetricsPayload
	lastMetrics  time.Time
	metricsTimer *time.Timer
}

// subscription is one topic of a session: the position delivered, and
// while its history is replayed, the live events held back.
type subscription struct {
	pos        Position
	recovering bool
	buf        []delivery
}

func newSession(h *Hub) *Session {
	return &Session{
		hub: h, cfg: &h.cfg,
		notify:     make(chan struct{}, 1),
		done:       make(chan struct{}),
		subs:       map[string]*subscription{},
		tokens:     float64(h.cfg.MessageBurst),
		refilledAt: h.cfg.Now(),
	}
}

// Done is closed when the session is closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// CloseStatus returns the close code and reason, once closed.
func (s *Session) CloseStatus() (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeCode, s.closeReason
}

// principal returns the session's principal and whether it is
// authenticated.
func (s *Session) principal() (auth.Principal, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p, s.authed
}

// Next returns the next message to write, waiting for one; ErrClosed once
// the session is closed and what it queued before is written, ctx's error
// when ctx ends first.
func (s *Session) Next(ctx context.Context) ([]byte, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 { // what was queued before a close still goes out

			m := s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			if len(s.queue) == 0 {
				s.queue = nil // let the backing array go
			}
			s.mu.Unlock()
			return m, nil
		}
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-s.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close closes the session with a close code and reason; the first call
// wins. It is safe from any goroutine.
func (s *Session) Close(code int, reason string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed, s.closeCode, s.closeReason = true, code, reason
	for _, t := range []*time.Timer{s.authTimer, s.expiryTimer, s.metricsTimer} {
		if t != nil {
			t.Stop()
		}
	}
	topics := make([]string, 0, len(s.subs))
	for t := range s.subs {
		topics = append(topics, t)
	}
	// The queue is bounded: what it holds (an error explaining the close)
	// is written before the close frame, except to a client too slow for it.
	if code == CloseSlow {
		s.queue = nil
	}
	s.pending = nil
	user := s.p.UserID
	close(s.done)
	s.mu.Unlock()
	s.hub.metrics.closes.WithLabelValues(closeReason(code)).Inc()
	s.hub.remove(s, user, topics)
	s.hub.logger.LogAttrs(context.Background(), closeLevel(code), "realtime: connection closed",
		slog.String("event", closeEvent(code)), slog.Int("code", code), slog.String("reason", reason), slog.String("user", user.String()))
}

// closeEvent names a close for the logs (the reference's ws.* events).
func closeEvent(code int) string {
	switch code {
	case CloseUnauthorized, CloseAuthTimeout, CloseTokenExpired:
		return "ws.auth_failed"
	case CloseTooManyRequests, CloseConnectionLimit:
		return "ws.rate_limited"
	case CloseBadRequest, 1009:
		return "ws.bad_request"
	case CloseSessionRevoked, ClosePermissionsChanged:
		return "ws.revoked"
	}
	return "ws.closed"
}

// closeLevel logs abuse and failed authentication at Warn, the rest at
// Debug (clients come and go all the time).
func closeLevel(code int) slog.Level {
	switch code {
	case CloseUnauthorized, CloseBadRequest, CloseTooManyRequests, CloseConnectionLimit, CloseSlow:
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

// enqueueLocked queues a message; past QueueSize the session is marked to
// close as slow (by finish, after the lock is released).
func (s *Session) enqueueLocked(m []byte) {
	if s.closed || s.overflow {
		return
	}
	if len(s.queue) >= s.cfg.QueueSize {
		s.overflow = true
		return
	}
	s.queue = append(s.queue, m)
	s.hub.metrics.sent.Inc()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// finish closes a session whose queue overflowed; call it after unlocking.
func (s *Session) finish() {
	s.mu.Lock()
	slow := s.overflow
	s.mu.Unlock()
	if slow {
		s.Close(CloseSlow, "send queue full: the client reads too slowly")
	}
}

func (s *Session) sendLocked(typ, id string, v any) {
	env := Envelope{Type: typ, ID: id, Time: s.cfg.Now().UTC()}
	if v != nil {
		env.Payload = payload(v)
	}
	s.enqueueLocked(encode(env))
}

func (s *Session) send(typ, id string, v any) {
	s.mu.Lock()
	s.sendLocked(typ, id, v)
	s.mu.Unlock()
	s.finish()
}

// startAuthTimer closes the session when no auth message comes in time.
func (s *Session) startAuthTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && !s.authed {
		s.authTimer = time.AfterFunc(s.cfg.AuthTimeout, func() {
			s.Close(CloseAuthTimeout, "no auth message in time")
		})
	}
}

// authenticated makes p the session's principal: registered under its user
// (closing the session over the per-user limit), the expiry timer set, a
// welcome sent.
func (s *Session) authenticated(p auth.Principal, renewed bool) {
	if !renewed && !s.hub.registerUser(s, p.UserID) {
		s.Close(CloseConnectionLimit, fmt.Sprintf("at most %d connections per user", s.cfg.MaxConnsPerUser))
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.hub.remove(s, p.UserID, nil)
		return
	}
	s.p, s.authed = p, true
	if s.authTimer != nil {
		s.authTimer.Stop()
		s.authTimer = nil
	}
	if s.expiryTimer != nil {
		s.expiryTimer.Stop()
	}
	s.expiryTimer = time.AfterFunc(p.ExpiresAt.Sub(s.cfg.Now()), func() {
		s.Close(CloseTokenExpired, "access token expired; refresh it and reconnect")
	})
	if !renewed {
		s.hub.logger.Debug("realtime: connected", slog.String("event", "ws.connect"), slog.String("user", p.UserID.String()))
	}
	s.sendLocked(TypeWelcome, "", WelcomePayload{
		UserID: p.UserID.String(), Role: string(p.Role), ExpiresAt: p.ExpiresAt.UTC(),
		PingIntervalMS: s.cfg.PingInterval.Milliseconds(), MaxTopics: s.cfg.MaxTopics,
	})
	s.mu.Unlock()
	s.finish()
}

// HandleBinary answers a binary frame: the protocol is text only.
func (s *Session) HandleBinary() {
	if !s.allow() {
		return
	}
	s.hub.metrics.received.WithLabelValues("invalid").Inc()
	s.refuse("", protoErr("binary_frame", "binary frames are not part of the protocol; send JSON text"))
}

// Handle processes one text message from the client. Invalid messages get
// an error message; repeated ones, or a flood, close the session.
func (s *Session) Handle(ctx context.Context, data []byte) {
	if !s.allow() {
		return
	}
	env, err := DecodeClientMessage(data)
	if err != nil {
		s.hub.metrics.received.WithLabelValues("invalid").Inc()
		s.refuse("", err)
		return
	}
	s.hub.metrics.received.WithLabelValues(receivedType(env.Type)).Inc()
	_, authed := s.principal()
	switch {
	case env.Type == TypePing:
		s.send(TypePong, env.ID, nil)
	case env.Type == TypeAuth:
		s.handleAuth(ctx, env)
	case !authed:
		s.refuse(env.ID, protoErr("unauthenticated", "send an auth message first"))
	case env.Type == TypeSubscribe:
		s.handleSubscribe(ctx, env)
	case env.Type == TypeUnsubscribe:
		s.handleUnsubscribe(env)
	case env.Type == TypeAck:
		s.handleAck(env)
	}
}

// allow takes one message from the rate bucket. Past the burst the client
// gets one error; a client that goes on for another burst is closed.
func (s *Session) allow() bool {
	s.mu.Lock()
	now := s.cfg.Now()
	s.tokens = min(float64(s.cfg.MessageBurst), s.tokens+now.Sub(s.refilledAt).Seconds()*s.cfg.MessageRate)
	s.refilledAt = now
	if s.tokens >= 1 {
		s.tokens--
		s.overLimit = 0
		s.mu.Unlock()
		return true
	}
	s.overLimit++
	n := s.overLimit
	if n == 1 {
		s.sendLocked(TypeError, "", ErrorPayload{Code: "rate_limited", Message: fmt.Sprintf("at most %g messages a second; messages are being dropped", s.cfg.MessageRate)})
	}
	s.mu.Unlock()
	s.finish()
	if n >= s.cfg.MessageBurst {
		s.Close(CloseTooManyRequests, "too many messages")
	}
	return false
}

// refuse answers an invalid message with an error and counts a strike;
// MaxStrikes within StrikeWindow close the session.
func (s *Session) refuse(id string, err error) {
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		pe = protoErr("bad_payload", "%v", err)
	}
	s.mu.Lock()
	s.sendLocked(TypeError, id, ErrorPayload{Code: pe.Code, Message: pe.Message})
	now := s.cfg.Now()
	if now.Sub(s.strikesAt) > s.cfg.StrikeWindow {
		s.strikes, s.strikesAt = 0, now
	}
	s.strikes++
	abuse := s.strikes >= s.cfg.MaxStrikes
	s.mu.Unlock()
	s.finish()
	if abuse {
		s.Close(CloseBadRequest, "too many invalid messages")
	}
}

func (s *Session) handleAuth(ctx context.Context, env Envelope) {
	var a AuthPayload
	if err := DecodePayload(env, &a); err != nil {
		s.refuse(env.ID, err)
		return
	}
	if a.Token == "" {
		s.refuse(env.ID, protoErr("bad_payload", "auth needs a token"))
		return
	}
	old, authed := s.principal()
	p, err := s.hub.cfg.Auth.Authenticate(ctx, a.Token)
	switch {
	case err != nil && authed:
		// A failed renewal leaves the current token in force until it expires.
		s.refuse(env.ID, protoErr("auth_failed", "the token was refused: %s", authReason(err)))
	case err != nil:
		code, reason := authCloseCode(err)
		s.Close(code, reason)
	case authed && p.UserID != old.UserID:
		s.Close(CloseUnauthorized, "a renewed token must be for the same user")
	default:
		s.authenticated(p, authed)
	}
}

// authCloseCode maps a failed first authentication to a close code.
func authCloseCode(err error) (int, string) {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return CloseTokenExpired, "access token expired; refresh it and reconnect"
	case errors.Is(err, auth.ErrTokenRevoked):
		return CloseSessionRevoked, "session revoked"
	case errors.Is(err, auth.ErrAuthUnavailable):
		return CloseUnavailable, "authentication unavailable; reconnect shortly"
	}
	return CloseUnauthorized, "invalid access token"
}

func authReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, auth.ErrTokenRevoked):
		return "revoked"
	case errors.Is(err, auth.ErrAuthUnavailable):
		return "authentication unavailable"
	}
	return "invalid"
}

func (s *Session) handleSubscribe(ctx context.Context, env Envelope) {
	var sp SubscribePayload
	if err := DecodePayload(env, &sp); err != nil {
		s.refuse(env.ID, err)
		return
	}
	if len(sp.Topics) == 0 || len(sp.Topics) > s.cfg.MaxTopics {
		s.refuse(env.ID, protoErr("bad_payload", "topics must list 1 to %d topics", s.cfg.MaxTopics))
		return
	}
	p, _ := s.principal()
	for _, st := range sp.Topics {
		if err := authorizeTopic(ctx, s.hub.cfg.Auth, p, st.Topic); err != nil {
			s.refuse(env.ID, err)
			continue
		}
		if st.Since != nil && st.Since.Epoch == "" {
			s.refuse(env.ID, protoErr("bad_payload", "since needs the epoch of the position"))
			continue
		}
		s.subscribe(ctx, env.ID, st)
	}
}

// subscribe adds one topic: registered first (live events are held back),
// then the history after the client's position is replayed (or a reload
// sent), then the held-back events follow.
func (s *Session) subscribe(ctx context.Context, id string, st SubscribeTopic) {
	t := st.Topic
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if sub, ok := s.subs[t]; ok && !sub.recovering {
		s.sendLocked(TypeSubscribed, id, SubscribedPayload{Topic: t, Position: sub.pos})
		s.mu.Unlock()
		s.finish()
		return
	}
	if len(s.subs) >= s.cfg.MaxTopics {
		s.mu.Unlock()
		s.refuse(id, protoErr("too_many_topics", "at most %d topics a connection", s.cfg.MaxTopics))
		return
	}
	sub := &subscription{recovering: true}
	s.subs[t] = sub
	s.mu.Unlock()
	s.hub.addSubscriber(t, s)

	broker := s.hub.cfg.Broker
	ctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	var pubs []Publication
	var pos Position
	var err error
	recovered, reason := false, ""
	if st.Since == nil {
		pos, err = broker.Position(ctx, t)
	} else {
		pubs, pos, err = broker.History(ctx, t, *st.Since, s.cfg.RecoveryLimit)
		switch {
		case err == nil:
			recovered = true
		case errors.Is(err, ErrUnrecoverable):
			if pos, err = broker.Position(ctx, t); err == nil {
				reason = "too_old"
				if pos.Epoch != st.Since.Epoch {
					reason = "epoch_changed"
				}
			}
		}
	}
	if err != nil {
		s.mu.Lock()
		delete(s.subs, t)
		s.mu.Unlock()
		s.hub.removeSubscriber(t, s)
		s.send(TypeError, id, ErrorPayload{Code: "unavailable", Message: "the topic's history cannot be read now; subscribe again shortly"})
		return
	}
	frames := make([][]byte, 0, len(pubs))
	for _, p := range pubs {
		if d, ok := s.hub.prepare(p); ok {
			frames = append(frames, d.frame)
		}
	}
	s.mu.Lock()
	if s.closed || s.subs[t] != sub {
		s.mu.Unlock()
		return
	}
	sub.pos = pos
	s.sendLocked(TypeSubscribed, id, SubscribedPayload{Topic: t, Position: pos, Recovered: recovered, Replayed: len(frames)})
	switch {
	case recovered:
		s.hub.metrics.resumes.WithLabelValues("replayed").Inc()
	case reason != "":
		s.hub.metrics.resumes.WithLabelValues("reload").Inc()
	}
	if reason != "" {
		s.sendLocked(TypeReload, "", ReloadPayload{Topic: t, Reason: reason})
	}
	for _, f := range frames {
		s.enqueueLocked(f)
	}
	held := sub.buf
	sub.buf, sub.recovering = nil, false
	for _, d := range held {
		s.deliverLocked(t, sub, d)
	}
	pos = sub.pos
	s.mu.Unlock()
	s.hub.notePosition(t, pos)
	s.finish()
}

func (s *Session) handleUnsubscribe(env Envelope) {
	var up UnsubscribePayload
	if err := DecodePayload(env, &up); err != nil {
		s.refuse(env.ID, err)
		return
	}
	if len(up.Topics) == 0 || len(up.Topics) > s.cfg.MaxTopics {
		s.refuse(env.ID, protoErr("bad_payload", "topics must list 1 to %d topics", s.cfg.MaxTopics))
		return
	}
	s.mu.Lock()
	var gone []string
	for _, t := range up.Topics {
		if _, ok := s.subs[t]; ok {
			delete(s.subs, t)
			delete(s.pending, t)
			gone = append(gone, t)
		}
	}
	s.mu.Unlock()
	for _, t := range gone {
		s.hub.removeSubscriber(t, s)
	}
	s.send(TypeUnsubscribed, env.ID, UnsubscribePayload{Topics: up.Topics})
}

func (s *Session) handleAck(env Envelope) {
	var a AckPayload
	if err := DecodePayload(env, &a); err != nil {
		s.refuse(env.ID, err)
		return
	}
	s.mu.Lock()
	sub, ok := s.subs[a.Topic]
	valid := ok && a.Seq <= sub.pos.Seq
	s.mu.Unlock()
	if !valid {
		s.refuse(env.ID, protoErr("bad_payload", "ack names a topic not subscribed or a sequence not yet sent"))
	}
}

// deliver hands a publication of a subscribed topic to the session.
func (s *Session) deliver(d delivery) {
	s.mu.Lock()
	sub := s.subs[d.pub.Topic]
	switch {
	case s.closed || sub == nil:
	case sub.recovering:
		if len(sub.buf) >= DefaultRecoveryBuffer {
			s.overflow = true
		} else {
			sub.buf = append(sub.buf, d)
		}
	default:
		s.deliverLocked(d.pub.Topic, sub, d)
	}
	s.mu.Unlock()
	s.finish()
}

// deliverLocked queues d in sequence: duplicates are dropped, and a gap or
// a new epoch is announced with a reload before the event.
func (s *Session) deliverLocked(t string, sub *subscription, d delivery) {
	if d.pub.Seq == 0 {
		if d.metrics != nil {
			s.coalesceLocked(t, d.metrics)
		} else {
			s.enqueueLocked(d.frame)
		}
		return
	}
	switch {
	case d.pub.Epoch == sub.pos.Epoch && d.pub.Seq <= sub.pos.Seq:
		return // already delivered (replayed, or filled)
	case d.pub.Epoch != sub.pos.Epoch:
		s.sendLocked(TypeReload, "", ReloadPayload{Topic: t, Reason: "epoch_changed"})
	case d.pub.Seq > sub.pos.Seq+1:
		s.sendLocked(TypeReload, "", ReloadPayload{Topic: t, Reason: "too_old"})
	}
	sub.pos = Position{Seq: d.pub.Seq, Epoch: d.pub.Epoch}
	s.enqueueLocked(d.frame)
}

// reload tells the client that a topic's events were lost, and moves its
// position to pos when known.
func (s *Session) reload(topic, reason string, pos Position, havePos bool) {
	s.mu.Lock()
	sub := s.subs[topic]
	if sub != nil && !sub.recovering && !s.closed {
		s.sendLocked(TypeReload, "", ReloadPayload{Topic: topic, Reason: reason})
		if havePos {
			sub.pos = pos
		}
	}
	s.mu.Unlock()
	s.finish()
}

// coalesceLocked sends live figures at most once per MetricsInterval,
// summing what comes in between.
func (s *Session) coalesceLocked(topic string, m *MetricsPayload) {
	now := s.cfg.Now()
	if s.pending == nil && now.Sub(s.lastMetrics) >= s.cfg.MetricsInterval {
		s.lastMetrics = now
		s.enqueueLocked(metricsFrame(topic, *m, now))
		return
	}
	if s.pending == nil {
		s.pending = map[string]*MetricsPayload{}
	}
	if p := s.pending[topic]; p != nil {
		p.Impressions += m.Impressions
		p.ValidImpressions += m.ValidImpressions
		p.Clicks += m.Clicks
		p.EarningsMicros += m.EarningsMicros
	} else {
		c := *m
		s.pending[topic] = &c
	}
	if s.metricsTimer == nil {
		s.metricsTimer = time.AfterFunc(max(0, s.cfg.MetricsInterval-now.Sub(s.lastMetrics)), s.flushMetrics)
	}
}

func (s *Session) flushMetrics() {
	s.mu.Lock()
	s.metricsTimer = nil
	now := s.cfg.Now()
	for t, m := range s.pending {
		s.enqueueLocked(metricsFrame(t, *m, now))
	}
	s.pending = nil
	s.lastMetrics = now
	s.mu.Unlock()
	s.finish()
}

func metricsFrame(topic string, m MetricsPayload, now time.Time) []byte {
	return encode(Envelope{Type: TypeMetricsLive, Topic: topic, Time: now.UTC(), Payload: payload(m)})
}
