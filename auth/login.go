package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/internal/errs"
)

// Registration is what a new user sends to sign up with a password.
type Registration struct {
	Email       string
	Password    string
	DisplayName string
}

// errRegistrationClosed: the host turned password sign-up off.
var errRegistrationClosed = errs.New(errs.Forbidden, "registration_closed", "sign-up with a password is not open")

// Register creates an account with a password and signs it in. The email
// must be free (ErrEmailTaken otherwise: sign-up is rate-limited per client,
// which bounds what the answer reveals), the password must pass
// CheckPassword (ErrWeakPassword), and the display name must be valid
// (ErrInvalidProfile).
func (s *Service) Register(ctx context.Context, r Registration) (User, TokenPair, error) {
	u, tp, err := s.register(ctx, r)
	s.metrics.registrations.WithLabelValues(result(err)).Inc()
	return u, tp, err
}

func (s *Service) register(ctx context.Context, r Registration) (User, TokenPair, error) {
	if !boolOr(s.cfg.AllowPasswordRegistration, true) {
		return User{}, TokenPair{}, errRegistrationClosed
	}
	u, err := NewUser(r.Email, RoleUser, DefaultTier, s.now())
	var fields errs.Fields
	if e := errs.As(err); e != nil {
		for k, v := range e.Fields {
			fields.Add(k, v)
		}
	} else if err != nil {
		return User{}, TokenPair{}, err
	}
	if e := errs.As(CheckPassword(r.Password, u.Email)); e != nil {
		fields.Add("password", e.Fields["password"])
	}
	profile := DefaultProfile()
	profile.DisplayName = r.DisplayName
	if p, err := profile.Normalize(); err != nil {
		fields.Add("display_name", errs.As(err).Fields["display_name"])
	} else {
		u.Profile = p
	}
	if err := fields.Err(ErrInvalidUser); err != nil {
		return User{}, TokenPair{}, err
	}
	if err := s.allow(ctx, "register:ip:"+clientBucket(ClientFromContext(ctx).IP), s.cfg.RegisterLimitPerClient); err != nil {
		return User{}, TokenPair{}, err
	}
	hash, err := s.hasher.Hash(ctx, r.Password)
	if err != nil {
		return User{}, TokenPair{}, err
	}
	if err := s.users.CreateAccount(ctx, NewAccount{User: u, PasswordHash: hash}); err != nil {
		return User{}, TokenPair{}, err
	}
	s.accountCreated(ctx, u)
	pair, _, err := s.startSession(ctx, u, "password")
	if err != nil {
		return User{}, TokenPair{}, err
	}
	s.record(ctx, AuditEvent{ActorID: u.ID, Action: AuditRegister, TargetType: "user", TargetID: u.ID.String(),
		Details: map[string]string{"method": "password", "session": pair.SessionID.String()}})
	return u, pair, nil
}

// Login signs in with email and password. An unknown email, an account
// without a password and a wrong password all return ErrInvalidCredentials
// after the same work (a password hash is verified in every case), so the
// answer reveals no account. Attempts are limited per account and per
// client (ErrTooManyAttempts with RetryAfter; never a permanent lock-out);
// when the limiter cannot answer, sign-in fails closed.
func (s *Service) Login(ctx context.Context, email, password string) (User, TokenPair, error) {
	u, tp, err := s.login(ctx, email, password)
	s.metrics.logins.WithLabelValues(result(err)).Inc()
	return u, tp, err
}

