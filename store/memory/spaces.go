package memory

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/adspace"
)

// CreateSpace implements adspace.Store.
func (s *Store) CreateSpace(ctx context.Context, sp adspace.Space) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[sp.OwnerID]; !ok {
		return adspace.ErrOwnerNotFound
	}
	if _, ok := s.spaces[sp.OwnerID]; ok {
		return adspace.ErrSpaceExists
	}
	s.spaces[sp.OwnerID] = cloneSpace(sp)
	return nil
}

// SpaceByOwner implements adspace.Store.
func (s *Store) SpaceByOwner(ctx context.Context, owner uuid.UUID) (adspace.Space, error) {
	if err := ctx.Err(); err != nil {
		return adspace.Space{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sp, ok := s.spaces[owner]
	if !ok {
		return adspace.Space{}, adspace.ErrSpaceNotFound
	}
	return cloneSpace(sp), nil
}

// UpdateSettings implements adspace.Store.
func (s *Store) UpdateSettings(ctx context.Context, owner uuid.UUID, set adspace.Settings, expectVersion int64, now time.Time) (adspace.Space, error) {
	if err := ctx.Err(); err != nil {
		return adspace.Space{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, ok := s.spaces[owner]
	if !ok {
		return adspace.Space{}, adspace.ErrSpaceNotFound
	}
	if expectVersion != 0 && sp.Version != expectVersion {
		return adspace.Space{}, adspace.ErrVersionConflict
	}
	sp.Settings = set
	sp.Version++
	sp.UpdatedAt = now.UTC().Truncate(time.Microsecond)
	s.spaces[owner] = cloneSpace(sp)
	return cloneSpace(sp), nil
}

// cloneSpace copies the slices so that callers never share memory with the
// store; empty lists come back non-nil, as from PostgreSQL.
func cloneSpace(sp adspace.Space) adspace.Space {
	sp.Settings.Keywords = append([]string{}, sp.Settings.Keywords...)
	sp.Settings.BlockedCategories = append([]string{}, sp.Settings.BlockedCategories...)
	sp.Settings.Formats = append([]string{}, sp.Settings.Formats...)
	sp.Settings.AllowedCategories = append([]string{}, sp.Settings.AllowedCategories...)
	sp.Settings.BlockedKeywords = append([]string{}, sp.Settings.BlockedKeywords...)
	sp.Settings.BlockedAdvertisers = append([]string{}, sp.Settings.BlockedAdvertisers...)
	return sp
}
