package cache

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/adshare/adshare/decision"
)

// flight is one refill of one key in this process. The Decide that starts
// it is its first waiter; Decides that find it open join as further
// waiters. When the refill lands, its ads are shared out in waiter order,
// each waiter getting what it asked for while ads last, and the rest go to
// the pool; waiters beyond the supply get nothing (no second upstream call
// in the same flight).
type flight struct {
	key Key
	// distributed is closed once every waiter's share (or err, or again)
	// is set; done once the leftovers are stored and the flight has left
	// Decider.flights.
	distributed, done chan struct{}

	mu      sync.Mutex
	closed  bool // shared out: no one joins any more
	waiters []*waiter
	err     error // the upstream call failed
	again   bool  // another instance refilled: waiters pop the pools again
}

// waiter is one Decide's place in a flight.
type waiter struct {
	need    int
	ads     []decision.Ad
	exp     int64
	gone    bool   // its Decide ended first: skip it
	userKey string // the upstream's user key, for the flight's first waiter
}

func newFlight(k Key) *flight {
	return &flight{key: k, distributed: make(chan struct{}), done: make(chan struct{})}
}

// part is one key of a Decide's short placements.
type part struct {
	key  Key
	need int
	f    *flight
	w    *waiter // nil when the flight was already shared out: pop again
}

// refill fills the short slots by joining the flights in progress for
// their keys and starting one flight (one upstream call) for the others.
// Per-slot upstream failures are left in slot.err; it returns an error
// only when ctx ends, after giving back what it holds. The user key is the
// upstream's, when this Decide's request went upstream.
func (d *Decider) refill(ctx context.Context, req *decision.Request, slots []slot) (string, error) {
	var arr [decision.MaxPlacements]part
	parts := arr[:0]
	for i := range slots {
		s := &slots[i]
		if !s.short() {
			continue
		}
		j := slices.IndexFunc(parts, func(p part) bool { return p.key == s.key })
		if j < 0 {
			parts = append(parts, part{key: s.key})
			j = len(parts) - 1
		}
		parts[j].need += s.need
	}

	var leads []*flight
	joined := 0
	d.mu.Lock()
	if d.stopping {
		// Stop waits for the refills in flight: no new one starts.
		d.mu.Unlock()
		for i := range slots {
			if s := &slots[i]; s.short() {
				s.err = errStopped
			}
		}
		return "", nil
	}
	for j := range parts {
		p := &parts[j]
		p.f = d.flights[p.key]
		lead := p.f == nil
		if lead {
			p.f = newFlight(p.key)
			d.flights[p.key] = p.f
			leads = append(leads, p.f)
		}
		p.f.mu.Lock()
		if !p.f.closed {
			p.w = &waiter{need: p.need}
			p.f.waiters = append(p.f.waiters, p.w)
			if !lead {
				joined++
			}
		}
		p.f.mu.Unlock()
	}
	if len(leads) > 0 {
		d.flying++
	}
	d.mu.Unlock()
	if len(leads) > 0 {
		// The request is built here, not in the goroutine: capturing
		// slots would move every Decide's slots to the heap, hits too.
		go d.flyAndLand(context.WithoutCancel(ctx), flightRequest(req, slots, leads, d.cfg.Prefetch), leads)
	}
	if d.hooks.joined != nil {
		for range joined {
			d.hooks.joined()
		}
	}

	for j := range parts {
		p := &parts[j]
		ch := p.f.distributed
		if p.w == nil {
			ch = p.f.done
		}
		select {
		case <-ch:
		case <-ctx.Done():
			d.abandon(parts)
			return "", decision.ErrTimeout.WithCause(ctx.Err())
		}
	}

	var userKey string
	again := false
	for j := range parts {
		p := &parts[j]
		switch {
		case p.w == nil || p.f.again:
			again = true
			for i := range slots {
				if s := &slots[i]; s.key == p.key && s.short() {
					s.again = true
				}
			}
		case p.f.err != nil:
			for i := range slots {
				if s := &slots[i]; s.key == p.key && s.short() {
					s.err = p.f.err
				}
			}
		default:
			userKey = cmp.Or(userKey, p.w.userKey)
			ads := p.w.ads
			for i := range slots {
				s := &slots[i]
				if s.key != p.key || !s.short() {
					continue
				}
				n := min(s.need, len(ads))
				for _, ad := range ads[:n] {
					s.take(ad, p.w.exp)
				}
				ads = ads[n:]
				if s.need > 0 {
					d.stats.noFill.Inc()
				}
			}
		}
	}
	if again {
		d.popAgain(ctx, slots)
	}
	return userKey, nil
}

// popAgain pops the pools once more for the slots whose refill happened
// elsewhere (in another instance, or shared out before they joined).
func (d *Decider) popAgain(ctx context.Context, slots []slot) {
	var arr [decision.MaxPlacements]slot
	sub := arr[:0]
	var idx [decision.MaxPlacements]int
	for i := range slots {
		if slots[i].again && slots[i].short() {
			idx[len(sub)] = i
			sub = append(sub, slots[i])
		}
	}
	now := d.now().UnixNano()
	d.popMem(sub, now)
	d.popShared(ctx, sub, now)
	for j := range sub {
		slots[idx[j]] = sub[j]
		if sub[j].short() {
			d.stats.noFill.Inc()
		}
	}
}

