package memory

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/store/internal/unixtime"
)

// RevocationSweepInterval is how often (by the list's clock) a
// RevocationList drops its expired entries. The sweep runs inside the
// Revoke methods.
const RevocationSweepInterval = time.Minute

// RevocationList is an in-process auth.RevocationList for a single
// instance. It is safe for concurrent use.
//
// It keeps the promises of store/redis.RevocationList, including its
// rounding: `until` is kept in whole milliseconds rounded up and `before` in
// whole microseconds rounded up (so rounding never lets a token through). A
// second revocation never weakens a first: the later `until` and the later
// `before` win. Entries are dropped once `until` has passed, so memory is
// bounded by the revocations still in force.
type RevocationList struct {
	// Now is the clock; tests may replace it before first use.
	Now func() time.Time

	mu        sync.RWMutex
	sessions  map[uuid.UUID]int64 // sid -> until, Unix milliseconds
	users     map[uuid.UUID]userMark
	nextSweep int64 // Unix milliseconds
}

// userMark refuses a user's tokens issued before `before` (Unix
// microseconds) until `until` (Unix milliseconds).
type userMark struct {
	before int64
	until  int64
}

var _ auth.RevocationList = (*RevocationList)(nil)

// NewRevocationList returns an empty list.
func NewRevocationList() *RevocationList {
	return &RevocationList{
		Now:      time.Now,
		sessions: make(map[uuid.UUID]int64),
		users:    make(map[uuid.UUID]userMark),
	}
}

// RevokeSession implements auth.RevocationList. An `until` already past
// changes nothing; one earlier than the session's current `until` does not
// shorten it.
func (l *RevocationList) RevokeSession(ctx context.Context, sid uuid.UUID, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	untilMs := unixtime.CeilMilli(until)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now().UnixMilli()
	l.maybeSweep(now)
	if untilMs <= now {
		return nil
	}
	if cur, ok := l.sessions[sid]; !ok || cur < untilMs {
		l.sessions[sid] = untilMs
	}
	return nil
}

// RevokeUserTokensBefore implements auth.RevocationList. An `until` already
// past changes nothing; otherwise the user's mark keeps the later of the old
// and new `before`, and the later of the old and new `until`.
func (l *RevocationList) RevokeUserTokensBefore(ctx context.Context, user uuid.UUID, before, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m := userMark{before: unixtime.CeilMicro(before), until: unixtime.CeilMilli(until)}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now().UnixMilli()
	l.maybeSweep(now)
	if m.until <= now {
		return nil
	}
	if cur, ok := l.users[user]; ok && cur.until > now {
		m.before = max(m.before, cur.before)
		m.until = max(m.until, cur.until)
	}
	l.users[user] = m
	return nil
}

// CheckToken implements auth.RevocationList: ErrTokenRevoked when session
// sid is revoked or issuedAt is before the user's mark; ctx's error when ctx
// is done; else nil.
func (l *RevocationList) CheckToken(ctx context.Context, sid, user uuid.UUID, issuedAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := l.Now().UnixMilli()
	l.mu.RLock()
	until, sok := l.sessions[sid]
	m, uok := l.users[user]
	l.mu.RUnlock()
	if sok && now < until {
		return auth.ErrTokenRevoked
	}
	if uok && now < m.until && issuedAt.UnixMicro() < m.before {
		return auth.ErrTokenRevoked
	}
	return nil
}

// Len returns the number of entries (sessions plus user marks) held,
// including expired ones the next sweep will drop.
func (l *RevocationList) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.sessions) + len(l.users)
}

// maybeSweep drops expired entries at most once per
// RevocationSweepInterval. The caller holds l.mu for writing.
func (l *RevocationList) maybeSweep(now int64) {
	if now < l.nextSweep {
		return
	}
	for k, until := range l.sessions {
		if until <= now {
			delete(l.sessions, k)
		}
	}
	for k, m := range l.users {
		if m.until <= now {
			delete(l.users, k)
		}
	}
	l.nextSweep = now + RevocationSweepInterval.Milliseconds()
}
