package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/adshare/adshare/auth"
)

// DefaultOneTimeMaxEntries is the number of entries a OneTimeStore created by
// NewOneTimeStore holds at most.
const DefaultOneTimeMaxEntries = 100_000

// OneTimeSweepInterval is how often (by the store's clock) a OneTimeStore
// drops its expired entries. The sweep runs inside PutOnce.
const OneTimeSweepInterval = time.Minute

// ErrOneTimeStoreFull is returned by OneTimeStore.PutOnce when MaxEntries
// unexpired entries are held. Evicting one instead would break a sign-in in
// progress without telling anyone.
var ErrOneTimeStoreFull = errors.New("memory: one-time store is full; raise MaxEntries or shorten the ttls")

// OneTimeStore is an in-process auth.OneTimeStore. It is safe for concurrent
// use.
//
// As in store/redis (which counts in milliseconds), ttls are truncated to
// whole milliseconds and a ttl under one millisecond is an error. Expired
// entries are dropped once per OneTimeSweepInterval, and at most MaxEntries
// are held.
type OneTimeStore struct {
	// Now is the clock; tests may replace it before first use.
	Now func() time.Time
	// MaxEntries bounds the entries held; tests may lower it before first
	// use. NewOneTimeStore sets DefaultOneTimeMaxEntries.
	MaxEntries int

	mu        sync.Mutex
	entries   map[string]onceEntry
	nextSweep time.Time
}

type onceEntry struct {
	value   []byte
	expires time.Time
}

var _ auth.OneTimeStore = (*OneTimeStore)(nil)

// NewOneTimeStore returns an empty store holding at most
// DefaultOneTimeMaxEntries entries.
func NewOneTimeStore() *OneTimeStore {
	return &OneTimeStore{Now: time.Now, MaxEntries: DefaultOneTimeMaxEntries, entries: make(map[string]onceEntry)}
}

// PutOnce implements auth.OneTimeStore. It stores a copy of value. It
// returns auth.ErrOneTimeKeyExists when key holds an unexpired value, an
// error when ttl is under one millisecond, ErrOneTimeStoreFull when the
// store is full, and ctx's error when ctx is done.
func (s *OneTimeStore) PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkOneTimeTTL(ttl); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	if !now.Before(s.nextSweep) {
		s.sweep(now)
	}
	if e, ok := s.entries[key]; ok {
		if now.Before(e.expires) {
			return auth.ErrOneTimeKeyExists
		}
		delete(s.entries, key)
	}
	if len(s.entries) >= s.MaxEntries {
		s.sweep(now)
		if len(s.entries) >= s.MaxEntries {
			return ErrOneTimeStoreFull
		}
	}
	s.entries[key] = onceEntry{value: append([]byte{}, value...), expires: now.Add(ttl.Truncate(time.Millisecond))}
	return nil
}

// Take implements auth.OneTimeStore. It returns ctx's error when ctx is
// done.
func (s *OneTimeStore) Take(ctx context.Context, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		return nil, false, nil
	}
	delete(s.entries, key)
	if !s.Now().Before(e.expires) {
		return nil, false, nil
	}
	return e.value, true, nil // the only reference left: no copy needed
}

// Len returns the number of entries held, including expired ones the next
// sweep will drop.
func (s *OneTimeStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

func (s *OneTimeStore) sweep(now time.Time) {
	for k, e := range s.entries {
		if !now.Before(e.expires) {
			delete(s.entries, k)
		}
	}
	s.nextSweep = now.Add(OneTimeSweepInterval)
}

// checkOneTimeTTL rejects ttls Redis cannot express: a one-time value that
// expires at once is a caller's bug, better reported than silently dropped.
func checkOneTimeTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("memory: one-time store: ttl %v is under the 1ms minimum", ttl)
	}
	return nil
}