// abandon leaves every flight of a Decide whose ctx ended: a waiter not
// served yet is skipped by the share-out; ads already shared to it go back
// to the pool, since no one saw them.
func (d *Decider) abandon(parts []part) {
	for j := range parts {
		p := &parts[j]
		if p.w == nil {
			continue
		}
		p.f.mu.Lock()
		if !p.f.closed {
			p.w.gone = true
			p.f.mu.Unlock()
			continue
		}
		ads, exp := p.w.ads, p.w.exp
		p.w.ads = nil
		p.f.mu.Unlock()
		d.countTrimmed(d.mem.putBack(p.key, ads, exp))
	}
}

// flightReq is the upstream request of one refill.
type flightReq struct {
	req  decision.Request
	keys []Key // keys[i] is the key of req.Placements[i]
}

// flightRequest returns the upstream request for the short placements of
// the lead keys, each asking for Prefetch ads (or its own count, if more),
// at most decision.MaxCount. The request is a deep copy: the refill may
// outlive the Decide, whose caller may then reuse its request.
func flightRequest(req *decision.Request, slots []slot, leads []*flight, prefetch int) flightReq {
	r := *req
	r.Keywords = slices.Clone(req.Keywords)
	r.Categories = slices.Clone(req.Categories)
	r.Properties = maps.Clone(req.Properties)
	r.Exclude = decision.Exclusions{
		Advertisers: slices.Clone(req.Exclude.Advertisers),
		Categories:  slices.Clone(req.Exclude.Categories),
		Creatives:   slices.Clone(req.Exclude.Creatives),
	}
	r.Placements = nil
	var keys []Key
	for i, p := range req.Placements {
		s := &slots[i]
		if !s.short() || !slices.ContainsFunc(leads, func(f *flight) bool { return f.key == s.key }) {
			continue
		}
		p.AdTypes = slices.Clone(p.AdTypes)
		p.Formats = slices.Clone(p.Formats)
		p.ZoneIDs = slices.Clone(p.ZoneIDs)
		p.Properties = maps.Clone(p.Properties)
		p.EventIDs = slices.Clone(p.EventIDs)
		p.Count = min(decision.MaxCount, max(prefetch, p.CountOrOne()))
		r.Placements = append(r.Placements, p)
		keys = append(keys, s.key)
	}
	return flightReq{req: r, keys: keys}
}

// flyAndLand is fly counted in flying, for Stop.
func (d *Decider) flyAndLand(base context.Context, fr flightReq, leads []*flight) {
	defer d.landed()
	d.fly(base, fr, leads)
}

// fly runs one Decide's refill in the background: it takes each key's lock
// in the tier refills go to (keys locked by another instance wait for that
// refill instead; a tier that fails leaves the refill unlocked, bound for
// memory); then one upstream call for the keys it holds, and lands them.
// base carries the Decide's values but not its cancellation.
func (d *Decider) fly(base context.Context, fr flightReq, leads []*flight) {
	ctx, cancel := context.WithTimeout(base, d.cfg.UpstreamTimeout)
	defer cancel()
	up, locked, token := leads, false, rand.Text()
	landed := 0
	defer func() {
		// The upstream call runs here, outside the caller's goroutine and
		// its HTTP server's recovery: a panic must not take the process
		// down, nor leave waiters and the flights map stuck.
		if r := recover(); r != nil {
			d.log.ErrorContext(base, "decision/cache: upstream Decider panicked", slog.Any("panic", r))
			err := decision.ErrUnavailable.WithCause(fmt.Errorf("upstream Decider panicked: %v", r))
			for _, f := range up[landed:] {
				d.land(base, f, nil, err, locked, token, "")
			}
		}
	}()
	if got, err := d.refills.Lock(ctx, token, d.cfg.UpstreamTimeout+time.Second, flightKeys(leads)); err == nil {
		locked = true
		up = nil
		var remote []*flight
		for i, f := range leads {
			if got[i] {
				up = append(up, f)
			} else {
				remote = append(remote, f)
			}
		}
		if len(remote) > 0 {
			d.mu.Lock()
			d.flying++ // within fly's own count, so Stop is still waiting
			d.mu.Unlock()
			go func() {
				defer d.landed()
				d.waitRemote(base, remote)
			}()
		}
	}
	if len(up) == 0 {
		return
	}
	req, keys := fr.req, fr.keys
	if len(up) < len(leads) {
		req.Placements, keys = nil, nil
		for i, p := range fr.req.Placements {
			if slices.ContainsFunc(up, func(f *flight) bool { return f.key == fr.keys[i] }) {
				req.Placements = append(req.Placements, p)
				keys = append(keys, fr.keys[i])
			}
		}
	}
	start := time.Now()
	resp, err := d.upstream.Decide(ctx, req)
	outcome := "ok"
	if err != nil {
		outcome = "error"
		d.log.DebugContext(ctx, "decision/cache: upstream failed", slog.String("error", err.Error()))
	}
	d.stats.upCalls.WithLabelValues(outcome).Inc()
	d.stats.upSeconds.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	for _, f := range up {
		var ads []decision.Ad
		if err == nil {
			for i, p := range req.Placements {
				if keys[i] == f.key {
					ads = append(ads, resp.Ads[p.ID]...)
				}
			}
		}
		// Not ctx: a slow upstream answer must still leave the store its
		// own SharedTimeout.
		d.land(base, f, ads, err, locked, token, resp.UserKey)
		landed++
	}
}

