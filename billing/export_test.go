package billing

import (
	"context"

	"github.com/google/uuid"
)

// Test hooks: what billing's jobs run, run in the test's goroutine.

func (s *Service) RunPayoutJob(ctx context.Context, id uuid.UUID) error { return s.runPayout(ctx, id) }
func (s *Service) ApplyEventJob(ctx context.Context, id string) error   { return s.applyEvent(ctx, id) }
func (s *Service) SweepJob(ctx context.Context) error                   { return s.sweep(ctx) }
func (s *Service) PayoutScheduleJob(ctx context.Context) error          { return s.payoutSchedule(ctx) }
