package auth

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Session is one sign-in on one device: the family of refresh tokens that
// descend from it, and the `sid` claim of every access token it issues.
type Session struct {
	ID     uuid.UUID
	UserID uuid.UUID
	// Method says how the session began: "password" or "oidc:<provider>".
	Method string
	// UserAgent and IP describe the client at sign-in, so the user can
	// recognise the session in a list.
	UserAgent string
	IP        string
	CreatedAt time.Time
	// LastUsedAt is when a refresh token of the session was last used.
	LastUsedAt time.Time
	// IdleExpiresAt moves forward with each refresh; AbsoluteExpiresAt never
	// moves. A session past either is over.
	IdleExpiresAt     time.Time
	AbsoluteExpiresAt time.Time
	// Generation counts refresh-token rotations: the live token is the
	// session's Generation-th.
	Generation int64
	// RevokedAt is zero while the session is live.
	RevokedAt    time.Time
	RevokeReason string
}

// Live reports whether the session may still be refreshed at now.
func (s Session) Live(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.IdleExpiresAt) && now.Before(s.AbsoluteExpiresAt)
}

// Reasons a session ends.
const (
	RevokeLogout          = "logout"
	RevokeUser            = "revoked_by_user"
	RevokeAdmin           = "revoked_by_admin"
	RevokeRefreshReuse    = "refresh_token_reuse"
	RevokePasswordChanged = "password_changed"
)

// Rotation asks SessionStore.RotateRefreshToken to replace one refresh
// token with its successor.
type Rotation struct {
	// OldHash is the SHA-256 of the presented refresh token.
	OldHash []byte
	// NewHash is the SHA-256 of its successor.
	NewHash []byte
	// Now is the moment of the rotation.
	Now time.Time
	// IdleTimeout moves the session's idle expiry to Now+IdleTimeout
	// (never past its absolute expiry).
	IdleTimeout time.Duration
}

// RotationResult says what RotateRefreshToken found and did.
type RotationResult struct {
	// Session is the token's session, after the rotation when Rotated.
	Session Session
	// Rotated is true when the token was live and is now replaced.
	Rotated bool
	// UserRole is the session user's current role (read in the same
	// operation, so a refresh needs no second query).
	UserRole Role
	// When not Rotated, the presented token had been used already:
	// UsedAt says when, and SuccessorUnused whether the token that replaced
	// it has not been used yet (the presented token is then the session's
	// immediately previous one).
	UsedAt          time.Time
	SuccessorUnused bool
}

// SessionStore keeps sessions and their refresh tokens. Refresh tokens are
// stored only as SHA-256 hashes.
type SessionStore interface {
	// CreateSession stores a new session at generation 1 with its first
	// refresh token. It returns ErrUserNotFound for an unknown user and
	// ErrSessionExists when the id or the token hash is taken.
	CreateSession(ctx context.Context, s Session, tokenHash []byte) error

	// Session returns the session, live or not, or ErrSessionNotFound.
	Session(ctx context.Context, id uuid.UUID) (Session, error)

	// UserSessions returns the user's live sessions at now, most recently
	// used first.
	UserSessions(ctx context.Context, user uuid.UUID, now time.Time) ([]Session, error)

	// RotateRefreshToken atomically marks the token with hash r.OldHash
	// used, stores r.NewHash as the session's next token and moves the
	// session's idle expiry, provided the token is unused and the session
	// live. Of two concurrent rotations of one token exactly one rotates;
	// the other reports the token as used.
	//
	// It returns ErrRefreshTokenUnknown when no token has the hash,
	// ErrSessionRevoked or ErrSessionExpired when the session is over (the
	// result then holds the session), and a result with Rotated false when
	// the token was used before (see RotationResult).
	RotateRefreshToken(ctx context.Context, r Rotation) (RotationResult, error)

	// RevokeSession ends the session with a reason and returns it. Revoking
	// a revoked session keeps the first revocation and is not an error. It
	// returns ErrSessionNotFound for an unknown id.
	RevokeSession(ctx context.Context, id uuid.UUID, reason string, now time.Time) (Session, error)

	// RevokeUserSessions ends every live session of the user except the one
	// with id `except` (uuid.Nil for none), and returns the sessions it ended.
	RevokeUserSessions(ctx context.Context, user uuid.UUID, except uuid.UUID, reason string, now time.Time) ([]Session, error)
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
