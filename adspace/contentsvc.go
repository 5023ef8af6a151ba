package adspace

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

// Audit actions of this package.
const (
	AuditContentCreated   = "content.created"
	AuditContentSubmitted = "content.submitted"
	AuditContentApproved  = "moderation.approved"
	AuditContentRejected  = "moderation.rejected"
	AuditContentArchived  = "content.archived"
)

// MaxRejectReasonLen bounds a moderator's reason, in characters.
const MaxRejectReasonLen = 500

// CreateContent stores new ad content for the caller, who needs the
// advertiser permission. With submit it goes straight to review; else it
// stays a draft. The caller's tier caps their live contents
// (ErrContentLimit).
func (s *Service) CreateContent(ctx context.Context, p auth.Principal, d ContentDraft, submit bool) (Content, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermContentCreate); err != nil {
		return Content{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	d, err := s.rules.Check(d, now)
	if err != nil {
		return Content{}, err
	}
	if err := s.checkContentLimit(ctx, p.UserID); err != nil {
		return Content{}, err
	}
	c := Content{
		ID: uuid.Must(uuid.NewV7()), AdvertiserID: p.UserID, Status: StatusDraft,
		Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	applyDraft(&c, d, now)
	if submit {
		c.Status, c.SubmittedAt = StatusPendingReview, now
	}
	if err := s.cfg.Contents.CreateContent(ctx, c); err != nil {
		return Content{}, err
	}
	s.audit(ctx, p.UserID, AuditContentCreated, c.ID, "", map[string]string{"status": string(c.Status)})
	return c, nil
}

func (s *Service) checkContentLimit(ctx context.Context, advertiser uuid.UUID) error {
	u, err := s.cfg.Users.UserByID(ctx, advertiser)
	if err != nil {
		return err
	}
	tier, err := s.cfg.Tiers.Get(u.Tier)
	if err != nil {
		return err
	}
	n, err := s.cfg.Contents.CountLiveContent(ctx, advertiser)
	if err != nil {
		return err
	}
	if n >= tier.MaxAdContents {
		return ErrContentLimit
	}
	return nil
}

func applyDraft(c *Content, d ContentDraft, now time.Time) {
	c.ContentDraft = d
	if c.Schedule.Start.IsZero() {
		c.Schedule.Start = now
	}
	c.Fingerprint = Fingerprint(d)
}

// ownContent returns the caller's content; another advertiser's content
// is ErrContentNotFound, exactly like a missing one.
func (s *Service) ownContent(ctx context.Context, p auth.Principal, id uuid.UUID) (Content, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermContentCreate); err != nil {
		return Content{}, err
	}
	c, err := s.cfg.Contents.Content(ctx, id)
	if err != nil {
		return Content{}, err
	}
	if c.AdvertiserID != p.UserID {
		s.audit(ctx, p.UserID, auth.AuditAccessDenied, id, "not_owner", nil)
		return Content{}, ErrContentNotFound
	}
	return c, nil
}

// Content returns one of the caller's contents.
func (s *Service) Content(ctx context.Context, p auth.Principal, id uuid.UUID) (Content, error) {
	return s.ownContent(ctx, p, id)
}

// ListContent returns the caller's contents.
func (s *Service) ListContent(ctx context.Context, p auth.Principal, f ContentFilter) ([]Content, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermContentCreate); err != nil {
		return nil, err
	}
	return s.cfg.Contents.AdvertiserContent(ctx, p.UserID, f)
}

