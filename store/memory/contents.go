package memory

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/adspace"
)

// Paging bounds of the content listings (see adspace.ContentFilter).
const (
	defaultContentLimit = 50
	maxContentLimit     = 200
)

func contentLimit(n int) int {
	if n <= 0 {
		return defaultContentLimit
	}
	return min(n, maxContentLimit)
}

// CreateContent implements adspace.ContentStore.
func (s *Store) CreateContent(ctx context.Context, c adspace.Content) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[c.AdvertiserID]; !ok {
		return adspace.ErrOwnerNotFound
	}
	if _, ok := s.contents[c.ID]; ok {
		// PostgreSQL reports its primary key; no caller reuses an id.
		return fmt.Errorf("memory: content %s already exists", c.ID)
	}
	if s.liveDuplicate(c) {
		return adspace.ErrDuplicateContent
	}
	s.contents[c.ID] = cloneContent(c)
	return nil
}

// Content implements adspace.ContentStore.
func (s *Store) Content(ctx context.Context, id uuid.UUID) (adspace.Content, error) {
	if err := ctx.Err(); err != nil {
		return adspace.Content{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.contents[id]
	if !ok {
		return adspace.Content{}, adspace.ErrContentNotFound
	}
	return cloneContent(c), nil
}

// AdvertiserContent implements adspace.ContentStore. Contents come oldest
// first, ordered by (created_at, id); After pages from the content with that
// id, which must be the advertiser's (else the page is empty).
func (s *Store) AdvertiserContent(ctx context.Context, advertiser uuid.UUID, f adspace.ContentFilter) ([]adspace.Content, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var from *adspace.Content
	if f.After != uuid.Nil {
		a, ok := s.contents[f.After]
		if !ok || a.AdvertiserID != advertiser {
			return []adspace.Content{}, nil
		}
		from = &a
	}
	return s.selectContents(contentLimit(f.Limit), byCreated, func(c adspace.Content) bool {
		return c.AdvertiserID == advertiser &&
			(f.Status == "" || c.Status == f.Status) &&
			(from == nil || byCreated(*from, c) < 0)
	}), nil
}

// CountLiveContent implements adspace.ContentStore.
func (s *Store) CountLiveContent(ctx context.Context, advertiser uuid.UUID) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int
	for _, c := range s.contents {
		if c.AdvertiserID == advertiser && c.Live() {
			n++
		}
	}
	return n, nil
}

// UpdateContent implements adspace.ContentStore. AdvertiserID and
// CreatedAt never change, as in PostgreSQL.
func (s *Store) UpdateContent(ctx context.Context, c adspace.Content) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.contents[c.ID]
	if !ok {
		return adspace.ErrContentNotFound
	}
	if old.Version != c.Version-1 {
		return adspace.ErrVersionConflict
	}
	c.AdvertiserID, c.CreatedAt = old.AdvertiserID, old.CreatedAt
	if s.liveDuplicate(c) {
		return adspace.ErrDuplicateContent
	}
	s.contents[c.ID] = cloneContent(c)
	return nil
}

// ReviewQueue implements adspace.ContentStore, ordered by (submitted_at, id).
func (s *Store) ReviewQueue(ctx context.Context, after adspace.QueuePlace, limit int) ([]adspace.Content, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	after.SubmittedAt = storedTime(after.SubmittedAt)
	if after.ID == uuid.Nil {
		after.ID = uuid.Max // just after everything submitted at that time
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	bySubmitted := func(a, b adspace.Content) int {
		return cmp.Or(a.SubmittedAt.Compare(b.SubmittedAt), bytes.Compare(a.ID[:], b.ID[:]))
	}
	return s.selectContents(contentLimit(limit), bySubmitted, func(c adspace.Content) bool {
		return c.Status == adspace.StatusPendingReview &&
			(after.SubmittedAt.IsZero() || bySubmitted(c, adspace.Content{SubmittedAt: after.SubmittedAt, ID: after.ID}) > 0)
	}), nil
}

// ServableContent implements adspace.ContentStore, ordered by (created_at,
// id).
func (s *Store) ServableContent(ctx context.Context, now time.Time) ([]adspace.Content, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now = storedTime(now)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.selectContents(-1, byCreated, func(c adspace.Content) bool {
		return c.Status == adspace.StatusApproved && c.Schedule.Active(now)
	}), nil
}

// selectContents returns copies of the contents that keep accepts, sorted
// by order, at most limit of them (all when limit is negative). The caller
// holds the lock.
func (s *Store) selectContents(limit int, order func(a, b adspace.Content) int, keep func(adspace.Content) bool) []adspace.Content {
	out := []adspace.Content{}
	for _, c := range s.contents {
		if keep(c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, order)
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	for i := range out {
		out[i] = cloneContent(out[i])
	}
	return out
}

// liveDuplicate reports whether live c collides with another live content
// of its advertiser with the same fingerprint (the partial unique index
// ad_contents_live_fingerprint_key in PostgreSQL). The caller holds the lock.
func (s *Store) liveDuplicate(c adspace.Content) bool {
	if !c.Live() {
		return false
	}
	for _, o := range s.contents {
		if o.ID != c.ID && o.AdvertiserID == c.AdvertiserID && o.Fingerprint == c.Fingerprint && o.Live() {
			return true
		}
	}
	return false
}

// byCreated orders contents oldest first, by (created_at, id), the id
// compared bytewise as PostgreSQL compares uuids.
func byCreated(a, b adspace.Content) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), bytes.Compare(a.ID[:], b.ID[:]))
}

// cloneContent copies the slices so that callers never share memory with
// the store, and keeps times as PostgreSQL does: UTC, microseconds; empty
// lists come back non-nil.
func cloneContent(c adspace.Content) adspace.Content {
	c.Categories = append([]string{}, c.Categories...)
	c.Keywords = append([]string{}, c.Keywords...)
	c.Schedule.Start, c.Schedule.End = storedTime(c.Schedule.Start), storedTime(c.Schedule.End)
	c.CreatedAt, c.UpdatedAt = storedTime(c.CreatedAt), storedTime(c.UpdatedAt)
	c.SubmittedAt, c.ReviewedAt = storedTime(c.SubmittedAt), storedTime(c.ReviewedAt)
	return c
}

// storedTime returns t as PostgreSQL stores it: UTC, truncated to
// microseconds; the zero time stays zero (NULL there).
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}
