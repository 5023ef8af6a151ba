package billing

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// sweepDays is how many past days each sweep looks at for settlement and
// release: a day missed while every instance was down is caught up within
// that many days.
const sweepDays = 7

// sweep is the periodic job that keeps the money moving whatever failed:
// it enqueues the settlement of every recent day that is final and the
// release of every recent day past its hold window (both idempotent), the
// transfer of every pending payout, and the application of every stored
// event not applied yet. Unique keys keep a job from being enqueued twice.
func (s *Service) sweep(ctx context.Context) error {
	now := s.now()
	today := dayOf(now)
	for i := 1; i <= sweepDays; i++ {
		day := today.Add(-time.Duration(i) * 24 * time.Hour)
		if !now.Before(day.Add(24*time.Hour + s.cfg.SettleLag)) {
			s.enqueue(ctx, jobSettle, dayArgs{Day: day}, "settle:"+day.Format(time.DateOnly))
		}
	}
	for i := 0; i < sweepDays; i++ {
		day := dayOf(now.Add(-24*time.Hour - s.cfg.HoldWindow)).Add(-time.Duration(i) * 24 * time.Hour)
		s.enqueue(ctx, jobRelease, dayArgs{Day: day}, "release:"+day.Format(time.DateOnly))
	}
	if !s.Manual() {
		pending, err := s.store.Payouts(ctx, PayoutFilter{Status: PayoutPending, Limit: 500})
		if err != nil {
			return err
		}
		for _, p := range pending {
			if now.Sub(p.UpdatedAt) > time.Minute { // not the one being made right now
				s.enqueue(ctx, jobPayout, payoutArgs{Payout: p.ID}, "payout:"+p.ID.String()+":"+now.Truncate(s.cfg.SweepInterval).Format(time.RFC3339))
			}
		}
	}
	events, err := s.store.UnprocessedEvents(ctx, 500)
	if err != nil {
		return err
	}
	s.metrics.backlog.Set(float64(len(events)))
	s.metrics.backlogAge.Set(0)
	if len(events) > 0 {
		s.metrics.backlogAge.Set(max(now.Sub(events[0].ReceivedAt), 0).Seconds())
	}
	for _, e := range events {
		if now.Sub(e.ReceivedAt) > time.Minute {
			s.enqueue(ctx, jobEvent, eventArgs{Event: e.ID}, "event:"+e.ID+":"+now.Truncate(s.cfg.SweepInterval).Format(time.RFC3339))
		}
	}
	return nil
}

// SettleAndRelease runs the settlement and release of the last days now,
// in the caller's goroutine: what the sweep's jobs do, for a host's
// command line and for tests.
func (s *Service) SettleAndRelease(ctx context.Context) error {
	now := s.now()
	today := dayOf(now)
	var errs []error
	for i := sweepDays; i >= 1; i-- {
		day := today.Add(-time.Duration(i) * 24 * time.Hour)
		if err := s.Settle(ctx, day); err != nil && !errors.Is(err, ErrTooEarly) {
			errs = append(errs, err)
		}
	}
	for i := sweepDays - 1; i >= 0; i-- {
		day := dayOf(now.Add(-24*time.Hour - s.cfg.HoldWindow)).Add(-time.Duration(i) * 24 * time.Hour)
		if err := s.Release(ctx, day); err != nil && !errors.Is(err, ErrTooEarly) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		s.logger.WarnContext(ctx, "billing: settlement or release failed", slog.Any("error", errors.Join(errs...)))
	}
	return errors.Join(errs...)
}
