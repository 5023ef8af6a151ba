package memory

import (
	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/transport/realtime"
)

// Shared is what instances of a fleet share (in store/redis) kept in this
// process instead, for a single instance: sign-in rate limits, the token
// revocation list, one-time OIDC values, cache invalidations, burst counts.
// It has no live figures (Live returns nil). Create it with NewShared; it
// owns no goroutine of its own (a Broadcaster subscription has one, ended
// by its stop function).
type Shared struct {
	limiter     *Limiter
	revocations *RevocationList
	onetime     *OneTimeStore
	bus         *Bus
	bursts      *BurstCounter
	broker      *Broker
}

// NewShared returns the in-process equivalents of the shared pieces.
func NewShared() *Shared {
	return &Shared{
		limiter: NewLimiter(), revocations: NewRevocationList(), onetime: NewOneTimeStore(),
		bus: NewBus(), bursts: NewBurstCounter(), broker: NewBroker(nil),
	}
}

// Limiter returns the rate limiter.
func (s *Shared) Limiter() auth.Limiter { return s.limiter }

// RevocationList returns the revocation list.
func (s *Shared) RevocationList() auth.RevocationList { return s.revocations }

// OneTimeStore returns the store of one-time values.
func (s *Shared) OneTimeStore() auth.OneTimeStore { return s.onetime }

// Broadcaster returns the in-process bus.
func (s *Shared) Broadcaster() adspace.Broadcaster { return s.bus }

// BurstCounter returns the burst counter.
func (s *Shared) BurstCounter() analytics.BurstCounter { return s.bursts }

// Live returns nil: one process keeps no live figures apart from its
// rollups.
func (s *Shared) Live() analytics.Live { return nil }

// RealtimeBroker returns the in-process broker of the realtime channel.
func (s *Shared) RealtimeBroker() realtime.Broker { return s.broker }