// land shares a refill's ads out to the flight's waiters, in order, then
// stores the rest in exactly one tier: the one refills go to when this
// refill holds the key's lock there, else memory. Storing in both would
// let two callers pop the same ad. An answer with no ad is remembered as
// negative.
func (d *Decider) land(ctx context.Context, f *flight, ads []decision.Ad, err error, locked bool, token, userKey string) {
	now := d.now()
	exp := now.Add(d.cfg.TTL)
	for i := range ads {
		if t := ads[i].Tracking.ExpiresAt; !t.IsZero() && t.Add(-trackingMargin).Before(exp) {
			exp = t.Add(-trackingMargin)
		}
	}
	expNs := exp.UnixNano()

	f.mu.Lock()
	f.closed, f.err = true, err
	rest := ads
	for _, w := range f.waiters {
		if w.gone || len(rest) == 0 {
			continue
		}
		n := min(w.need, len(rest))
		w.ads, w.exp = rest[:n:n], expNs
		rest = rest[n:]
	}
	if w := f.waiters[0]; !w.gone {
		w.userKey = userKey
	}
	f.mu.Unlock()
	close(f.distributed)

	if !exp.After(now) {
		d.stats.evictedExpired.Add(float64(len(rest)))
		rest = nil
	}
	var negUntil time.Time
	if err == nil && len(ads) == 0 && d.cfg.NegativeTTL > 0 {
		negUntil = now.Add(d.cfg.NegativeTTL)
		d.mem.setNegative(f.key, negUntil.UnixNano()) // memory mirrors the shared tier's mark
	}
	switch {
	case locked:
		if err != nil {
			rest = nil // release the lock only
		}
		res, serr := d.refills.EndRefill(ctx, Refill{
			Key: f.key, Token: token, Ads: rest, Expires: exp, Max: d.cfg.MaxAdsPerKey, NegativeUntil: negUntil, Now: now,
		})
		switch {
		case serr == nil:
			d.countTrimmed(res.Trimmed)
			d.countDropped(ctx, 0, res.Dropped, "decision/cache: dropping ads the shared tier could not store")
		case errors.Is(serr, ErrLockLost):
			d.countTrimmed(d.mem.push(f.key, rest, expNs)) // not stored: memory is the one tier
		default:
			d.stats.evictedDropped.Add(float64(len(rest))) // maybe stored: never in memory too
		}
	case err == nil:
		d.countTrimmed(d.mem.push(f.key, rest, expNs))
	}

	d.mu.Lock()
	delete(d.flights, f.key)
	d.mu.Unlock()
	close(f.done)
}

// waitRemote waits, for at most LockWait, until another instance has
// refilled each of the flights' keys (its lock is gone), then lets the
// flights' waiters pop the pools again.
func (d *Decider) waitRemote(base context.Context, flights []*flight) {
	if d.hooks.remoteWait != nil {
		d.hooks.remoteWait()
	}
	ctx, cancel := context.WithTimeout(base, d.cfg.LockWait)
	defer cancel()
	every := min(max(d.cfg.LockWait/20, time.Millisecond), 10*time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	pending := flights
	for len(pending) > 0 {
		held, err := d.refills.Locked(ctx, flightKeys(pending))
		if err != nil {
			break
		}
		var still []*flight
		for i, f := range pending {
			if held[i] {
				still = append(still, f)
			} else {
				d.landAgain(f)
			}
		}
		pending = still
		if len(pending) == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			for _, f := range pending {
				d.landAgain(f)
			}
			return
		}
	}
	for _, f := range pending {
		d.landAgain(f)
	}
}

// flightKeys returns the flights' keys, in order.
func flightKeys(flights []*flight) []Key {
	keys := make([]Key, len(flights))
	for i, f := range flights {
		keys[i] = f.key
	}
	return keys
}

// landAgain ends a flight whose refill happened in another instance.
func (d *Decider) landAgain(f *flight) {
	f.mu.Lock()
	f.closed, f.again = true, true
	f.mu.Unlock()
	close(f.distributed)
	d.mu.Lock()
	delete(d.flights, f.key)
	d.mu.Unlock()
	close(f.done)
}
