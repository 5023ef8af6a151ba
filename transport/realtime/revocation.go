package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

// controlMessage is a revocation sent between hubs on controlTopic.
type controlMessage struct {
	// Session, when set, was revoked: its connections close with
	// CloseSessionRevoked.
	Session uuid.UUID `json:"session,omitzero"`
	// User's connections authenticated with tokens issued before Before
	// close with ClosePermissionsChanged.
	User   uuid.UUID `json:"user,omitzero"`
	Before time.Time `json:"before,omitzero"`
}

// RevocationNotifier is an auth.RevocationList that, after each
// revocation the list it wraps accepts, tells every hub through the broker,
// so that the connections of a revoked session (or of a user whose role
// changed) close at once on every instance. Give it to auth.Config in
// place of the list itself.
type RevocationNotifier struct {
	auth.RevocationList
	Broker Broker
	Logger *slog.Logger
}

var _ auth.RevocationList = (*RevocationNotifier)(nil)

// RevokeSession implements auth.RevocationList: the list's error, if any;
// a failure to notify is logged (the hubs' revalidation sweep catches up).
func (n *RevocationNotifier) RevokeSession(ctx context.Context, sid uuid.UUID, until time.Time) error {
	if err := n.RevocationList.RevokeSession(ctx, sid, until); err != nil {
		return err
	}
	n.notify(ctx, controlMessage{Session: sid})
	return nil
}

// RevokeUserTokensBefore implements auth.RevocationList, like RevokeSession.
func (n *RevocationNotifier) RevokeUserTokensBefore(ctx context.Context, user uuid.UUID, before, until time.Time) error {
	if err := n.RevocationList.RevokeUserTokensBefore(ctx, user, before, until); err != nil {
		return err
	}
	n.notify(ctx, controlMessage{User: user, Before: before})
	return nil
}

func (n *RevocationNotifier) notify(ctx context.Context, m controlMessage) {
	data, _ := json.Marshal(m)
	if _, err := n.Broker.Publish(ctx, controlTopic, data, PublishOptions{}); err != nil && n.Logger != nil {
		n.Logger.WarnContext(ctx, "realtime: revocation not sent to the hubs", slog.Any("error", err))
	}
}

// control applies a revocation from any instance.
func (h *Hub) control(data []byte) {
	var m controlMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return
	}
	h.mu.Lock()
	var closeRevoked, closeChanged []*Session
	for s := range h.sessions {
		p, ok := s.principal()
		if !ok {
			continue
		}
		switch {
		case m.Session != uuid.Nil && p.SessionID == m.Session:
			closeRevoked = append(closeRevoked, s)
		case m.User != uuid.Nil && p.UserID == m.User && !p.IssuedAt.After(m.Before):
			closeChanged = append(closeChanged, s)
		}
	}
	h.mu.Unlock()
	for _, s := range closeRevoked {
		s.Close(CloseSessionRevoked, "session revoked")
	}
	for _, s := range closeChanged {
		s.Close(ClosePermissionsChanged, "permissions changed; refresh the token")
	}
}

// revalidateLoop checks every session's token against the revocation list
// each RevalidateInterval.
func (h *Hub) revalidateLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(h.cfg.RevalidateInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			h.revalidate()
		}
	}
}

func (h *Hub) revalidate() {
	h.mu.Lock()
	sessions := make([]*Session, 0, len(h.sessions))
	for s := range h.sessions {
		sessions = append(sessions, s)
	}
	h.mu.Unlock()
	for _, s := range sessions {
		p, ok := s.principal()
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := h.cfg.Revocations.CheckToken(ctx, p.SessionID, p.UserID, p.IssuedAt)
		cancel()
		if errors.Is(err, auth.ErrTokenRevoked) {
			s.Close(CloseSessionRevoked, "session revoked")
		}
	}
}
