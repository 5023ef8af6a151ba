package adspace

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

// QueuePlace is a place in the review queue, which is ordered by
// submission time and then id: a page that ended with content c goes on
// from QueuePlace{c.SubmittedAt, c.ID}, so that contents submitted in the
// same instant are neither skipped nor repeated across pages. With a nil
// ID it is just after everything submitted at SubmittedAt.
type QueuePlace struct {
	SubmittedAt time.Time
	ID          uuid.UUID
}

// MaxRejectReasonLen bounds a moderator's reason, in characters.
const MaxRejectReasonLen = 500

// ReviewQueue returns content waiting for review, longest waiting first,
// for moderators.
func (s *Service) ReviewQueue(ctx context.Context, p auth.Principal, after QueuePlace, limit int) ([]Content, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermContentModerate); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	return s.cfg.Contents.ReviewQueue(ctx, after, limit)
}

// Approve lets content run. Moderators only; audited. A moderator cannot
// approve their own content.
func (s *Service) Approve(ctx context.Context, p auth.Principal, id uuid.UUID) (Content, error) {
	return s.review(ctx, p, id, "approve", "")
}

// Reject refuses content with a reason the advertiser sees. Moderators
// only; audited.
func (s *Service) Reject(ctx context.Context, p auth.Principal, id uuid.UUID, reason string) (Content, error) {
	reason = strings.Join(strings.Fields(reason), " ")
	if reason == "" || !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > MaxRejectReasonLen {
		return Content{}, ErrInvalidContent.WithFields(map[string]string{"reason": "a reason of 1 to 500 characters is required"})
	}
	return s.review(ctx, p, id, "reject", reason)
}

func (s *Service) review(ctx context.Context, p auth.Principal, id uuid.UUID, action, reason string) (Content, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermContentModerate); err != nil {
		return Content{}, err
	}
	c, err := s.cfg.Contents.Content(ctx, id)
	if err != nil {
		return Content{}, err
	}
	if c.AdvertiserID == p.UserID {
		s.audit(ctx, p.UserID, auth.AuditAccessDenied, id, "own_content", nil)
		return Content{}, auth.ErrForbidden.WithMessage("moderators cannot review their own content")
	}
	t := transitions[action]
	return s.move(ctx, p, c, action, t.from, t.to, reason)
}
