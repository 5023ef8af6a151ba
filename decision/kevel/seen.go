package kevel

import (
	"crypto/sha256"
	"sync"
	"time"
)

// guardKey identifies a URL in the once-only guard: 128 bits of its
// SHA-256, so that memory does not depend on URL length.
type guardKey [16]byte

func keyOf(url string) guardKey {
	sum := sha256.Sum256([]byte(url))
	return guardKey(sum[:16])
}

// onceGuard remembers the URLs fired for ttl, at most max of them. When
// full, it forgets the oldest entry early (and counts it): the memory
// bound wins over the guard, and its metric tells the host to raise max.
// It is safe for concurrent use.
type onceGuard struct {
	ttl     time.Duration
	max     int
	onEvict func()

	mu   sync.Mutex
	live map[guardKey]int64 // key → expiry, unix nanoseconds
	fifo []guardEntry       // insertion order, hence expiry order
	head int
}

type guardEntry struct {
	key    guardKey
	expiry int64
}

func newOnceGuard(ttl time.Duration, max int, onEvict func()) *onceGuard {
	return &onceGuard{ttl: ttl, max: max, onEvict: onEvict, live: map[guardKey]int64{}}
}

// add marks key as fired at now; false when it already was (within ttl).
func (g *onceGuard) add(key guardKey, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := now.UnixNano()
	for g.head < len(g.fifo) && g.fifo[g.head].expiry <= n {
		g.pop()
	}
	if exp, ok := g.live[key]; ok && exp > n {
		return false
	}
	for len(g.live) >= g.max && g.head < len(g.fifo) {
		if g.pop() && g.onEvict != nil {
			g.onEvict()
		}
	}
	exp := now.Add(g.ttl).UnixNano()
	g.live[key] = exp
	g.fifo = append(g.fifo, guardEntry{key: key, expiry: exp})
	if g.head > len(g.fifo)/2 || len(g.fifo)-g.head > 2*g.max {
		g.compact()
	}
	return true
}

// remove forgets key (a pixel that was dropped before being sent).
func (g *onceGuard) remove(key guardKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.live, key)
}

// len returns the number of URLs remembered.
func (g *onceGuard) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.live)
}

// pop drops the oldest entry; true when it was live (not removed or
// re-added since).
func (g *onceGuard) pop() bool {
	e := g.fifo[g.head]
	g.head++
	if exp, ok := g.live[e.key]; ok && exp == e.expiry {
		delete(g.live, e.key)
		return true
	}
	return false
}

// compact drops popped and stale entries from the fifo.
func (g *onceGuard) compact() {
	out := g.fifo[:0]
	for _, e := range g.fifo[g.head:] {
		if exp, ok := g.live[e.key]; ok && exp == e.expiry {
			out = append(out, e)
		}
	}
	clear(g.fifo[len(out):])
	g.fifo, g.head = out, 0
}
