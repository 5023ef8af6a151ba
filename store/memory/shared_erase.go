package memory

import (
	"context"
	"strings"

	"github.com/google/uuid"
)

// EraseUser drops what the shared pieces hold about the user: realtime
// topics named for the user (their history), burst counts and rate-limit
// counts that name the user. Revocations are kept: they expire with the tokens they refuse
// and name sessions, not people. It is privacy's "shared" erasure step on
// one instance (store/redis's Client has the same method for a fleet).
func (s *Shared) EraseUser(ctx context.Context, user uuid.UUID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id := user.String()
	s.broker.mu.Lock()
	for name := range s.broker.topics {
		if strings.Contains(name, id) {
			delete(s.broker.topics, name)
		}
	}
	renameAll(user, uuid.Nil, true, &s.broker.topics)
	s.broker.mu.Unlock()
	s.bursts.mu.Lock()
	renameAll(user, uuid.Nil, true, &s.bursts.counts)
	s.bursts.mu.Unlock()
	s.limiter.mu.Lock()
	renameAll(user, uuid.Nil, true, &s.limiter.tats)
	s.limiter.mu.Unlock()
	return nil
}
