package memory

import (
	"context"
	"time"

	"github.com/adshare/adshare/retention"
)

var _ retention.Purger = (*Store)(nil)

// Purge implements retention.Purger for what this store keeps under its
// main lock: ended sessions (with their refresh tokens), audit events,
// and the IP addresses of sessions and audit events. Raw events,
// webhook payloads and exports are left to the process's end (nothing in
// memory survives a restart); a deployment that keeps them for long runs
// on PostgreSQL.
func (s *Store) Purge(ctx context.Context, cutoffs retention.Cutoffs) (retention.Result, error) {
	res := retention.Result{Purged: map[retention.Class]int64{}}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	before := func(c retention.Class, t time.Time) bool {
		cut, ok := cutoffs[c]
		return ok && !cut.IsZero() && t.Before(cut)
	}
	for id, se := range s.sessions {
		end := se.RevokedAt
		if end.IsZero() {
			end = se.IdleExpiresAt
			if se.AbsoluteExpiresAt.Before(end) {
				end = se.AbsoluteExpiresAt
			}
		}
		switch {
		case before(retention.Sessions, end):
			delete(s.sessions, id)
			for hash, r := range s.refresh {
				if r.session == id {
					delete(s.refresh, hash)
				}
			}
			for g := range s.generation {
				if g.session == id {
					delete(s.generation, g)
				}
			}
			res.Purged[retention.Sessions]++
		case se.IP != "" && before(retention.IPAddresses, se.CreatedAt):
			se.IP = ""
			s.sessions[id] = se
			res.Purged[retention.IPAddresses]++
		}
	}
	kept := s.audit[:0]
	for _, e := range s.audit {
		if before(retention.Audit, e.At) {
			res.Purged[retention.Audit]++
			continue
		}
		if e.IP != "" && before(retention.IPAddresses, e.At) {
			e.IP = ""
			res.Purged[retention.IPAddresses]++
		}
		kept = append(kept, e)
	}
	clear(s.audit[len(kept):])
	s.audit = kept
	return res, nil
}
