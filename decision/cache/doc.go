// Package cache is a caching decorator for a [decision.Decider]: a
// [Decider] that wraps another (decision/kevel, typically) and answers from
// pools of ads fetched ahead, without ever handing the same decision out
// twice.
//
// # Billing safety: pools, not copies
//
// Kevel counts every fired impression URL and never deduplicates, and each
// decision's tracking URLs are unique to that decision (they expire after
// 24 h, still counting until then). A classic cache, which returns the same
// stored answer to many callers, would let each of them fire the same URLs:
// the advertiser pays once per caller for one decision. So a cached decision
// must never be handed out twice.
//
// The decorator therefore keeps pools. On a miss it asks upstream for
// Config.Prefetch ads per placement (raising the placement's Count, at most
// to decision.MaxCount), hands the caller what it asked for, and stores the
// ads it did not hand out in a pool under the request's key. Each pooled ad
// is then popped by exactly one later caller, until the pool is empty or
// its ads expire (Config.TTL, default 60 s, at most an hour: pacing and
// targeting drift long before the URLs' 24 h run out; an ad is never pooled
// past its Tracking.ExpiresAt minus ten minutes). Ads that expire unseen are
// simply dropped: an unfired decision costs nobody anything. A placement
// whose pool holds fewer ads than it asks for takes them and waits on a
// refill for the rest.
//
// # Keys
//
// A pool's key is the SHA-256 of a canonical encoding of exactly the parts
// of a request that change the answer: per placement its ad types, formats,
// site, zones, properties and event ids (sorted); for the request, its
// keywords, categories and properties (sorted), its exclusions, its consent
// state and its user key. Event ids are in the key because they change the
// answer too: an ad fetched without an event's URL cannot serve a request
// that asks for it.
//
// The user key is in the key because frequency capping and targeting are
// per user: one user's pool would break another's caps. Requests without a
// user key (no consent, an opt-out, or an anonymous viewer) share one pool
// per context: the upstream cannot cap or target them per user anyway, so
// sharing their refills loses nothing that a call per request would give.
//
// The IP address, user agent, URL, referrer and time are not in the key: they
// vary with nearly every request, so keying on them would make every request
// a miss. The trade-off: an ad fetched for the first viewer (its geography
// from the IP, its device from the user agent, its page) may be shown to a
// later viewer with the same key within the TTL, so geo, device and
// page-level targeting is approximate for pooled ads, and the upstream sees
// only the context of the request that triggered each refill. Placement IDs
// and counts are not in the key either: two identical slots share a pool.
//
// # Single flight
//
// Concurrent requests that miss on the same key make one upstream call: the
// first starts a refill (a flight) and the others join it. The ads it
// returns are shared out in arrival order, the starter first, each waiter
// getting what it asked for while ads last; waiters beyond the supply get an
// empty list (no fill) rather than a second upstream call in the same
// flight, and the ads beyond the waiters' needs go to the pool. The next
// request after the flight may start a refill of its own. A request that
// misses on several keys joins the flights in progress and starts one flight
// for the rest: at most one upstream call per Decide, asking only for the
// placements whose pools were short.
//
// A refill's upstream call is bounded by Config.UpstreamTimeout, not by the
// starter's ctx: if the starter gives up, the others still get their ads.
// Every caller waits with its own ctx and returns ErrTimeout when it ends;
// ads shared out to a caller that has gone go back to the pool, as do the
// ads of a Decide that fails: no one saw them.
//
// # Negative caching
//
// An upstream answer with no ad for a key is remembered for
// Config.NegativeTTL (default 5 s), answering no fill without an upstream
// call: an empty inventory is not asked again for every request.
//
// # Serve stale on error, without billing
//
// When a refill fails (any error but ErrInvalidRequest) and ads were handed
// out for the key within Config.StaleFor (default 5 minutes), the placement
// gets a copy of the most recently handed-out ad, made non-billable: a fresh
// ID (not the decision's), an empty Tracking (no impression, click or event
// URL, so nothing can be fired twice) and a price of zero. The advertiser
// gets a free impression, and the owner's slot stays filled. Copies are
// counted (adshare_decision_cache_stale_served_total). An ad whose creative
// embeds one of its tracking URLs (an HTML creative may carry its click
// URL) is never copied. Otherwise the upstream error is returned unchanged,
// so callers still see ErrTimeout, ErrUnavailable or ErrRateLimited. The
// last ad handed out is remembered per instance, in memory.
//
// Invalid requests (Request.Validate) are refused before anything else and
// never reach upstream; ErrInvalidRequest from upstream is returned as is.
//
// # Tiers
//
// Pools live in a bounded memory tier and, optionally, a shared tier
// (Config.Shared: any Tier, such as store/redis's DecisionPools). A pop
// tries memory first, then the shared tier. A refill stores its leftovers
// in exactly one tier, never both (that would hand an ad out twice): the
// shared tier when it is configured, so that every instance shares them,
// else memory. This is unlike a read-through cache whose saves fan out to
// every tier. Ads put back after a failed or abandoned Decide go to memory,
// as do refills made while the shared tier is failing.
//
// A refill ends the same way in either tier (Tier.EndRefill). It takes a
// short lock per key in the tier it goes to, so that one instance refills a
// key at a time; the others wait up to Config.LockWait for its ads and then
// answer from what the pool holds. (In memory the lock is always free:
// within one process, single flight already makes one refill per key.) It
// then releases the lock, sets the negative mark and stores its ads in one
// atomic step, idempotent per lock token so that a retried call cannot
// push the same ads twice. Each pooled ad carries its own expiry. A host
// with its own shared tier checks it with decision/cache/cachetest.
//
// In Redis (store/redis's DecisionPools), a pool is a list of JSON ads
// (RPUSH with PEXPIRE to fill, LPOP to hand out: atomic, so each ad goes to
// one caller across all instances), the lock a SET NX PX, and a refill ends
// in one Lua script. JSON turns numbers in Creative.Data into float64.
//
// The shared tier never makes a request hang or fail, whatever tier it is:
// every call is bounded by Config.SharedTimeout, and on an error the
// decorator carries on from memory and upstream, counts it
// (adshare_decision_cache_redis_errors_total, named for the tier it was
// written for), logs a warning, and leaves the tier alone for a second.
// When a refill's outcome is unknown (a timeout), its ads are dropped
// rather than kept in memory too.
//
// # Metrics
//
// With Config.Metrics set, the decorator exports
// adshare_decision_cache_lookups_total{outcome="hit|miss|negative_hit"},
// _stale_served_total, _flight_no_fill_total,
// _upstream_calls_total{outcome="ok|error"},
// _upstream_duration_seconds{outcome}, _evicted_ads_total{reason} and
// _redis_errors_total{op}. Labels never carry keys, user keys or
// placement IDs.
package cache
