package analytics

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// RecordFill counts one fill of owner's space that asked for `requested`
// ads and got `filled`, for the fill rate. Counts gather in memory and are
// written every FillFlush (and by Stop), so a fill costs no write; a crash
// loses at most one interval of fill counts (never an event).
func (s *Service) RecordFill(owner uuid.UUID, requested, filled int) {
	hour := s.now().UTC().Truncate(time.Hour)
	k := fillKey{owner, hour}
	s.fillsMu.Lock()
	defer s.fillsMu.Unlock()
	c := s.fills[k]
	if c == nil {
		c = &FillCount{Owner: owner, Hour: hour}
		s.fills[k] = c
	}
	c.Requested += int64(requested)
	c.Filled += int64(filled)
}

// flushFills writes the gathered fill counts; on failure they are kept for
// the next flush.
func (s *Service) flushFills(ctx context.Context) {
	s.fillsMu.Lock()
	if len(s.fills) == 0 {
		s.fillsMu.Unlock()
		return
	}
	pending := make([]FillCount, 0, len(s.fills))
	for _, c := range s.fills {
		pending = append(pending, *c)
	}
	clear(s.fills)
	s.fillsMu.Unlock()

	if err := s.cfg.Store.RecordFills(ctx, pending); err != nil {
		s.logger.WarnContext(ctx, "analytics: fill counts not written; keeping them", slog.Any("error", err))
		s.fillsMu.Lock()
		for _, p := range pending {
			k := fillKey{p.Owner, p.Hour}
			c := s.fills[k]
			if c == nil {
				c = &FillCount{Owner: p.Owner, Hour: p.Hour}
				s.fills[k] = c
			}
			c.Requested += p.Requested
			c.Filled += p.Filled
		}
		s.fillsMu.Unlock()
	}
}

// FlushFills writes the gathered fill counts now (tests, shutdown hooks).
func (s *Service) FlushFills(ctx context.Context) { s.flushFills(ctx) }
