package cache

import (
	"sync"

	"github.com/adshare/adshare/decision"
)

// memTier is the in-process tier: a map of pools bounded to maxKeys keys
// (least recently used evicted first) and maxAds ads per key (oldest
// dropped first). It also keeps, per key, the negative-cache deadline and
// the last ad handed out (for serve-stale). Times are Unix nanoseconds of
// the decorator's clock. It is safe for concurrent use.
type memTier struct {
	mu      sync.Mutex
	entries map[key]*entry
	lru     entry // sentinel of the recency list: lru.next is the most recent
	maxKeys int
	maxAds  int
	stats   *metrics
}

type entry struct {
	key        key
	prev, next *entry
	pool       []pooled // pool[off:] are the ads to hand out, oldest first
	off        int
	negUntil   int64
	last       decision.Ad
	lastAt     int64
	hasLast    bool
}

// pooled is an ad waiting to be handed out, and when it stops being usable.
type pooled struct {
	ad  decision.Ad
	exp int64
}

func newMemTier(maxKeys, maxAds int, stats *metrics) *memTier {
	m := &memTier{entries: make(map[key]*entry), maxKeys: maxKeys, maxAds: maxAds, stats: stats}
	m.lru.next, m.lru.prev = &m.lru, &m.lru
	return m
}

// pop moves up to s.need unexpired ads from each slot's pool into the
// slot, and marks the slots whose key is negatively cached. It records the
// last ad handed out per key, for serve-stale.
func (m *memTier) pop(slots []slot, now int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range slots {
		s := &slots[i]
		if s.need == 0 || s.neg {
			continue
		}
		e := m.entries[s.key]
		if e == nil {
			continue
		}
		m.touch(e)
		if now < e.negUntil {
			s.neg = true
			continue
		}
		n := len(s.ads)
		for e.off < len(e.pool) && s.need > 0 {
			p := &e.pool[e.off]
			e.off++
			if p.exp > now {
				s.take(p.ad, p.exp)
			} else {
				m.stats.evictedExpired.Inc()
			}
			*p = pooled{} // release the ad's memory
		}
		if e.off == len(e.pool) {
			e.pool, e.off = e.pool[:0], 0
		}
		if len(s.ads) > n {
			e.last, e.lastAt, e.hasLast = s.ads[len(s.ads)-1], now, true
		}
	}
}

// push appends ads to k's pool, all expiring at exp.
func (m *memTier) push(k key, ads []decision.Ad, exp int64) {
	if len(ads) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.get(k)
	if e.off > 0 {
		n := copy(e.pool, e.pool[e.off:])
		clear(e.pool[n:])
		e.pool, e.off = e.pool[:n], 0
	}
	for _, ad := range ads {
		e.pool = append(e.pool, pooled{ad: ad, exp: exp})
	}
	if over := len(e.pool) - m.maxAds; over > 0 {
		clear(e.pool[:over])
		e.off = over
		m.stats.evictedPoolFull.Add(float64(over))
	}
	m.evict()
}

// putBack returns ads that were popped but never handed out to the front
// of k's pool, so that they are the next handed out.
func (m *memTier) putBack(k key, ads []decision.Ad, exp int64) {
	if len(ads) == 0 {
		return
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
		m.stats.evictedPoolFull.Add(float64(over))
	}
	m.evict()
}

// setNegative remembers that k has no ads until until.
func (m *memTier) setNegative(k key, until int64) {
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
func (m *memTier) lastSince(k key, since int64) (decision.Ad, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[k]
	if e == nil || !e.hasLast || e.lastAt < since {
		return decision.Ad{}, false
	}
	return e.last, true
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
func (m *memTier) get(k key) *entry {
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
