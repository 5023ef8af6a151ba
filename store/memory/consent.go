package memory

import (
	"context"
	"maps"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

var _ auth.ConsentStore = (*Store)(nil)

// AppendConsent implements auth.ConsentStore. It returns
// auth.ErrUserNotFound for an unknown user.
func (s *Store) AppendConsent(ctx context.Context, r auth.ConsentRecord) (auth.ConsentRecord, error) {
	if err := ctx.Err(); err != nil {
		return auth.ConsentRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[r.UserID]; !ok {
		return auth.ConsentRecord{}, auth.ErrUserNotFound
	}
	if s.consents == nil {
		s.consents = map[uuid.UUID][]auth.ConsentRecord{}
	}
	s.nextConsent++
	r.ID = s.nextConsent
	r.RecordedAt = r.RecordedAt.UTC().Truncate(time.Microsecond)
	r.Purposes = maps.Clone(r.Purposes)
	s.consents[r.UserID] = append(s.consents[r.UserID], r)
	return cloneConsent(r), nil
}

// CurrentConsent implements auth.ConsentStore.
func (s *Store) CurrentConsent(ctx context.Context, user uuid.UUID) (auth.ConsentRecord, error) {
	if err := ctx.Err(); err != nil {
		return auth.ConsentRecord{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	rs := s.consents[user]
	if len(rs) == 0 {
		return auth.ConsentRecord{}, auth.ErrConsentNotFound
	}
	return cloneConsent(rs[len(rs)-1]), nil
}

// ConsentHistory implements auth.ConsentStore.
func (s *Store) ConsentHistory(ctx context.Context, user uuid.UUID) ([]auth.ConsentRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]auth.ConsentRecord, 0, len(s.consents[user]))
	for _, r := range s.consents[user] {
		out = append(out, cloneConsent(r))
	}
	return out, nil
}

func cloneConsent(r auth.ConsentRecord) auth.ConsentRecord {
	r.Purposes = maps.Clone(r.Purposes)
	return r
}
