package cache

import (
	"context"
	"sync"
	"time"

	"github.com/adshare/adshare/decision"
)

// memTier is the in-process tier: a map of pools bounded to maxKeys keys
// (least recently used evicted first) and maxAds ads per key (oldest
// dropped first). It also keeps, per key, the negative-cache deadline and
// the last ad handed out (for serve-stale). Times are Unix nanoseconds of
// the decorator's clock. It is safe for concurrent use.
//
// The decorator pops it through pop, on its own slots (no interface call,
// nothing allocated on a hit). It also implements Tier, so that a refill
// ends the same way whichever tier it goes to; its refill lock is only ever
// taken by this process's refills, which Decider.flights already keeps to
// one per key, so it is in practice always free.
//
// Its methods return the ads they drop for being expired or beyond maxAds,
// for the caller to count; it counts only the ads of evicted keys.
type memTier struct {
	mu      sync.Mutex
	entries map[Key]*entry
	lru     entry // sentinel of the recency list: lru.next is the most recent
	maxKeys int
	maxAds  int
	stats   *metrics
}

var _ Tier = (*memTier)(nil)

type entry struct {
	key        Key
	prev, next *entry
	pool       []pooled // pool[off:] are the ads to hand out, oldest first
	off        int
	negUntil   int64
	last       decision.Ad
	lastAt     int64
	hasLast    bool
	// The refill lock (Tier.Lock), expiring by the wall clock, and the
	// token of the last refill that ended (a retry of it changes nothing).
	lockToken  string
	lockUntil  int64
	endedToken string
}

// pooled is an ad waiting to be handed out, and when it stops being usable.
type pooled struct {
	ad  decision.Ad
	exp int64
}

func newMemTier(maxKeys, maxAds int, stats *metrics) *memTier {
	m := &memTier{entries: make(map[Key]*entry), maxKeys: maxKeys, maxAds: maxAds, stats: stats}
	m.lru.next, m.lru.prev = &m.lru, &m.lru
	return m
}

// pop moves up to s.need unexpired ads from each slot's pool into the
// slot, and marks the slots whose key is negatively cached. It records the
// last ad handed out per key, for serve-stale, and returns the number of
// expired ads it dropped.
func (m *memTier) pop(slots []slot, now int64) (expired int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range slots {
		s := &slots[i]
		if s.need == 0 || s.neg {
			continue
		}
		n := len(s.ads)
		e, x := m.popLocked(s, now)
		expired += x
		if len(s.ads) > n {
			e.last, e.lastAt, e.hasLast = s.ads[len(s.ads)-1], now, true
		}
	}
	return expired
}

// popLocked pops into s from s.key's pool, or marks s negative, and returns
// the key's entry (nil when there is none) and the number of expired ads
// dropped. The caller holds mu.
func (m *memTier) popLocked(s *slot, now int64) (e *entry, expired int) {
	e = m.entries[s.key]
	if e == nil {
		return nil, 0
	}
	m.touch(e)
	if now < e.negUntil {
		s.neg = true
		return e, 0
	}
	for e.off < len(e.pool) && s.need > 0 {
		p := &e.pool[e.off]
		e.off++
		if p.exp > now {
			s.take(p.ad, p.exp)
		} else {
			expired++
		}
		*p = pooled{} // release the ad's memory
	}
	if e.off == len(e.pool) {
		e.pool, e.off = e.pool[:0], 0
	}
	return e, expired
}

