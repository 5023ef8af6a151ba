package auth

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/internal/errs"
)

// RevokeErased is the revocation reason of the sessions of an erased user.
const RevokeErased = "erased"

// ErrReauthRequired: a sensitive action (erasing the account) needs the
// password, or for an account without one a recent sign-in.
var ErrReauthRequired = errs.New(errs.Unauthenticated, "reauthentication_required",
	"confirm with your password (or, for an account without one, sign in again) to do this")

// Reauthenticate confirms that the caller is the account's holder before a
// sensitive action: password must be the account's password; an account
// without a password (identity-provider only) must instead be on a
// session that began within window. A wrong password is
// ErrInvalidCredentials (recorded in the audit log, and counted by the
// sign-in limit); no password for an account that has one, or a session
// too old, is ErrReauthRequired.
func (s *Service) Reauthenticate(ctx context.Context, p Principal, password string, window time.Duration) error {
	u, err := s.users.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	encoded, err := s.users.PasswordHash(ctx, u.ID)
	if err != nil && !errors.Is(err, ErrNoPassword) {
		return err
	}
	if encoded == "" {
		sess, err := s.sessions.Session(ctx, p.SessionID)
		if err != nil || sess.UserID != u.ID || s.now().Sub(sess.CreatedAt) > window {
			return ErrReauthRequired
		}
		return nil
	}
	if password == "" {
		return ErrReauthRequired
	}
	if err := s.allow(ctx, "login:account:"+s.emailKey(u.Email), s.cfg.LoginLimitPerAccount); err != nil {
		return err
	}
	ok, _, err := s.hasher.Verify(ctx, password, encoded)
	if err != nil {
		return err
	}
	if !ok {
		s.record(ctx, AuditEvent{ActorID: u.ID, Action: AuditReauthFailure, TargetType: "user", TargetID: u.ID.String(),
			Outcome: OutcomeFailure, Reason: "wrong_password"})
		return ErrInvalidCredentials.WithMessage("the password is wrong")
	}
	return nil
}

// AuditReauthFailure records a failed re-authentication.
const AuditReauthFailure = "auth.reauth_failure"

// EndAllSessions revokes every session of user, in the store and in the
// revocation list (which closes the user's realtime connections on every
// instance), for the user's erasure; it returns how many it ended. It
// authorizes nothing: the caller (privacy's erasure job) has.
func (s *Service) EndAllSessions(ctx context.Context, user uuid.UUID, reason string) (int, error) {
	return s.endUserSessions(ctx, user, uuid.Nil, reason)
}

// UserByID returns the user of that id, or ErrUserNotFound. It authorizes
// nothing.
func (s *Service) UserByID(ctx context.Context, id uuid.UUID) (User, error) {
	return s.users.UserByID(ctx, id)
}
