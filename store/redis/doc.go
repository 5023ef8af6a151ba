// Package redis holds the state that adshare instances share through Redis 7
// (go-redis v9): for now readiness and a byte cache; rate limits, token
// revocation, pub/sub and live counters join as the features that need them
// arrive.
//
// It takes a go-redis UniversalClient, so one process, a Sentinel setup and a
// Redis Cluster all work. Every key is namespaced by a prefix, so several
// applications (or parallel tests) can share one Redis.
package redis
