package auth

import (
	"context"
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
