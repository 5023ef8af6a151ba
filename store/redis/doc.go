// Package redis holds the state that adshare instances share through Redis 7
// (go-redis v9): readiness, the decision cache's shared pools
// (DecisionPools), GCRA rate limiting, the access-token revocation list (a
// local copy kept current through pub/sub, so checking a token costs a map
// lookup), single-use values for OIDC transactions, and a pub/sub bus
// between instances. Every subscriber keeps its subscription the same way
// (SubscriptionOptions): health-checked, reopened with a backoff when lost,
// and told when it is back so that it can catch up.
//
// It takes a go-redis UniversalClient, so one process, a Sentinel setup and a
// Redis Cluster all work. Every key is namespaced by a prefix, so several
// applications (or parallel tests) can share one Redis.
package redis
