package auth

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Refresh rotates a refresh token: it returns a new access token and the
// token's successor, and the presented token stops working.
//
// Reuse detection: a refresh token used a second time means it was copied,
// so the whole session is revoked (its refresh tokens and, through the
// revocation list, its access tokens on every instance), the event is
// audited as AuditRefreshReuse, and ErrInvalidGrant is returned.
//
// One exception, documented for client authors: an app that sends the same
// refresh token twice at once (two requests racing after a resume) would
// otherwise lose its session. Within the grace window (Config.RefreshGrace,
// 10 s by default) after a rotation, a second use of the token that was just
// replaced — while its successor is still unused — returns that same
// successor (with a fresh access token) instead of revoking. Any later use,
// or any use once the successor has been used, is reuse. Clients should
// still refresh one request at a time.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (TokenPair, error) {
	if err := s.allow(ctx, "refresh:ip:"+clientBucket(ClientFromContext(ctx).IP), s.cfg.RefreshLimitPerClient); err != nil {
		return TokenPair{}, err
	}
	if !plausibleRefreshToken(refreshToken) {
		s.record(ctx, AuditEvent{Action: AuditRefreshFailure, Outcome: OutcomeFailure, Reason: "malformed"})
		return TokenPair{}, ErrInvalidGrant
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	successor := successorToken(s.cfg.RefreshKey, refreshToken)
	res, err := s.sessions.RotateRefreshToken(ctx, Rotation{
		OldHash: hashRefreshToken(refreshToken), NewHash: hashRefreshToken(successor),
		Now: now, IdleTimeout: s.cfg.SessionIdleTimeout,
	})
	switch {
	case errors.Is(err, ErrRefreshTokenUnknown):
		s.record(ctx, AuditEvent{Action: AuditRefreshFailure, Outcome: OutcomeFailure, Reason: "unknown_token"})
		return TokenPair{}, ErrInvalidGrant
	case errors.Is(err, ErrSessionRevoked), errors.Is(err, ErrSessionExpired):
		reason := "session_revoked"
		if errors.Is(err, ErrSessionExpired) {
			reason = "session_expired"
		}
		s.record(ctx, AuditEvent{ActorID: res.Session.UserID, Action: AuditRefreshFailure, TargetType: "session",
			TargetID: res.Session.ID.String(), Outcome: OutcomeFailure, Reason: reason})
		return TokenPair{}, ErrInvalidGrant.WithCause(err)
	case err != nil:
		return TokenPair{}, err
	}
	sess := res.Session
	action := AuditRefresh
	if !res.Rotated {
		inGrace := s.cfg.RefreshGrace > 0 && res.SuccessorUnused && now.Sub(res.UsedAt) <= s.cfg.RefreshGrace
		if !inGrace {
			return TokenPair{}, s.reuseDetected(ctx, sess)
		}
		action = AuditRefreshGrace
	}
	// The role may have changed since sign-in: tokens carry the current one.
	pair, err := s.tokenPair(sess.UserID, res.UserRole, sess, successor)
	if err != nil {
		return TokenPair{}, err
	}
	s.record(ctx, AuditEvent{ActorID: sess.UserID, Action: action, TargetType: "session", TargetID: sess.ID.String(),
		Details: map[string]string{"generation": itoa(sess.Generation)}})
	return pair, nil
}

// reuseDetected revokes a session whose refresh token was used twice.
func (s *Service) reuseDetected(ctx context.Context, sess Session) error {
	if _, err := s.sessions.RevokeSession(ctx, sess.ID, RevokeRefreshReuse, s.now()); err != nil {
		return err
	}
	if err := s.revoked.RevokeSession(ctx, sess.ID, s.accessTokenHorizon(s.now())); err != nil {
		return err
	}
	s.record(ctx, AuditEvent{ActorID: sess.UserID, Action: AuditRefreshReuse, TargetType: "session",
		TargetID: sess.ID.String(), Outcome: OutcomeDenied, Reason: "refresh_token_reuse"})
	return ErrInvalidGrant
}

// Logout ends the caller's session at once: its refresh token stops
// working and its access tokens are refused by every instance.
func (s *Service) Logout(ctx context.Context, p Principal) error {
	return s.endSession(ctx, p.UserID, p.SessionID, RevokeLogout, AuditLogout)
}

