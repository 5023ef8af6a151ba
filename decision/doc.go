// Package decision chooses the ads that fill an ad space.
//
// A [Decider] answers a [Request] (placements to fill, the viewer's
// pseudonymous key and consent, keywords and context) with a [Response]:
// for each placement, zero or more [Ad]s. Three implementations live in
// subpackages:
//
//   - decision/kevel asks the Kevel Decision API (the real ad server);
//   - decision/cache wraps any Decider with a cache that hands each cached
//     decision out once;
//   - decision/local is the first-party engine over ads that users create
//     and fund, the embedded default.
//
// decision/decisiontest holds a programmable fake for host applications'
// tests.
//
// No ad is a normal answer (an empty list for the placement), not an error.
// Errors are typed: ErrTimeout, ErrUnavailable, ErrRateLimited and
// ErrInvalidRequest; callers fail soft on the first three (house content or
// no ad) and fix their request on the last.
//
// Upstream tracking URLs (Ad.Tracking) are the ad server's own pixels. They
// never reach the client: the server fires them once, after its own checks,
// through the analytics pipeline.
package decision
