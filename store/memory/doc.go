// Package memory implements every adshare store interface in process memory.
//
// It is the embedded default of the example server and the fast test double
// for host applications. It keeps the same promises as store/postgres (the
// contract suites in store/storetest run against both), including the errors
// returned and the behaviour under concurrent writers, but holds nothing
// across restarts and nothing across processes.
//
// Analytics (analytics.Store, analytics.UserStats) keep what reads need,
// not the events themselves: the key of every event ever written (so that
// a retry is recognised however late it comes), each impression's time,
// the hourly rollup rows and per-ad totals. None of it is bounded or
// evicted, so memory grows with the number of distinct events; a host
// with real traffic wants store/postgres, which partitions events by day
// and drops old days. Reports and user statistics scan what they read
// (rollup rows, users, the audit log) on every call.
package memory
