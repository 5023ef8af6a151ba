package adspace

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

// Status is where ad content is in its life.
//
//	draft → pending_review → approved → paused ⇄ approved
//	                       ↘ rejected → (edit) → pending_review
//	any state → archived (final)
//
// Editing approved or paused content sends it back to pending_review: what
// runs is always what a moderator saw.
type Status string

// Content states.
const (
	StatusDraft         Status = "draft"
	StatusPendingReview Status = "pending_review"
	StatusApproved      Status = "approved"
	StatusRejected      Status = "rejected"
	StatusPaused        Status = "paused"
	StatusArchived      Status = "archived"
)

// Valid reports whether s is a known state.
func (s Status) Valid() bool {
	switch s {
	case StatusDraft, StatusPendingReview, StatusApproved, StatusRejected, StatusPaused, StatusArchived:
		return true
	}
	return false
}

// BidModel says what an advertiser pays for.
type BidModel string

// Bid models.
const (
	// BidCPM pays per thousand viewable impressions.
	BidCPM BidModel = "cpm"
	// BidCPC pays per click.
	BidCPC BidModel = "cpc"
)

// Bid is what an advertiser offers, in micros of the currency unit.
type Bid struct {
	Model  BidModel
	Micros int64
}

// Image is what the client declares about the creative's image.
type Image struct {
	// MimeType is image/png, image/jpeg, image/webp or image/gif.
	MimeType string
	Width    int
	Height   int
	// Bytes is the file size.
	Bytes int64
}

// Schedule bounds when content may run. A zero End runs until the budget
// or the advertiser stops it.
type Schedule struct {
	Start time.Time
	End   time.Time
}

// Active reports whether the schedule covers t.
func (s Schedule) Active(t time.Time) bool {
	return !t.Before(s.Start) && (s.End.IsZero() || t.Before(s.End))
}

// Content is an ad that a user (an advertiser) creates and funds, served
// by the local engine in other users' spaces.
type Content struct {
	ID           uuid.UUID
	AdvertiserID uuid.UUID
	Status       Status
	// RejectReason says why a moderator rejected it.
	RejectReason string
	// ContentDraft is the creative and its funding, as the advertiser last
	// wrote it and Rules.Check normalised it (Title and Body plain text,
	// HTML stripped); Schedule.Start is when it was written if the draft
	// left it zero.
	ContentDraft
	// Fingerprint identifies the creative for duplicate detection: the same
	// advertiser cannot have two live contents with one fingerprint.
	Fingerprint string
	// Version grows with every change (optimistic concurrency).
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	SubmittedAt time.Time // when it last entered pending_review
	ReviewedAt  time.Time
	ReviewedBy  uuid.UUID
}

// Live reports whether the content counts against the advertiser's tier
// limit and blocks duplicates: anything not archived.
func (c Content) Live() bool { return c.Status != StatusArchived }

// ContentFilter selects an advertiser's contents.
type ContentFilter struct {
	// Status, when set, keeps only contents in that state.
	Status Status
	// After pages: only contents created after the one with this id.
	After uuid.UUID
	// Limit caps the result; 0 means 50, at most 200.
	Limit int
}

// ContentStore keeps ad content.
type ContentStore interface {
	// CreateContent stores new content. It returns ErrDuplicateContent when
	// the advertiser has live content with the same fingerprint and
	// ErrOwnerNotFound when the advertiser is not a user.
	CreateContent(ctx context.Context, c Content) error

	// Content returns the content with id, or ErrContentNotFound.
	Content(ctx context.Context, id uuid.UUID) (Content, error)

	// AdvertiserContent returns the advertiser's contents, oldest first.
	AdvertiserContent(ctx context.Context, advertiser uuid.UUID, f ContentFilter) ([]Content, error)

	// CountLiveContent counts the advertiser's contents that are not archived.
	CountLiveContent(ctx context.Context, advertiser uuid.UUID) (int, error)

	// UpdateContent replaces stored content c if its stored version is
	// c.Version-1 (the caller bumps Version); else ErrVersionConflict. It
	// returns ErrContentNotFound for an unknown id and ErrDuplicateContent
	// when the new fingerprint collides with other live content.
	UpdateContent(ctx context.Context, c Content) error

	// ReviewQueue returns content pending review in (SubmittedAt, ID)
	// order, longest waiting first, from just after the given place (the
	// zero QueuePlace: from the start).
	ReviewQueue(ctx context.Context, after QueuePlace, limit int) ([]Content, error)

	// ServableContent returns approved content whose schedule covers now:
	// the local engine's inventory.
	ServableContent(ctx context.Context, now time.Time) ([]Content, error)
}

// Audit actions of this package.
const (
	AuditContentCreated   = "content.created"
	AuditContentSubmitted = "content.submitted"
	AuditContentApproved  = "moderation.approved"
	AuditContentRejected  = "moderation.rejected"
	AuditContentArchived  = "content.archived"
)

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
	if s.cfg.Changes != nil {
		s.cfg.Changes.ContentChanged(ctx, c)
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
