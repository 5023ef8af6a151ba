package postgres

// ExpectRetries makes db take WriteEvents' transactional path from the
// start, as it does once most batches hold retried events.
func ExpectRetries(db *DB) { db.retries.share.Store(1 << 16) }

// RetriesLikely reports whether db would take WriteEvents' transactional
// path first.
func RetriesLikely(db *DB) bool { return db.retries.likely() }
