package keyring

import "github.com/adshare/adshare/internal/errs"

// Errors returned by Open and the functions that read a sealed value.
// Compare with errors.Is; copies carrying the cause still match. All are of
// kind Internal: a value that does not open is the server's problem (a key
// missing from the configuration, a corrupted or moved value, a bug), never
// the client's, and nothing about it is shown to one.
var (
	// ErrUnknownKey: the value was sealed under a key the ring does not
	// hold (retired too early, or not yet configured on this instance).
	// The cause names the key id.
	ErrUnknownKey = errs.New(errs.Internal, "keyring_unknown_key", "the value was sealed with a key this ring does not hold")
	// ErrTampered: the value is not one this package sealed (truncated,
	// an unknown format version), was altered, or was sealed for another
	// row than the one asked for (copied or moved between rows).
	ErrTampered = errs.New(errs.Internal, "keyring_tampered", "the sealed value is malformed, altered or bound to another row")
	// ErrWrongPurpose: the value was sealed for another purpose (another
	// column or field) than the one asked for.
	ErrWrongPurpose = errs.New(errs.Internal, "keyring_wrong_purpose", "the sealed value belongs to another purpose")
)
