package auth

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Authenticate verifies an access token and checks the revocation list:
// the token must be well signed and current (ErrUnauthenticated otherwise)
// and its session not ended nor the user's tokens invalidated
// (ErrTokenRevoked). When the revocation list cannot answer, it fails
// closed with an Unavailable error.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (Principal, error) {
	p, err := s.tokens.Verify(accessToken)
	if err != nil {
		reason := tokenRejection(err)
		s.metrics.rejected.WithLabelValues(reason).Inc()
		s.recordRejection(ctx, reason)
		return Principal{}, err
	}
	if err := s.revoked.CheckToken(ctx, p.SessionID, p.UserID, p.IssuedAt); err != nil {
		if errors.Is(err, ErrTokenRevoked) {
			s.metrics.rejected.WithLabelValues("revoked").Inc()
			s.record(ctx, AuditEvent{ActorID: p.UserID, Action: AuditTokenRejected, TargetType: "session",
				TargetID: p.SessionID.String(), Outcome: OutcomeDenied, Reason: "revoked"})
			return Principal{}, err
		}
		return Principal{}, ErrAuthUnavailable.WithCause(err)
	}
	return p, nil
}

// Authorizer answers whether a principal may do something, by role, and
// audits every denial. It needs only the role table and the audit log, so
// the services that check permissions (adspace, analytics) can be built
// before the auth Service, which in turn tells them of new accounts. Safe
// for concurrent use.
type Authorizer struct {
	rbac  *RBAC
	audit auditor
}

// NewAuthorizer returns an authorizer over rbac (DefaultRolePermissions
// when nil) that appends denials to audit. logger (nil: discard) receives
// audit failures; now (nil: time.Now) stamps the events.
func NewAuthorizer(rbac *RBAC, audit AuditLog, logger *slog.Logger, now func() time.Time) (*Authorizer, error) {
	if audit == nil {
		return nil, errors.New("auth: NewAuthorizer needs the AuditLog (store/memory.New() or store/postgres)")
	}
	if rbac == nil {
		var err error
		if rbac, err = NewRBAC(DefaultRolePermissions()); err != nil {
			return nil, err
		}
	}
	return &Authorizer{rbac: rbac, audit: newAuditor(audit, logger, now)}, nil
}

// Authorize returns nil when the principal's role has permission perm, and
// otherwise audits the denial and returns ErrForbidden.
func (a *Authorizer) Authorize(ctx context.Context, p Principal, perm Permission) error {
	if p.UserID != uuid.Nil && a.rbac.Can(p.Role, perm) {
		return nil
	}
	a.audit.record(ctx, AuditEvent{ActorID: p.UserID, Action: AuditAccessDenied, TargetType: "permission", TargetID: string(perm),
		Outcome: OutcomeDenied, Reason: "missing_permission", Details: map[string]string{"role": string(p.Role)}})
	return ErrForbidden
}

// Authorize returns nil when the principal's role has permission perm, and
// otherwise audits the denial and returns ErrForbidden.
func (s *Service) Authorize(ctx context.Context, p Principal, perm Permission) error {
	return s.authz.Authorize(ctx, p, perm)
}

// tokenRejectionAuditLimit bounds the audit events written for rejected
// tokens per client address, so that garbage tokens cannot grow the log at
// request rate.
var tokenRejectionAuditLimit = Limit{Rate: 30, Period: time.Minute, Burst: 30}

// recordRejection audits a refused access token, except an expired one
// (every well-behaved app presents one now and then before refreshing),
// and at most tokenRejectionAuditLimit per client address.
func (s *Service) recordRejection(ctx context.Context, reason string) {
	if reason == "expired" {
		return
	}
	res, err := s.limiter.Allow(ctx, "audit:token:"+clientBucket(ClientFromContext(ctx).IP), tokenRejectionAuditLimit)
	if err != nil || !res.Allowed {
		return
	}
	s.record(ctx, AuditEvent{Action: AuditTokenRejected, TargetType: "access_token", Outcome: OutcomeDenied, Reason: reason})
}

// tokenRejection names why an access token failed verification, for the
// audit log (never the token itself).
func tokenRejection(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not_yet_valid"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong_issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong_audience"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad_signature"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "claim_missing"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return "invalid_claims"
	}
	return "invalid"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func boolString(b bool) string { return strconv.FormatBool(b) }