// LogoutWithRefreshToken ends the session a refresh token belongs to, for
// clients whose access token has expired. An unknown or malformed token is
// ErrInvalidGrant; a used one is reuse (the session is revoked anyway).
func (s *Service) LogoutWithRefreshToken(ctx context.Context, refreshToken string) error {
	if !plausibleRefreshToken(refreshToken) {
		return ErrInvalidGrant
	}
	// Rotating with an unusable successor is the atomic "find and retire"
	// the stores offer; the successor is never handed out.
	now := s.now().UTC().Truncate(time.Microsecond)
	res, err := s.sessions.RotateRefreshToken(ctx, Rotation{
		OldHash: hashRefreshToken(refreshToken), NewHash: hashRefreshToken(newRefreshToken()),
		Now: now, IdleTimeout: s.cfg.SessionIdleTimeout,
	})
	switch {
	case errors.Is(err, ErrRefreshTokenUnknown):
		return ErrInvalidGrant
	case errors.Is(err, ErrSessionRevoked), errors.Is(err, ErrSessionExpired):
		return nil // already over
	case err != nil:
		return err
	}
	return s.endSession(ctx, res.Session.UserID, res.Session.ID, RevokeLogout, AuditLogout)
}

func (s *Service) endSession(ctx context.Context, user, sid uuid.UUID, reason, action string) error {
	now := s.now()
	if _, err := s.sessions.RevokeSession(ctx, sid, reason, now); err != nil {
		return err
	}
	if err := s.revoked.RevokeSession(ctx, sid, s.accessTokenHorizon(now)); err != nil {
		return err
	}
	s.record(ctx, AuditEvent{ActorID: user, Action: action, TargetType: "session", TargetID: sid.String(), Reason: reason})
	return nil
}

// Sessions lists the caller's live sessions, most recently used first.
func (s *Service) Sessions(ctx context.Context, p Principal) ([]Session, error) {
	if err := s.Authorize(ctx, p, PermProfile); err != nil {
		return nil, err
	}
	return s.sessions.UserSessions(ctx, p.UserID, s.now())
}

// RevokeSession ends one of the caller's sessions. A session that is not
// the caller's is ErrSessionNotFound, exactly like one that does not exist.
func (s *Service) RevokeSession(ctx context.Context, p Principal, sid uuid.UUID) error {
	if err := s.Authorize(ctx, p, PermProfile); err != nil {
		return err
	}
	sess, err := s.sessions.Session(ctx, sid)
	if err != nil {
		return err
	}
	if sess.UserID != p.UserID {
		s.record(ctx, AuditEvent{ActorID: p.UserID, Action: AuditAccessDenied, TargetType: "session", TargetID: sid.String(),
			Outcome: OutcomeDenied, Reason: "not_owner"})
		return ErrSessionNotFound
	}
	return s.endSession(ctx, p.UserID, sid, RevokeUser, AuditSessionRevoked)
}

// RevokeAllSessions ends every session of the caller, or every other one
// when keepCurrent is set, and returns how many it ended.
func (s *Service) RevokeAllSessions(ctx context.Context, p Principal, keepCurrent bool) (int, error) {
	if err := s.Authorize(ctx, p, PermProfile); err != nil {
		return 0, err
	}
	except := uuid.Nil
	if keepCurrent {
		except = p.SessionID
	}
	n, err := s.endUserSessions(ctx, p.UserID, except, RevokeUser)
	if err != nil {
		return 0, err
	}
	s.record(ctx, AuditEvent{ActorID: p.UserID, Action: AuditSessionRevoked, TargetType: "user", TargetID: p.UserID.String(),
		Details: map[string]string{"sessions_ended": itoa(int64(n)), "kept_current": boolString(keepCurrent)}})
	return n, nil
}

// RevokeUserSessionsAsAdmin ends every session of another user.
func (s *Service) RevokeUserSessionsAsAdmin(ctx context.Context, p Principal, user uuid.UUID) (int, error) {
	if err := s.Authorize(ctx, p, PermUsersManage); err != nil {
		return 0, err
	}
	if _, err := s.users.UserByID(ctx, user); err != nil {
		return 0, err
	}
	n, err := s.endUserSessions(ctx, user, uuid.Nil, RevokeAdmin)
	if err != nil {
		return 0, err
	}
	s.record(ctx, AuditEvent{ActorID: p.UserID, Action: AuditSessionRevoked, TargetType: "user", TargetID: user.String(),
		Reason: RevokeAdmin, Details: map[string]string{"sessions_ended": itoa(int64(n))}})
	return n, nil
}