// UpdateContent replaces the creative and terms of the caller's content.
// expectVersion must be its current version (ErrVersionConflict). Edits of
// approved, paused or rejected content go back to review when submit is
// set, or to draft: nothing runs that a moderator has not seen.
func (s *Service) UpdateContent(ctx context.Context, p auth.Principal, id uuid.UUID, d ContentDraft, expectVersion int64, submit bool) (Content, error) {
	c, err := s.ownContent(ctx, p, id)
	if err != nil {
		return Content{}, err
	}
	if c.Status == StatusArchived {
		return Content{}, ErrInvalidTransition.WithMessage("archived content cannot be edited")
	}
	if expectVersion != c.Version {
		return Content{}, ErrVersionConflict
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if d, err = s.rules.Check(d, now); err != nil {
		return Content{}, err
	}
	applyDraft(&c, d, now)
	c.Status, c.RejectReason = StatusDraft, ""
	if submit {
		c.Status, c.SubmittedAt = StatusPendingReview, now
	}
	return s.save(ctx, c, now)
}

func (s *Service) save(ctx context.Context, c Content, now time.Time) (Content, error) {
	c.Version++
	c.UpdatedAt = now
	if err := s.cfg.Contents.UpdateContent(ctx, c); err != nil {
		return Content{}, err
	}
	return c, nil
}

// transitions lists, per action, the states it may start from and the
// state it leads to.
var transitions = map[string]struct {
	from []Status
	to   Status
}{
	"submit":  {[]Status{StatusDraft, StatusRejected}, StatusPendingReview},
	"pause":   {[]Status{StatusApproved}, StatusPaused},
	"resume":  {[]Status{StatusPaused}, StatusApproved},
	"archive": {[]Status{StatusDraft, StatusPendingReview, StatusApproved, StatusRejected, StatusPaused}, StatusArchived},
	"approve": {[]Status{StatusPendingReview}, StatusApproved},
	"reject":  {[]Status{StatusPendingReview}, StatusRejected},
}

// Transition moves the caller's content: "submit", "pause", "resume" or
// "archive". A state that does not allow the action is ErrInvalidTransition.
func (s *Service) Transition(ctx context.Context, p auth.Principal, id uuid.UUID, action string) (Content, error) {
	t, ok := transitions[action]
	if !ok || action == "approve" || action == "reject" {
		return Content{}, ErrInvalidTransition.WithMessage("unknown action; use submit, pause, resume or archive")
	}
	c, err := s.ownContent(ctx, p, id)
	if err != nil {
		return Content{}, err
	}
	return s.move(ctx, p, c, action, t.from, t.to, "")
}

func (s *Service) move(ctx context.Context, p auth.Principal, c Content, action string, from []Status, to Status, reason string) (Content, error) {
	allowed := false
	for _, st := range from {
		allowed = allowed || c.Status == st
	}
	if !allowed {
		return Content{}, ErrInvalidTransition.WithMessage("content that is " + string(c.Status) + " cannot be " + action + "d")
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	c.Status = to
	switch to {
	case StatusPendingReview:
		c.SubmittedAt, c.RejectReason = now, ""
	case StatusApproved, StatusRejected:
		if action == "approve" || action == "reject" {
			c.ReviewedAt, c.ReviewedBy, c.RejectReason = now, p.UserID, reason
		}
	}
	c, err := s.save(ctx, c, now)
	if err != nil {
		return Content{}, err
	}
	switch action {
	case "submit":
		s.audit(ctx, p.UserID, AuditContentSubmitted, c.ID, "", nil)
	case "archive":
		s.audit(ctx, p.UserID, AuditContentArchived, c.ID, "", nil)
	case "approve":
		s.audit(ctx, p.UserID, AuditContentApproved, c.ID, "", map[string]string{"advertiser": c.AdvertiserID.String()})
	case "reject":
		s.audit(ctx, p.UserID, AuditContentRejected, c.ID, reason, map[string]string{"advertiser": c.AdvertiserID.String()})
	}
	return c, nil
}

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

// audit records a content event; a failure is logged, not returned.
func (s *Service) audit(ctx context.Context, actor uuid.UUID, action string, target uuid.UUID, reason string, details map[string]string) {
	c := auth.ClientFromContext(ctx)
	outcome := auth.OutcomeSuccess
	if action == auth.AuditAccessDenied {
		outcome = auth.OutcomeDenied
	}
	err := s.cfg.Audit.AppendAudit(context.WithoutCancel(ctx), auth.AuditEvent{
		At: s.now().UTC(), ActorID: actor, Action: action, TargetType: "content", TargetID: target.String(),
		IP: c.IP, UserAgent: c.UserAgent, Outcome: outcome, Reason: reason, Details: details,
	})
	if err != nil {
		s.logger.ErrorContext(ctx, "adspace: audit append failed", "action", action, "error", err)
	}
}
