package memory

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
)

// Store implements every adshare store interface in memory. The zero value
// is not usable; call New. It is safe for concurrent use.
type Store struct {
	mu      sync.RWMutex
	users   map[uuid.UUID]auth.User
	byEmail map[string]uuid.UUID
	spaces  map[uuid.UUID]adspace.Space
}

var (
	_ auth.UserStore = (*Store)(nil)
	_ adspace.Store  = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		users:   make(map[uuid.UUID]auth.User),
		byEmail: make(map[string]uuid.UUID),
		spaces:  make(map[uuid.UUID]adspace.Space),
	}
}

// Ping reports that the store is ready; memory always is, unless ctx is done.
func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }

// CreateUser implements auth.UserStore.
func (s *Store) CreateUser(ctx context.Context, u auth.User) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.ID]; ok {
		return auth.ErrUserExists
	}
	if _, ok := s.byEmail[u.Email]; ok {
		return auth.ErrEmailTaken
	}
	s.users[u.ID] = u
	s.byEmail[u.Email] = u.ID
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
	return sp
}
