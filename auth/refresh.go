package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"
)

// refreshTokenLen is the length of an encoded refresh token: 256 bits in
// unpadded base64url.
const refreshTokenLen = 43

// newRefreshToken returns a fresh refresh token: 256 bits from the CSPRNG.
func newRefreshToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashRefreshToken is what stores keep instead of the token: a leaked row
// cannot be replayed.
func hashRefreshToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// successorToken derives the token that replaces `token` on rotation:
// HMAC-SHA256 under the service's refresh key. Without the key it is as
// unpredictable as a random token; with it the service can hand the same
// successor to a second, concurrent refresh of one token (the grace window)
// without ever storing a token.
func successorToken(key []byte, token string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("adshare refresh successor\x00"))
	m.Write([]byte(token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// plausibleRefreshToken rejects input that cannot be a refresh token before
// it costs a store lookup.
func plausibleRefreshToken(token string) bool {
	if len(token) != refreshTokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil
}

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
	tp, err := s.refresh(ctx, refreshToken)
	s.metrics.refreshes.WithLabelValues(result(err)).Inc()
	return tp, err
}

func (s *Service) refresh(ctx context.Context, refreshToken string) (TokenPair, error) {
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
	s.metrics.reuses.Inc()
	s.record(ctx, AuditEvent{ActorID: sess.UserID, Action: AuditRefreshReuse, TargetType: "session",
		TargetID: sess.ID.String(), Outcome: OutcomeDenied, Reason: "refresh_token_reuse"})
	return ErrInvalidGrant
}
