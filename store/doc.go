// Package store is the home of adshare's storage adapters; it holds no code
// of its own.
//
//   - store/memory implements every store interface in process: the embedded
//     default and the fast test double.
//   - store/postgres implements every store interface on PostgreSQL (pgx v5)
//     with migrations embedded in the binary.
//   - store/redis holds the shared, short-lived state of a fleet: caches,
//     and (as later features arrive) rate limits, revocations and pub/sub.
//   - store/storetest holds one contract suite per interface, run against
//     every implementation so they behave the same.
package store
