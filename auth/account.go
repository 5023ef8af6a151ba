package auth

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Me returns the caller's account.
func (s *Service) Me(ctx context.Context, p Principal) (User, error) {
	if err := s.Authorize(ctx, p, PermProfile); err != nil {
		return User{}, err
	}
	return s.users.UserByID(ctx, p.UserID)
}

// UpdateProfile applies a partial change to the caller's profile and
// returns the account. Invalid fields return an error matching
// ErrInvalidProfile and change nothing.
func (s *Service) UpdateProfile(ctx context.Context, p Principal, upd ProfileUpdate) (User, error) {
	if err := s.Authorize(ctx, p, PermProfile); err != nil {
		return User{}, err
	}
	u, err := s.users.UserByID(ctx, p.UserID)
	if err != nil {
		return User{}, err
	}
	profile, err := upd.Apply(u.Profile)
	if err != nil {
		return User{}, err
	}
	u, err = s.users.UpdateProfile(ctx, p.UserID, profile, s.now())
	if err != nil {
		return User{}, err
	}
	s.record(ctx, AuditEvent{ActorID: p.UserID, Action: AuditProfileUpdated, TargetType: "user", TargetID: p.UserID.String()})
	if upd.PersonalizedAds != nil || upd.DoNotSell != nil {
		s.profileConsent(ctx, u)
	}
	return u, nil
}

// User returns any user's account, for callers with PermUsersRead.
func (s *Service) User(ctx context.Context, p Principal, id uuid.UUID) (User, error) {
	if p.UserID != id {
		if err := s.Authorize(ctx, p, PermUsersRead); err != nil {
			return User{}, err
		}
	}
	return s.users.UserByID(ctx, id)
}

// SetTier moves a user to another tier, from now on: earnings already made
// keep the tier they were made under (see TierAt). It needs PermUsersManage
// and is audited.
func (s *Service) SetTier(ctx context.Context, p Principal, user uuid.UUID, tier string) (User, error) {
	if err := s.Authorize(ctx, p, PermUsersManage); err != nil {
		return User{}, err
	}
	if _, err := s.tiers.Get(tier); err != nil {
		return User{}, err
	}
	before, err := s.users.UserByID(ctx, user)
	if err != nil {
		return User{}, err
	}
	if before.Tier == tier {
		return before, nil
	}
	u, err := s.users.SetTier(ctx, TierChange{UserID: user, Tier: tier, EffectiveAt: s.now().UTC().Truncate(time.Microsecond), ChangedBy: p.UserID})
	if err != nil {
		return User{}, err
	}
	s.record(ctx, AuditEvent{ActorID: p.UserID, Action: AuditTierChanged, TargetType: "user", TargetID: user.String(),
		Details: map[string]string{"from": before.Tier, "to": tier}})
	return u, nil
}

// TierAt returns the tier a user was on at a moment, for settling earnings
// made then.
func (s *Service) TierAt(ctx context.Context, user uuid.UUID, at time.Time) (Tier, error) {
	return s.history.TierAt(ctx, user, at)
}

// SetRole changes a user's role. It needs PermUsersManage, is audited, and
// invalidates the user's current access tokens so that the next request
// refreshes and carries the new role. Admins cannot change their own role
// (so that the last admin cannot lock everyone out by mistake).
func (s *Service) SetRole(ctx context.Context, p Principal, user uuid.UUID, role Role) (User, error) {
	if err := s.Authorize(ctx, p, PermUsersManage); err != nil {
		return User{}, err
	}
	if !role.Valid() {
		return User{}, ErrInvalidRole
	}
	if user == p.UserID {
		return User{}, ErrForbidden.WithMessage("you cannot change your own role")
	}
	before, err := s.users.UserByID(ctx, user)
	if err != nil {
		return User{}, err
	}
	if before.Role == role {
		return before, nil
	}
	now := s.now()
	u, err := s.users.SetRole(ctx, user, role, now)
	if err != nil {
		return User{}, err
	}
	// Tokens carry their issue time to the microsecond: every token issued
	// before this moment is refused, every one issued after passes.
	if err := s.revoked.RevokeUserTokensBefore(ctx, user, now, s.accessTokenHorizon(now)); err != nil {
		return User{}, err
	}
	s.record(ctx, AuditEvent{ActorID: p.UserID, Action: AuditRoleChanged, TargetType: "user", TargetID: user.String(),
		Details: map[string]string{"from": string(before.Role), "to": string(role)}})
	return u, nil
}

// BecomeAdvertiser lets a user create and fund ads: it gives a caller with
// the user role the advertiser role once they accept the advertiser terms
// in force (Config.AdvertiserTerms), and audits the acceptance. It is the
// self-serve path; admins still set any role. A caller who already has
// the permission to create content keeps their role. The caller's current
// access tokens are refused from then on (they carry the old role): the app
// refreshes. Errors: ErrInvalidTerms when termsVersion is not the version
// in force (the terms changed since the app showed them).
//
// Becoming an advertiser costs nothing and moves no money: ads run only on
// budget that a verified payment funded, and top-ups carry their own fraud
// controls.
func (s *Service) BecomeAdvertiser(ctx context.Context, p Principal, termsVersion string) (User, error) {
	if err := s.Authorize(ctx, p, PermProfile); err != nil {
		return User{}, err
	}
	if termsVersion != s.cfg.AdvertiserTerms {
		return User{}, ErrInvalidTerms.WithFields(map[string]string{
			"terms_version": "the advertiser terms in force are version " + s.cfg.AdvertiserTerms,
		})
	}
	before, err := s.users.UserByID(ctx, p.UserID)
	if err != nil {
		return User{}, err
	}
	if s.rbac.Can(before.Role, PermContentCreate) {
		return before, nil
	}
	if before.Role != RoleUser {
		return User{}, ErrForbidden.WithMessage("only users may become advertisers themselves")
	}
	now := s.now()
	u, err := s.users.SetRole(ctx, p.UserID, RoleAdvertiser, now)
	if err != nil {
		return User{}, err
	}
	if err := s.revoked.RevokeUserTokensBefore(ctx, p.UserID, now, s.accessTokenHorizon(now)); err != nil {
		return User{}, err
	}
	s.record(ctx, AuditEvent{ActorID: p.UserID, Action: AuditAdvertiserTermsAccepted, TargetType: "user", TargetID: p.UserID.String(),
		Details: map[string]string{"from": string(before.Role), "to": string(RoleAdvertiser), "terms_version": termsVersion}})
	return u, nil
}

// AuditEvents returns audit events, for callers with PermAuditRead.
func (s *Service) AuditEvents(ctx context.Context, p Principal, f AuditFilter) ([]AuditEvent, error) {
	if err := s.Authorize(ctx, p, PermAuditRead); err != nil {
		return nil, err
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	return s.audit.AuditEvents(ctx, f)
}