func (s *Service) login(ctx context.Context, email, password string) (User, TokenPair, error) {
	client := ClientFromContext(ctx)
	normalized, emailErr := NormalizeEmail(email)
	if emailErr != nil {
		normalized = email
	}
	account := s.emailKey(normalized)
	for _, check := range []struct {
		key   string
		limit Limit
	}{
		{"login:ip:" + clientBucket(client.IP), s.cfg.LoginLimitPerClient},
		{"login:account:" + account, s.cfg.LoginLimitPerAccount},
	} {
		if err := s.allow(ctx, check.key, check.limit); err != nil {
			if errors.Is(err, ErrTooManyAttempts) {
				s.record(ctx, AuditEvent{Action: AuditLoginThrottled, TargetType: "email", TargetID: account,
					Outcome: OutcomeDenied, Reason: "rate_limited"})
			}
			return User{}, TokenPair{}, err
		}
	}

	var (
		u       User
		encoded string
		reason  = "unknown_email"
	)
	if emailErr == nil {
		var err error
		u, err = s.users.UserByEmail(ctx, normalized)
		switch {
		case err == nil:
			encoded, err = s.users.PasswordHash(ctx, u.ID)
			switch {
			case errors.Is(err, ErrNoPassword):
				reason = "no_password"
			case err != nil:
				return User{}, TokenPair{}, err
			}
		case !errors.Is(err, ErrUserNotFound):
			return User{}, TokenPair{}, err
		}
	}
	ok, rehash, err := s.hasher.Verify(ctx, password, encoded)
	if err != nil {
		return User{}, TokenPair{}, err
	}
	if !ok {
		if encoded != "" {
			reason = "wrong_password"
		}
		target, targetType := account, "email"
		if u.ID != uuid.Nil {
			target, targetType = u.ID.String(), "user"
		}
		s.record(ctx, AuditEvent{Action: AuditLoginFailure, TargetType: targetType, TargetID: target,
			Outcome: OutcomeFailure, Reason: reason})
		return User{}, TokenPair{}, ErrInvalidCredentials
	}
	if rehash {
		if h, err := s.hasher.Hash(ctx, password); err == nil {
			_ = s.users.SetPasswordHash(ctx, u.ID, h, s.now())
		}
	}
	pair, _, err := s.startSession(ctx, u, "password")
	if err != nil {
		return User{}, TokenPair{}, err
	}
	s.record(ctx, AuditEvent{ActorID: u.ID, Action: AuditLoginSuccess, TargetType: "user", TargetID: u.ID.String(),
		Details: map[string]string{"method": "password", "session": pair.SessionID.String()}})
	return u, pair, nil
}

// ChangePassword replaces the caller's password after checking the current
// one (re-authentication for a sensitive change), and ends every other
// session of the user. Accounts without a password (identity-provider only)
// may set one by passing an empty current password.
func (s *Service) ChangePassword(ctx context.Context, p Principal, current, next string) error {
	if err := s.Authorize(ctx, p, PermProfile); err != nil {
		return err
	}
	u, err := s.users.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	encoded, err := s.users.PasswordHash(ctx, u.ID)
	if err != nil && !errors.Is(err, ErrNoPassword) {
		return err
	}
	if encoded != "" || current != "" {
		if err := s.allow(ctx, "login:account:"+s.emailKey(u.Email), s.cfg.LoginLimitPerAccount); err != nil {
			return err
		}
		ok, _, err := s.hasher.Verify(ctx, current, encoded)
		if err != nil {
			return err
		}
		if !ok {
			s.record(ctx, AuditEvent{ActorID: u.ID, Action: AuditPasswordChanged, TargetType: "user", TargetID: u.ID.String(),
				Outcome: OutcomeFailure, Reason: "wrong_password"})
			return ErrInvalidCredentials.WithMessage("the current password is wrong")
		}
	}
	if err := CheckPassword(next, u.Email); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	now := s.now()
	if err := s.users.SetPasswordHash(ctx, u.ID, hash, now); err != nil {
		return err
	}
	ended, err := s.endUserSessions(ctx, u.ID, p.SessionID, RevokePasswordChanged)
	if err != nil {
		return err
	}
	s.record(ctx, AuditEvent{ActorID: u.ID, Action: AuditPasswordChanged, TargetType: "user", TargetID: u.ID.String(),
		Details: map[string]string{"sessions_ended": fmt.Sprint(ended)}})
	return nil
}

// endUserSessions revokes the user's sessions but `except` in the store
// and in the revocation list, and returns how many it ended.
func (s *Service) endUserSessions(ctx context.Context, user, except uuid.UUID, reason string) (int, error) {
	now := s.now()
	ended, err := s.sessions.RevokeUserSessions(ctx, user, except, reason, now)
	if err != nil {
		return 0, err
	}
	until := s.accessTokenHorizon(now)
	for _, sess := range ended {
		if err := s.revoked.RevokeSession(ctx, sess.ID, until); err != nil {
			return 0, fmt.Errorf("auth: revoke session tokens: %w", err)
		}
	}
	return len(ended), nil
}

// accessTokenHorizon is when every access token issued up to now has
// expired, leeway included: revocation entries need not outlive it.
func (s *Service) accessTokenHorizon(now time.Time) time.Time {
	return now.Add(s.tokens.TTL() + s.tokens.Leeway() + time.Second)
}
