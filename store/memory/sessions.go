package memory

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

type refreshRow struct {
	session    uuid.UUID
	generation int64
	createdAt  time.Time
	usedAt     time.Time
}

type sessionGeneration struct {
	session    uuid.UUID
	generation int64
}

// CreateSession implements auth.SessionStore.
func (s *Store) CreateSession(ctx context.Context, sess auth.Session, tokenHash []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[sess.UserID]; !ok {
		return auth.ErrUserNotFound
	}
	if _, ok := s.sessions[sess.ID]; ok {
		return auth.ErrSessionExists
	}
	if _, ok := s.refresh[string(tokenHash)]; ok {
		return auth.ErrSessionExists
	}
	sess.Generation = 1
	s.sessions[sess.ID] = sess
	s.refresh[string(tokenHash)] = &refreshRow{session: sess.ID, generation: 1, createdAt: sess.CreatedAt}
	s.generation[sessionGeneration{sess.ID, 1}] = string(tokenHash)
	return nil
}

// Session implements auth.SessionStore.
func (s *Store) Session(ctx context.Context, id uuid.UUID) (auth.Session, error) {
	if err := ctx.Err(); err != nil {
		return auth.Session{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sess, ok := s.sessions[id]
	if !ok {
		return auth.Session{}, auth.ErrSessionNotFound
	}
	return sess, nil
}

// UserSessions implements auth.SessionStore.
func (s *Store) UserSessions(ctx context.Context, user uuid.UUID, now time.Time) ([]auth.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []auth.Session{}
	for _, sess := range s.sessions {
		if sess.UserID == user && sess.Live(now) {
			out = append(out, sess)
		}
	}
	slices.SortFunc(out, func(a, b auth.Session) int {
		if c := b.LastUsedAt.Compare(a.LastUsedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID.String(), a.ID.String())
	})
	return out, nil
}

// RotateRefreshToken implements auth.SessionStore.
func (s *Store) RotateRefreshToken(ctx context.Context, r auth.Rotation) (auth.RotationResult, error) {
	if err := ctx.Err(); err != nil {
		return auth.RotationResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	row, ok := s.refresh[string(r.OldHash)]
	if !ok {
		return auth.RotationResult{}, auth.ErrRefreshTokenUnknown
	}
	sess := s.sessions[row.session]
	switch {
	case !sess.RevokedAt.IsZero():
		return auth.RotationResult{Session: sess}, auth.ErrSessionRevoked
	case !sess.Live(r.Now):
		return auth.RotationResult{Session: sess}, auth.ErrSessionExpired
	}
	role := s.users[sess.UserID].Role
	if !row.usedAt.IsZero() {
		res := auth.RotationResult{Session: sess, UsedAt: row.usedAt, UserRole: role}
		if next, ok := s.generation[sessionGeneration{row.session, row.generation + 1}]; ok {
			res.SuccessorUnused = s.refresh[next].usedAt.IsZero()
		}
		return res, nil
	}
	if _, taken := s.refresh[string(r.NewHash)]; taken {
		return auth.RotationResult{}, auth.ErrSessionExists
	}
	now := r.Now.UTC().Truncate(time.Microsecond)
	row.usedAt = now
	next := row.generation + 1
	s.refresh[string(r.NewHash)] = &refreshRow{session: sess.ID, generation: next, createdAt: now}
	s.generation[sessionGeneration{sess.ID, next}] = string(r.NewHash)
	sess.Generation = next
	sess.LastUsedAt = now
	sess.IdleExpiresAt = now.Add(r.IdleTimeout)
	if sess.IdleExpiresAt.After(sess.AbsoluteExpiresAt) {
		sess.IdleExpiresAt = sess.AbsoluteExpiresAt
	}
	s.sessions[sess.ID] = sess
	return auth.RotationResult{Session: sess, Rotated: true, UserRole: role}, nil
}

// RevokeSession implements auth.SessionStore.
func (s *Store) RevokeSession(ctx context.Context, id uuid.UUID, reason string, now time.Time) (auth.Session, error) {
	if err := ctx.Err(); err != nil {
		return auth.Session{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return auth.Session{}, auth.ErrSessionNotFound
	}
	if sess.RevokedAt.IsZero() {
		sess.RevokedAt = now.UTC().Truncate(time.Microsecond)
		sess.RevokeReason = reason
		s.sessions[id] = sess
	}
	return sess, nil
}

// RevokeUserSessions implements auth.SessionStore.
func (s *Store) RevokeUserSessions(ctx context.Context, user, except uuid.UUID, reason string, now time.Time) ([]auth.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now = now.UTC().Truncate(time.Microsecond)
	ended := []auth.Session{}
	for id, sess := range s.sessions {
		if sess.UserID != user || id == except || !sess.Live(now) {
			continue
		}
		sess.RevokedAt = now
		sess.RevokeReason = reason
		s.sessions[id] = sess
		ended = append(ended, sess)
	}
	slices.SortFunc(ended, func(a, b auth.Session) int { return cmp.Compare(a.ID.String(), b.ID.String()) })
	return ended, nil
}
