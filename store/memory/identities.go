package memory

import (
	"cmp"
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

type identityKey struct{ issuer, subject string }

func keyOf(issuer, subject string) identityKey { return identityKey{issuer, subject} }

// IdentityBySubject implements auth.IdentityStore.
func (s *Store) IdentityBySubject(ctx context.Context, issuer, subject string) (auth.Identity, error) {
	if err := ctx.Err(); err != nil {
		return auth.Identity{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.identities[keyOf(issuer, subject)]
	if !ok {
		return auth.Identity{}, auth.ErrIdentityNotFound
	}
	return id, nil
}

// LinkIdentity implements auth.IdentityStore.
func (s *Store) LinkIdentity(ctx context.Context, id auth.Identity) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[id.UserID]; !ok {
		return auth.ErrUserNotFound
	}
	k := keyOf(id.Issuer, id.Subject)
	if _, ok := s.identities[k]; ok {
		return auth.ErrIdentityLinked
	}
	s.identities[k] = id
	return nil
}

// UserIdentities implements auth.IdentityStore.
func (s *Store) UserIdentities(ctx context.Context, user uuid.UUID) ([]auth.Identity, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []auth.Identity{}
	for _, id := range s.identities {
		if id.UserID == user {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b auth.Identity) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Issuer, b.Issuer); c != 0 {
			return c
		}
		return cmp.Compare(a.Subject, b.Subject)
	})
	return out, nil
}
