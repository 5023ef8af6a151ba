package auth

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// RevocationList lets every instance refuse access tokens before they
// expire: the tokens of a revoked session, and a user's tokens issued
// before a moment (after a role change, so the next refresh picks up the new
// role). Entries need only outlive the longest access-token lifetime.
//
// Implementations: in process (store/memory) and shared through Redis
// (store/redis), where a revocation reaches every instance at once.
type RevocationList interface {
	// RevokeSession refuses every access token of session sid until
	// `until` (the expiry of the last token the session could have issued).
	RevokeSession(ctx context.Context, sid uuid.UUID, until time.Time) error

	// RevokeUserTokensBefore refuses the user's access tokens issued before
	// `before`, until `until`. A later call with an earlier `before` does not
	// undo a later one.
	RevokeUserTokensBefore(ctx context.Context, user uuid.UUID, before, until time.Time) error

	// CheckToken returns nil when a token of session sid for user, issued at
	// issuedAt, may be used; ErrTokenRevoked when it may not; another error
	// when the list cannot answer (callers fail closed).
	CheckToken(ctx context.Context, sid, user uuid.UUID, issuedAt time.Time) error
}
