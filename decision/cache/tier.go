package cache

import (
	"context"
	"errors"
	"time"

	"github.com/adshare/adshare/decision"
)

// Tier is a store of pools that every instance of the decorator shares
// (Config.Shared): what a refill stores there, any instance may pop, each
// ad exactly once. store/redis's (*Client).DecisionPools is one; the
// decorator's own memory tier implements it too, with a lock that only this
// process takes. Run decision/cache/cachetest's RunTier against an
// implementation to check it keeps this contract.
//
// Times are on the decorator's clock (Config.Now): a tier compares them
// with the now it is given, never with its own clock, except to expire its
// storage and its locks, which it may do by its own clock.
//
// Methods are called concurrently, by any number of instances. The
// decorator bounds every call by Config.SharedTimeout and abandons it at
// that deadline, counts and logs a failure and then leaves the tier alone
// for a second (see "Tiers" in the package documentation), so an
// implementation needs no timeouts or retries of its own; it must honour
// ctx, and a call it retries must not take effect twice.
type Tier interface {
	// Pop pops, for each element p of pops, up to p.N unexpired ads of
	// p.Key's pool, oldest first, so that each ad goes to exactly one
	// caller across every user of the tier, and reads the key's negative
	// mark. It sets p's results (any values they held are discarded). Ads
	// that expired by now are dropped and counted in p.Expired, ads it
	// cannot read in p.Dropped; neither is returned. A key whose
	// negative mark is in force may keep its pool. A key may appear more
	// than once; each element gets its own ads.
	//
	// It returns an error when the tier failed; the results are then
	// undefined, and ads it popped before failing are lost (never handed
	// out twice).
	Pop(ctx context.Context, now time.Time, pops []Pop) error

	// Lock tries to take the refill lock of each key for token (not
	// empty), to expire after ttl unless released first. held[i] reports
	// whether keys[i]'s lock is now held with token: a lock free or
	// already held with token (a retry) is taken; one held with another
	// token is not, until it is released or expires.
	//
	// It returns an error when the tier failed; locks may then have been
	// taken, and expire after ttl.
	Lock(ctx context.Context, token string, ttl time.Duration, keys []Key) (held []bool, err error)

	// Locked reports, per key, whether its refill lock is held, by any
	// token. It returns an error when the tier failed.
	Locked(ctx context.Context, keys []Key) (held []bool, err error)

	// EndRefill ends the refill of r.Key that holds its lock with r.Token,
	// atomically: it releases the lock, sets the key's negative mark when
	// r.NegativeUntil is set, and pushes r.Ads to the back of the pool,
	// dropping the oldest ads beyond r.Max. It is idempotent per token: a
	// call repeated within a minute with the token of a refill that ended
	// changes nothing and returns nil.
	//
	// It returns ErrLockLost, having changed nothing, when the lock is not
	// held with r.Token (it expired, or another refill took it). Any other
	// error means the outcome is unknown: the refill may or may not have
	// ended, its ads may or may not be in the pool.
	EndRefill(ctx context.Context, r Refill) (RefillResult, error)
}

// ErrLockLost is returned by Tier.EndRefill when the refill's lock is no
// longer held with its token; nothing was stored.
var ErrLockLost = errors.New("decision/cache: the refill lock is no longer held")

// Pop is one key's part of a Tier.Pop call: Key and N say what the caller
// wants, the other fields are what Pop found.
type Pop struct {
	// Key is the pool to pop from.
	Key Key
	// N is how many ads are wanted, at least 1.
	N int

	// Ads are the popped ads, oldest first, at most N, all unexpired at
	// the now Pop was given. Pop allocates it; the caller owns it.
	Ads []decision.Ad
	// Expires is the earliest expiry among Ads (zero without ads).
	Expires time.Time
	// NegativeUntil is when the key's negative mark ends, if one is in
	// force at now (zero otherwise): until then, upstream has no ad for
	// the key.
	NegativeUntil time.Time
	// Expired counts the ads dropped because they had expired by now.
	Expired int
	// Dropped counts the ads dropped because the tier could not read them.
	Dropped int
}

// Refill is how a refill ends: see Tier.EndRefill.
type Refill struct {
	// Key is the refilled pool.
	Key Key
	// Token is the one the refill's lock was taken with.
	Token string
	// Ads go to the back of the pool, in order, each usable until Expires.
	Ads     []decision.Ad
	Expires time.Time
	// Max bounds the pool after the push (at least 1): the oldest ads
	// beyond it are dropped.
	Max int
	// NegativeUntil, when not zero, marks the key as having no ads until
	// then.
	NegativeUntil time.Time
	// Now is the decorator's clock when the refill ended. A tier that
	// expires its storage by its own clock keeps the pool at least
	// Expires.Sub(Now) and the negative mark NegativeUntil.Sub(Now).
	Now time.Time
}

// RefillResult is what Tier.EndRefill dropped instead of storing.
type RefillResult struct {
	// Trimmed counts the ads dropped from the front of the pool (the
	// oldest) to keep it within Refill.Max.
	Trimmed int
	// Dropped counts the ads of Refill.Ads the tier could not store.
	Dropped int
}
