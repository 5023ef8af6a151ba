// Package keyring encrypts sensitive fields at rest under rotating keys,
// and computes blind indexes so that sealed values can still be looked up.
// Billing's stores seal connected-account ids and payout details with it;
// the privacy work seals emails (found by their index), display names,
// OIDC tokens and IP addresses with the same ring.
//
// # Where it lives, and why
//
// A host must be able to give the ring its keys and to back them with its
// own KMS, so the Ring, the Source and Wrapper interfaces and the errors
// are public; the design fixes the top-level directories, so the package
// sits under one. It is under auth because auth is where the project's key
// material already lives (the JWT KeySet, refresh-token and password
// hashing) and most of what it will protect is auth's (emails, names,
// tokens, addresses). It imports nothing of auth, nor of any domain
// package: only the standard library and internal/errs. So billing, auth
// and the store adapters alike may import it without an import cycle or a
// domain depending on an adapter, and a KMS adapter, should the project
// ship one, would be a subpackage named after its vendor.
//
// # Sealed values
//
// Seal encrypts with AES-256-GCM and returns a self-describing value of
// len(plain)+Overhead bytes:
//
//	byte  0       format version (1)
//	bytes 1..8    id of the data key that sealed it
//	bytes 9..12   purpose tag: the first 4 bytes of a labelled SHA-256 of the purpose
//	bytes 13..24  random 96-bit nonce
//	bytes 25..    ciphertext, then the 16-byte GCM tag
//
// The additional data is the header (bytes 0..12), the purpose
// (length-prefixed) and the row id, so a value opens only as what it was
// sealed as: copied to another column (another purpose) it fails with
// ErrWrongPurpose, to another row with ErrTampered, and any altered byte
// fails. A key's id is derived from the key itself (a labelled SHA-256,
// truncated), so it is the same on every instance and whatever the order
// or the wrapping of the configured keys. The format is versioned by its
// first byte: values in the database stay readable across releases.
//
// A purpose names the field, "<package>.<field>" (for example
// "billing.connected_account"); the row id is the id of the row or entity
// that holds the value, known before the write (a UUID made by the
// caller, not a database sequence). Both are required. Use a purpose per
// field, never per row.
//
// # Keys
//
// A ring holds data keys (the first seals, all open) and a separate index
// key, every one KeySize random bytes, from a Source, loaded once by New
// (or again by Reload), never per value:
//
//   - StaticKeys: base64 keys from the host's configuration. The library
//     never reads the environment; the host fills the struct.
//   - Envelope: envelope encryption, what a KMS-backed host wants. The
//     keys are generated here (NewWrappedKey), wrapped by the host's KMS
//     through the Wrapper interface, and kept wrapped in configuration; at
//     load they are unwrapped, one KMS call per key, and held in memory.
//     The KMS is not called per value (latency, cost, rate limits), and
//     its own key rotation re-wraps the keys without touching any row.
//   - Keys: keys already in memory (tests, or a host's own source).
//
// # Rotation
//
// A new key encrypts new data; old rows are re-encrypted by a resumable
// job; an old key retires only when nothing uses it:
//
//  1. add the new key after the current one, everywhere (every instance
//     can then open what any instance will seal with it);
//  2. move it first: it seals from then on (Reload, or a restart);
//  3. re-encrypt: a job walks each sealed column in pages by key id
//     (KeyID, or in SQL encode(substring(col from 2 for 8), 'hex')) and
//     writes Reseal's value where it changed; it is idempotent, so it may
//     stop and resume anywhere;
//  4. retire the old key once no stored value has its id (count them by
//     KeyID as above, in every sealed column).
//
// Opening a value whose key was retired too early fails with
// ErrUnknownKey, which names the key's id.
//
// The index key does not rotate: an index is a lookup key, so every stored
// index would have to be recomputed first. Reload refuses to change it.
//
// # Limits
//
// Nonces are random, 96 bits: a key may seal up to 2^32 values before the
// chance of a repeated nonce matters, far beyond this application's
// writes; rotating keys yearly keeps it so. A sealed value hides its
// plaintext but not its length. A blind index reveals which rows hold
// equal values, and whoever holds the index key can test guesses (see
// Index). What reaches logs, caches or other systems in the clear is
// beyond the ring: postgrestest.RequireNoPlaintext checks a database.
package keyring
