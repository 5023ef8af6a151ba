// Package privacy carries out data subjects' rights over what adshare
// holds about them: export (GDPR articles 15 and 20) and erasure
// (article 17).
//
// Both are durable jobs (internal/jobs: River on PostgreSQL, the
// in-process runner on embedded defaults), recorded in a Store so that a
// request answers at once (202 with the record's id) and a job that dies
// half-way resumes where it stopped.
//
// # Export
//
// RequestExport records an export for a user and enqueues its job; a
// second request while one is pending returns the pending one (no work is
// done twice). The job gathers every Section (profile, preferences,
// sessions, identities, ad space and content, events about the user's
// space and about the user as a viewer, ledger entries, payouts, audit
// entries; the host adds more, such as consent history, by appending a
// Section) into one JSON bundle, kept by the Store until it is
// downloaded once or it expires (Config.ExportTTL, 24 hours by default).
// The download link carries an unguessable token (the export's id and an
// HMAC of it under Config.LinkKey); a used or expired link answers
// ErrExportGone (410).
//
// # Erasure
//
// RequestErasure re-authenticates the user (the password, or for an
// account without one a sign-in within Config.ReauthWindow), refuses with
// ErrPayoutPending while a payout is on its way, records the erasure and
// enqueues its job. The job's steps, each idempotent and recorded as it
// finishes, are: revoke every session (the revocation list closes the
// user's WebSocket connections on every instance); tell the ad server to
// forget the user's viewer key (Kevel UserDB forget); close or detach the
// connected account at the payments processor; drop the user from
// in-process caches; erase the user from every store (Store.EraseUser:
// personal data deleted, what the law makes adshare keep, such as ledger
// entries, kept under a pseudonymous id so that the ledger still
// balances); and write an audit record that names no personal data.
package privacy