// push appends ads to k's pool, all expiring at exp, and returns the
// number of ads dropped to keep the pool within maxAds.
func (m *memTier) push(k Key, ads []decision.Ad, exp int64) (trimmed int) {
	if len(ads) == 0 {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	trimmed = m.pushLocked(m.get(k), ads, exp, m.maxAds)
	m.evict()
	return trimmed
}

// pushLocked appends ads to e's pool, then drops the oldest beyond max,
// and returns how many it dropped. The caller holds mu.
func (m *memTier) pushLocked(e *entry, ads []decision.Ad, exp int64, max int) (trimmed int) {
	if len(ads) == 0 {
		return 0
	}
	if e.off > 0 {
		n := copy(e.pool, e.pool[e.off:])
		clear(e.pool[n:])
		e.pool, e.off = e.pool[:n], 0
	}
	for _, ad := range ads {
		e.pool = append(e.pool, pooled{ad: ad, exp: exp})
	}
	if over := len(e.pool) - max; over > 0 {
		clear(e.pool[:over])
		e.off = over
		return over
	}
	return 0
}

// putBack returns ads that were popped but never handed out to the front
// of k's pool, so that they are the next handed out. It returns the number
// of ads dropped to keep the pool within maxAds.
func (m *memTier) putBack(k Key, ads []decision.Ad, exp int64) (trimmed int) {
	if len(ads) == 0 {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.get(k)
	rest := e.pool[e.off:]
	pool := make([]pooled, 0, len(ads)+len(rest))
	for _, ad := range ads {
		pool = append(pool, pooled{ad: ad, exp: exp})
	}
	pool = append(pool, rest...)
	e.pool, e.off = pool, 0
	if over := len(e.pool) - m.maxAds; over > 0 {
		// Drop the newest: the ones put back are the oldest and go first.
		clear(e.pool[m.maxAds:])
		e.pool = e.pool[:m.maxAds]
		trimmed = over
	}
	m.evict()
	return trimmed
}

// setNegative remembers that k has no ads until until.
func (m *memTier) setNegative(k Key, until int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.get(k).negUntil = until
	m.evict()
}

// recordLast remembers the last ad handed out for each slot's key.
func (m *memTier) recordLast(slots []slot, now int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range slots {
		if s := &slots[i]; len(s.ads) > 0 && !s.stale {
			e := m.get(s.key)
			e.last, e.lastAt, e.hasLast = s.ads[len(s.ads)-1], now, true
		}
	}
	m.evict()
}

// lastSince returns the last ad handed out for k if that was at or after
// since.
func (m *memTier) lastSince(k Key, since int64) (decision.Ad, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[k]
	if e == nil || !e.hasLast || e.lastAt < since {
		return decision.Ad{}, false
	}
	return e.last, true
}

// Pop implements Tier over the memory pools, for the contract suite and
// whoever holds the memory tier as a Tier; the decorator calls pop. It
// does not record the last ad handed out: its caller hands the ads out.
func (m *memTier) Pop(_ context.Context, now time.Time, pops []Pop) error {
	ns := now.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range pops {
		p := &pops[i]
		s := slot{key: p.Key, need: p.N}
		e, expired := m.popLocked(&s, ns)
		*p = Pop{Key: p.Key, N: p.N, Ads: s.ads, Expired: expired}
		if s.exp != 0 {
			p.Expires = time.Unix(0, s.exp)
		}
		if s.neg {
			p.NegativeUntil = time.Unix(0, e.negUntil)
		}
	}
	return nil
}

// Lock implements Tier: the lock expires by the wall clock.
func (m *memTier) Lock(_ context.Context, token string, ttl time.Duration, keys []Key) ([]bool, error) {
	now := time.Now().UnixNano()
	held := make([]bool, len(keys))
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, k := range keys {
		e := m.get(k)
		switch {
		case e.lockToken == token && now < e.lockUntil:
			held[i] = true // a retry: the lock keeps its expiry
		case e.lockToken == "" || now >= e.lockUntil:
			e.lockToken, e.lockUntil, held[i] = token, now+int64(ttl), true
		}
	}
	m.evict()
	return held, nil
}

// Locked implements Tier.
func (m *memTier) Locked(_ context.Context, keys []Key) ([]bool, error) {
	now := time.Now().UnixNano()
	held := make([]bool, len(keys))
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, k := range keys {
		e := m.entries[k]
		held[i] = e != nil && e.lockToken != "" && now < e.lockUntil
	}
	return held, nil
}

// EndRefill implements Tier. A key evicted (MaxKeys) while its refill ran
// has lost its lock with it.
func (m *memTier) EndRefill(_ context.Context, r Refill) (RefillResult, error) {
	now := time.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[r.Key]
	switch {
	case e != nil && r.Token != "" && e.endedToken == r.Token:
		return RefillResult{}, nil // a retry of a refill that ended
	case e == nil || r.Token == "" || e.lockToken != r.Token || now >= e.lockUntil:
		return RefillResult{}, ErrLockLost
	}
	e.lockToken, e.lockUntil, e.endedToken = "", 0, r.Token
	if !r.NegativeUntil.IsZero() {
		e.negUntil = r.NegativeUntil.UnixNano()
	}
	trimmed := m.pushLocked(e, r.Ads, r.Expires.UnixNano(), r.Max)
	m.touch(e)
	m.evict()
	return RefillResult{Trimmed: trimmed}, nil
}

// size returns the number of keys and the largest pool, for tests.
func (m *memTier) size() (keys, maxPool int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.entries {
		maxPool = max(maxPool, len(e.pool)-e.off)
	}
	return len(m.entries), maxPool
}

// get returns k's entry, created if needed, as the most recently used.
// The caller holds mu and calls evict afterwards.
func (m *memTier) get(k Key) *entry {
	e := m.entries[k]
	if e == nil {
		e = &entry{key: k}
		m.entries[k] = e
		e.prev, e.next = &m.lru, m.lru.next
		e.next.prev, m.lru.next = e, e
		return e
	}
	m.touch(e)
	return e
}

func (m *memTier) touch(e *entry) {
	if m.lru.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = &m.lru, m.lru.next
	e.next.prev, m.lru.next = e, e
}

// evict removes least recently used keys beyond maxKeys.
func (m *memTier) evict() {
	for len(m.entries) > m.maxKeys {
		e := m.lru.prev
		e.prev.next, e.next.prev = e.next, e.prev
		delete(m.entries, e.key)
		if n := len(e.pool) - e.off; n > 0 {
			m.stats.evictedKey.Add(float64(n))
		}
	}
}
