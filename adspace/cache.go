package adspace

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

// cachedSpace is a space with its owner's tier name, as a fill needs them.
type cachedSpace struct {
	space   Space
	tier    string
	fetched time.Time

	// What every fill of the space sends the Decider, derived once from
	// the settings (fill builds requests from them; they are shared by
	// every request, so nothing may write into them).
	adTypes     []int    // the formats' ad types, sorted, unique
	keywords    []string // the owner's keywords, sorted, unique, none blocked
	advertisers []string // advertisers excluded: the owner's blocks and the owner
}

// spaceCache keeps hot spaces in memory so that a fill costs no database
// round trip. It is bounded (an arbitrary entry is evicted when full) and
// every entry expires after ttl even without an invalidation.
//
// A read that raced an invalidation must not put the old value back: drop
// leaves a tombstone with its time, and put ignores values read before it.
type spaceCache struct {
	mu         sync.RWMutex
	max        int
	ttl        time.Duration
	entries    map[uuid.UUID]cachedSpace
	tombstones map[uuid.UUID]time.Time
	clearedAt  time.Time
}

func newSpaceCache(max int, ttl time.Duration) *spaceCache {
	return &spaceCache{max: max, ttl: ttl, entries: map[uuid.UUID]cachedSpace{}, tombstones: map[uuid.UUID]time.Time{}}
}

// get returns a cached space younger than the TTL. The cache runs on the
// real clock: it bounds staleness in wall time.
func (c *spaceCache) get(owner uuid.UUID) (cachedSpace, bool) {
	c.mu.RLock()
	e, ok := c.entries[owner]
	c.mu.RUnlock()
	if !ok || time.Since(e.fetched) >= c.ttl {
		return cachedSpace{}, false
	}
	return e, true
}

// stale returns a cached space past its TTL but younger than
// staleIfErrorMax, for fills while the store does not answer (an
// invalidation of an older version removes the entry, so what stale
// returns was never superseded as far as this instance knows).
func (c *spaceCache) stale(owner uuid.UUID) (cachedSpace, bool) {
	c.mu.RLock()
	e, ok := c.entries[owner]
	c.mu.RUnlock()
	if !ok || time.Since(e.fetched) >= staleIfErrorMax {
		return cachedSpace{}, false
	}
	return e, true
}

// staleIfErrorMax is how old a cached space may be and still fill while
// the store fails; staleReadTimeout bounds the store read when such a
// copy is at hand, so that a store holding its connections does not hold
// the fill.
const (
	staleIfErrorMax  = 15 * time.Minute
	staleReadTimeout = 500 * time.Millisecond
)

// put caches e, whose read began at e.fetched (wall clock), unless an
// invalidation came after that.
func (c *spaceCache) put(owner uuid.UUID, e cachedSpace) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.tombstones[owner]; (ok && !e.fetched.After(t)) || !e.fetched.After(c.clearedAt) {
		return
	}
	if _, ok := c.entries[owner]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[owner] = e
}

func (c *spaceCache) drop(owner uuid.UUID) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, owner)
	if len(c.tombstones) >= c.max {
		// Tombstones only matter for reads in flight: old ones can go.
		for k, t := range c.tombstones {
			if now.Sub(t) > time.Minute {
				delete(c.tombstones, k)
			}
		}
	}
	c.tombstones[owner] = now
}

// replace caches e, a space just written by this instance, in place of
// whatever was cached: reads that began before now cannot put an older
// copy back (as after drop).
func (c *spaceCache) replace(owner uuid.UUID, e cachedSpace) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tombstones[owner] = now
	c.entries[owner] = e
}

// dropBefore drops the owner's cached space unless it is at version or
// later: an invalidation for a version this instance already holds (its
// own write, echoed back) keeps the copy, which a fill may then still use
// if the store goes away.
func (c *spaceCache) dropBefore(owner uuid.UUID, version int64) {
	c.mu.RLock()
	e, ok := c.entries[owner]
	c.mu.RUnlock()
	if ok && e.space.Version >= version {
		return
	}
	c.drop(owner)
}

func (c *spaceCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	clear(c.tombstones)
	c.clearedAt = time.Now()
}

// viewerConsentTTL is how long a signed-in viewer's consent is reused: a
// change in their privacy settings reaches fills within this time.
const viewerConsentTTL = 5 * time.Second

type consentEntry struct {
	personalized, doNotSell bool
	analytics               bool // per-viewer analytics
	fetched                 time.Time
}

// consentCache keeps signed-in viewers' consent briefly, so that a fill
// for a returning viewer costs no database round trip.
type consentCache struct {
	mu      sync.Mutex
	max     int
	entries map[uuid.UUID]consentEntry
}

func (c *consentCache) get(id uuid.UUID) (consentEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || time.Since(e.fetched) >= viewerConsentTTL {
		return consentEntry{}, false
	}
	return e, true
}

func (c *consentCache) drop(id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
}

func (c *consentCache) put(id uuid.UUID, e consentEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[id]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[id] = e
}
