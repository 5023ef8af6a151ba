package memory

import (
	"context"
	"maps"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

// AppendAudit implements auth.AuditLog.
func (s *Store) AppendAudit(ctx context.Context, e auth.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextAudit++
	e.ID = s.nextAudit
	e.At = e.At.UTC().Truncate(time.Microsecond)
	e.Details = maps.Clone(e.Details)
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	s.audit = append(s.audit, e)
	return nil
}

// AuditEvents implements auth.AuditLog.
func (s *Store) AuditEvents(ctx context.Context, f auth.AuditFilter) ([]auth.AuditEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []auth.AuditEvent{}
	for i := len(s.audit) - 1; i >= 0 && len(out) < limit; i-- {
		e := s.audit[i]
		switch {
		case f.ActorID != uuid.Nil && e.ActorID != f.ActorID,
			f.TargetID != "" && e.TargetID != f.TargetID,
			f.Action != "" && e.Action != f.Action,
			!f.Since.IsZero() && e.At.Before(f.Since),
			!f.Until.IsZero() && !e.At.Before(f.Until),
			f.BeforeID > 0 && e.ID >= f.BeforeID:
			continue
		}
		e.Details = maps.Clone(e.Details)
		out = append(out, e)
	}
	return out, nil
}
