package adspace

import (
	"context"
	"time"

	"github.com/google/uuid"
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

// QueuePlace is a place in the review queue, which is ordered by
// submission time and then id: a page that ended with content c goes on
// from QueuePlace{c.SubmittedAt, c.ID}, so that contents submitted in the
// same instant are neither skipped nor repeated across pages. With a nil
// ID it is just after everything submitted at SubmittedAt.
type QueuePlace struct {
	SubmittedAt time.Time
	ID          uuid.UUID
}
