package auth

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Audit actions written by this package. Other packages add their own,
// in the same dotted style.
const (
	AuditRegister        = "auth.register"
	AuditLoginSuccess    = "auth.login.success"
	AuditLoginFailure    = "auth.login.failure"
	AuditLoginThrottled  = "auth.login.throttled"
	AuditRefresh         = "auth.refresh"
	AuditRefreshGrace    = "auth.refresh.grace"
	AuditRefreshReuse    = "auth.refresh.reuse_detected"
	AuditRefreshFailure  = "auth.refresh.failure"
	AuditLogout          = "auth.logout"
	AuditSessionRevoked  = "auth.session.revoked"
	AuditPasswordChanged = "auth.password.changed"
	AuditOIDCLogin       = "auth.oidc.login"
	AuditOIDCFailure     = "auth.oidc.failure"
	AuditIdentityLinked  = "auth.identity.linked"
	AuditProfileUpdated  = "user.profile.updated"
	AuditRoleChanged     = "admin.role.changed"
	// AuditAdvertiserTermsAccepted: a user accepted the advertiser terms
	// and became an advertiser (BecomeAdvertiser).
	AuditAdvertiserTermsAccepted = "user.advertiser_terms_accepted"
	AuditTierChanged             = "admin.tier.changed"
	AuditAccessDenied            = "authz.denied"
	AuditTokenRejected           = "auth.token.rejected"
)

// Outcomes of an audited action.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// AuditEvent is one entry of the append-only security log: who did what to
// what, from where, when, and how it ended. It never holds a secret: no
// passwords, no tokens (at most a token's id), no password hashes.
type AuditEvent struct {
	// ID orders events; the store assigns it.
	ID int64
	At time.Time
	// ActorID is the user who acted; uuid.Nil for anonymous clients (a
	// failed login names no actor).
	ActorID uuid.UUID
	// Action is a dotted name such as AuditLoginFailure.
	Action string
	// TargetType and TargetID name what was acted on, e.g. "user" and an id,
	// or "email" and a keyed hash of an unknown email.
	TargetType string
	TargetID   string
	// IP and UserAgent describe the client.
	IP        string
	UserAgent string
	// Outcome is OutcomeSuccess, OutcomeFailure or OutcomeDenied.
	Outcome string
	// Reason says why an action failed or was denied, e.g. "wrong_password".
	Reason string
	// Details holds small extra facts, e.g. {"from": "free", "to": "pro"}.
	Details map[string]string
}

// AuditFilter selects audit events. Zero fields do not filter.
type AuditFilter struct {
	ActorID  uuid.UUID
	TargetID string
	Action   string
	Since    time.Time
	Until    time.Time
	// BeforeID pages backwards: only events with a smaller ID.
	BeforeID int64
	// Limit caps the events returned (newest first); 0 means 100, at most 1000.
	Limit int
}

// AuditLog is the append-only store of audit events. Implementations never
// update or delete an event.
type AuditLog interface {
	// AppendAudit stores e durably (the store assigns its ID); it returns
	// after the event is committed.
	AppendAudit(ctx context.Context, e AuditEvent) error
	// AuditEvents returns the events that match f, newest first.
	AuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
}
