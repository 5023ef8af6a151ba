package redis

import (
	"github.com/google/uuid"

	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/transport/realtime"
)

// SharedOptions configures Client.Shared. A nil pointer or a zero field
// means the documented default.
type SharedOptions struct {
	// Logger receives the revocation list's subscription health, the
	// bus's, and live-figure failures. Defaults to discarding.
	Logger *slog.Logger
	// Revocations configures the revocation list; its Logger defaults to
	// Logger.
	Revocations RevocationListOptions
	// Bus configures the subscriptions of the bus; its Logger defaults to
	// Logger.
	Bus SubscriptionOptions
}

// Shared is what the instances of a fleet share through this Redis, in the
// shape the adshare assembly takes (adshare.Shared): sign-in rate limits,
// the revocation list, one-time OIDC values, the cache-invalidation bus,
// burst counts and live figures. Start subscribes the revocation list;
// Stop ends it and then stops the Client. Create it with Client.Shared.
type Shared struct {
	client      *Client
	limiter     *Limiter
	revocations *RevocationList
	onetime     *OneTimeStore
	bus         *Bus
	bursts      *BurstCounter
	live        *LiveCounters
	broker      *Broker
}

// Shared returns the shared pieces on this client, each made once.
func (c *Client) Shared(opts *SharedOptions) *Shared {
	var o SharedOptions
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Revocations.Logger == nil {
		o.Revocations.Logger = o.Logger
	}
	if o.Bus.Logger == nil {
		o.Bus.Logger = o.Logger
	}
	return &Shared{
		client: c, limiter: c.Limiter(), revocations: c.RevocationList(&o.Revocations), onetime: c.OneTimeStore(),
		bus: c.Bus(&o.Bus), bursts: c.BurstCounter(), live: c.LiveCounters(o.Logger),
		broker: c.Broker(&BrokerOptions{Subscription: &o.Bus}),
	}
}

// Limiter returns the shared rate limiter.
func (s *Shared) Limiter() auth.Limiter { return s.limiter }

// RevocationList returns the shared revocation list.
func (s *Shared) RevocationList() auth.RevocationList { return s.revocations }

// OneTimeStore returns the shared store of one-time values.
func (s *Shared) OneTimeStore() auth.OneTimeStore { return s.onetime }

// Broadcaster returns the pub/sub bus.
func (s *Shared) Broadcaster() adspace.Broadcaster { return s.bus }

// BurstCounter returns the shared burst counter.
func (s *Shared) BurstCounter() analytics.BurstCounter { return s.bursts }

// Live returns the live counters.
func (s *Shared) Live() analytics.Live { return s.live }

// Ping checks that Redis answers, for readiness probes.
func (s *Shared) Ping(ctx context.Context) error { return s.client.Ping(ctx) }

// Name names the readiness check: "redis".
func (s *Shared) Name() string { return "redis" }

// Start subscribes the revocation list (see RevocationList.Start): it fails
// when Redis does not answer within ctx. It returns nil when already
// started.
func (s *Shared) Start(ctx context.Context) error {
	if s.revocations.Healthy() {
		return nil
	}
	if err := s.revocations.Start(ctx); err != nil && !errors.Is(err, errAlreadyStarted) {
		return err
	}
	return nil
}

// Stop ends the revocation list's subscription, then stops the Client.
// It is idempotent and safe before Start.
func (s *Shared) Stop(ctx context.Context) error {
	if err := errors.Join(s.revocations.Stop(ctx), s.client.Stop(ctx)); err != nil {
		return fmt.Errorf("redis: stop: %w", err)
	}
	return nil
}

// RealtimeBroker returns the broker of the realtime channel on this Redis.
func (s *Shared) RealtimeBroker() realtime.Broker { return s.broker }

// EraseUser removes the user from everything under the client's prefix
// (see Client.EraseUser): privacy's "shared" erasure step.
func (s *Shared) EraseUser(ctx context.Context, user uuid.UUID) error {
	return s.client.EraseUser(ctx, user)
}
