package realtime

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

// AuditAnnouncement is the audit action of an administrator's broadcast.
const AuditAnnouncement = "admin.announcement.sent"

// AnnouncementKinds are the kinds an announcement may have; the app may
// style each its own way. The first is the default.
var AnnouncementKinds = []string{"announcement", "maintenance", "incident"}

// MaxAnnouncementLen is the most characters an announcement's message has.
const MaxAnnouncementLen = 500

// ErrInvalidAnnouncement is returned for an announcement without a
// message, with one too long or with control characters, or of an unknown
// kind; its Fields say which.
var ErrInvalidAnnouncement = errs.New(errs.Invalid, "invalid_announcement", "the announcement is not valid")

// ErrAnnouncementNotSent is returned when the broker did not take an
// announcement: nothing was sent, and trying again later may work.
var ErrAnnouncementNotSent = errs.New(errs.Unavailable, "announcement_not_sent", "the announcement could not be sent; try again")

// Announcement is a broadcast that was sent.
type Announcement struct {
	ID      uuid.UUID
	Kind    string
	Message string
	SentAt  time.Time
	SentBy  uuid.UUID
}

// Announcer sends administrators' announcements to every connected client
// (system.alert on the alerts topic, kept in its history so that a client
// that reconnects soon after still sees it), on every instance, and
// audits each. Create it with NewAnnouncer.
type Announcer struct {
	pub   *Publisher
	authz Authorizer
	audit auth.AuditLog
}

// NewAnnouncer returns an announcer that publishes with pub, lets through
// principals with auth.PermAnnounce (authz) and records each broadcast in
// audit.
func NewAnnouncer(pub *Publisher, authz Authorizer, audit auth.AuditLog) (*Announcer, error) {
	if pub == nil || authz == nil || audit == nil {
		return nil, fmt.Errorf("realtime: NewAnnouncer needs a publisher, an authorizer and an audit log")
	}
	return &Announcer{pub: pub, authz: authz, audit: audit}, nil
}

// Announce checks that p may announce and that the announcement is valid
// (kind empty for the default, or one of AnnouncementKinds; a message of 1
// to MaxAnnouncementLen characters of valid UTF-8 with no control
// characters but newlines), publishes it, and audits it. Nothing is sent
// when a check fails; a broker that does not answer is an error and the
// attempt is audited as failed.
func (a *Announcer) Announce(ctx context.Context, p auth.Principal, kind, message string) (Announcement, error) {
	if err := a.authz.Authorize(ctx, p, auth.PermAnnounce); err != nil {
		return Announcement{}, err
	}
	if kind == "" {
		kind = AnnouncementKinds[0]
	}
	message = strings.TrimSpace(message)
	var f errs.Fields
	f.Check(slices.Contains(AnnouncementKinds, kind), "kind", "must be one of "+strings.Join(AnnouncementKinds, ", "))
	switch {
	case !utf8.ValidString(message):
		f.Add("message", "must be valid UTF-8")
	case message == "":
		f.Add("message", "is required")
	case utf8.RuneCountInString(message) > MaxAnnouncementLen:
		f.Add("message", fmt.Sprintf("must be at most %d characters", MaxAnnouncementLen))
	case strings.ContainsFunc(message, func(r rune) bool { return r != '\n' && unicode.IsControl(r) }):
		f.Add("message", "must not contain control characters other than newlines")
	}
	if err := f.Err(ErrInvalidAnnouncement); err != nil {
		return Announcement{}, err
	}
	an := Announcement{ID: uuid.Must(uuid.NewV7()), Kind: kind, Message: message, SentAt: a.pub.now().UTC(), SentBy: p.UserID}
	err := a.pub.Broadcast(ctx, kind, message)
	e := auth.AuditEvent{ActorID: p.UserID, Action: AuditAnnouncement, TargetType: "topic", TargetID: AlertsTopic,
		Outcome: auth.OutcomeSuccess, Details: map[string]string{"announcement": an.ID.String(), "kind": kind, "message": message}}
	if err != nil {
		e.Outcome, e.Reason = auth.OutcomeFailure, "broker_unavailable"
	}
	if aerr := a.audit.AppendAudit(ctx, e); aerr != nil && err == nil {
		a.pub.logger.WarnContext(ctx, "realtime: announcement sent but not audited", slog.Any("error", aerr))
	}
	if err != nil {
		return Announcement{}, ErrAnnouncementNotSent.WithCause(err)
	}
	return an, nil
}
