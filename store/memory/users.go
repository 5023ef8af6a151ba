package memory

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

// CreateAccount implements auth.UserStore.
func (s *Store) CreateAccount(ctx context.Context, a auth.NewAccount) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := a.User
	if _, ok := s.users[u.ID]; ok {
		return auth.ErrUserExists
	}
	if _, ok := s.byEmail[u.Email]; ok {
		return auth.ErrEmailTaken
	}
	if a.Identity != nil {
		if _, ok := s.identities[keyOf(a.Identity.Issuer, a.Identity.Subject)]; ok {
			return auth.ErrIdentityLinked
		}
	}
	s.users[u.ID] = u
	s.byEmail[u.Email] = u.ID
	if a.PasswordHash != "" {
		s.passwords[u.ID] = a.PasswordHash
	}
	s.tiers[u.ID] = []auth.TierChange{{UserID: u.ID, Tier: u.Tier, EffectiveAt: u.CreatedAt}}
	if a.Identity != nil {
		id := *a.Identity
		id.UserID = u.ID
		s.identities[keyOf(id.Issuer, id.Subject)] = id
	}
	return nil
}

// UserByID implements auth.UserStore.
func (s *Store) UserByID(ctx context.Context, id uuid.UUID) (auth.User, error) {
	if err := ctx.Err(); err != nil {
		return auth.User{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[id]
	if !ok {
		return auth.User{}, auth.ErrUserNotFound
	}
	return u, nil
}

// UserByEmail implements auth.UserStore.
func (s *Store) UserByEmail(ctx context.Context, email string) (auth.User, error) {
	if err := ctx.Err(); err != nil {
		return auth.User{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byEmail[email]
	if !ok {
		return auth.User{}, auth.ErrUserNotFound
	}
	return s.users[id], nil
}

// PasswordHash implements auth.UserStore.
func (s *Store) PasswordHash(ctx context.Context, id uuid.UUID) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.users[id]; !ok {
		return "", auth.ErrUserNotFound
	}
	h, ok := s.passwords[id]
	if !ok {
		return "", auth.ErrNoPassword
	}
	return h, nil
}

// SetPasswordHash implements auth.UserStore.
func (s *Store) SetPasswordHash(ctx context.Context, id uuid.UUID, hash string, now time.Time) error {
	_, err := s.updateUser(ctx, id, now, func(*auth.User) { s.passwords[id] = hash })
	return err
}

// UpdateProfile implements auth.UserStore.
func (s *Store) UpdateProfile(ctx context.Context, id uuid.UUID, p auth.Profile, now time.Time) (auth.User, error) {
	return s.updateUser(ctx, id, now, func(u *auth.User) { u.Profile = p })
}

// SetRole implements auth.UserStore.
func (s *Store) SetRole(ctx context.Context, id uuid.UUID, role auth.Role, now time.Time) (auth.User, error) {
	return s.updateUser(ctx, id, now, func(u *auth.User) { u.Role = role })
}

// SetTier implements auth.UserStore.
func (s *Store) SetTier(ctx context.Context, c auth.TierChange) (auth.User, error) {
	c.EffectiveAt = c.EffectiveAt.UTC().Truncate(time.Microsecond)
	return s.updateUser(ctx, c.UserID, c.EffectiveAt, func(u *auth.User) {
		u.Tier = c.Tier
		s.tiers[u.ID] = append(s.tiers[u.ID], c)
	})
}

// TierAt implements auth.UserStore.
func (s *Store) TierAt(ctx context.Context, id uuid.UUID, at time.Time) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	history, ok := s.tiers[id]
	if !ok {
		return "", auth.ErrUserNotFound
	}
	tier := history[0].Tier
	latest := history[0].EffectiveAt
	for _, c := range history {
		// The latest change at or before `at`; among equal times, the later recorded.
		if !c.EffectiveAt.After(at) && !c.EffectiveAt.Before(latest) {
			tier, latest = c.Tier, c.EffectiveAt
		}
	}
	return tier, nil
}

// updateUser applies change to the user under the write lock and stamps
// UpdatedAt.
func (s *Store) updateUser(ctx context.Context, id uuid.UUID, now time.Time, change func(*auth.User)) (auth.User, error) {
	if err := ctx.Err(); err != nil {
		return auth.User{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return auth.User{}, auth.ErrUserNotFound
	}
	change(&u)
	u.UpdatedAt = now.UTC().Truncate(time.Microsecond)
	s.users[id] = u
	return u, nil
}
