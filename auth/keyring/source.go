package keyring

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/adshare/adshare/internal/secret"
)

// Source supplies a ring's keys. Implementations: Keys (keys in memory),
// StaticKeys (base64 keys from the host's configuration) and Envelope
// (data keys wrapped by a KMS, or any Wrapper). A host with another secret
// store implements it.
type Source interface {
	// Load returns the keys: the data keys, the sealing key first, and
	// the index key. New and Reload call it, never Seal or Open, so it may
	// do I/O within ctx. It returns an error when the keys cannot be had
	// (a KMS that is down or refuses, a configured key that does not
	// decode); New then fails, and Reload keeps the keys the ring has.
	// What the keys must be (sizes, no repeats) is New's to check.
	Load(ctx context.Context) (Keys, error)
}

// Keys is a ring's key material in the clear, and a Source of itself. It
// prints, logs and marshals as "[redacted]", never as its keys.
type Keys struct {
	// Data are the data keys, KeySize random bytes each. The first seals;
	// all open. Rotate by putting a new key first and keeping the old
	// ones until no stored value uses them (see the package doc).
	Data [][]byte
	// Index is the blind-index key, KeySize random bytes, distinct from
	// every data key. It does not rotate with them.
	Index []byte
}

var _ Source = Keys{}

// Load returns k; it never fails.
func (k Keys) Load(context.Context) (Keys, error) { return k, nil }

// Format implements fmt.Formatter: whatever the verb, Keys print as
// keyring.Keys{[redacted]}.
func (Keys) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, "keyring.Keys{"+secret.Redacted+"}")
}

// LogValue implements slog.LogValuer: Keys log as [redacted].
func (Keys) LogValue() slog.Value { return slog.StringValue(secret.Redacted) }

// MarshalText implements encoding.TextMarshaler: Keys marshal (in JSON,
// YAML and other text encoders) as [redacted].
func (Keys) MarshalText() ([]byte, error) { return []byte(secret.Redacted), nil }

// Secret is a key in configuration. It prints, logs and marshals as
// "[redacted]"; it unmarshals from a plain JSON string.
type Secret = secret.Secret

// StaticKeys is a Source of keys written in the host's configuration (a
// secret store, a file, environment variables: the host reads them; this
// library never does). Each key is the base64 of KeySize random bytes, in
// the standard or the URL-safe alphabet, padded or not, such as
// `openssl rand -base64 32` prints. The keys are Secrets, so a
// configuration holding them can be printed or logged without showing them.
type StaticKeys struct {
	// Data are the data keys, the sealing key first (see Keys.Data).
	Data []Secret
	// Index is the blind-index key (see Keys.Index).
	Index Secret
}

var _ Source = StaticKeys{}

// Load decodes the keys. It fails, naming the key but never showing it,
// when one is not base64; New checks the rest.
func (s StaticKeys) Load(context.Context) (Keys, error) {
	var k Keys
	for i, d := range s.Data {
		key, err := decodeKey(string(d))
		if err != nil {
			return Keys{}, fmt.Errorf("data key %d is not base64", i)
		}
		k.Data = append(k.Data, key)
	}
	var err error
	if k.Index, err = decodeKey(string(s.Index)); err != nil {
		return Keys{}, errors.New("the index key is not base64")
	}
	return k, nil
}

// decodeKey decodes base64 in either alphabet, padded or not, around
// whitespace (a key pasted from a file keeps its newline).
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	return enc.DecodeString(s)
}

// Wrapper is a key-encryption service: a KMS (AWS KMS Encrypt/Decrypt,
// Google Cloud KMS, Azure Key Vault wrapKey/unwrapKey, Vault transit) or
// an HSM, which holds a wrapping key that never leaves it. The host
// implements it over its client, with that client's credentials and
// timeouts, and may bind its own encryption context.
type Wrapper interface {
	// Wrap encrypts key (a data key or the index key) under the wrapping
	// key and returns the wrapped form, which is safe to keep in
	// configuration. It returns an error when the service refuses or
	// cannot be reached.
	Wrap(ctx context.Context, key []byte) ([]byte, error)
	// Unwrap returns the key that Wrap wrapped. It returns an error when
	// wrapped is not a value Wrap returned (altered, or under a wrapping
	// key the service no longer has or does not let this caller use), or
	// when the service cannot be reached.
	Unwrap(ctx context.Context, wrapped []byte) ([]byte, error)
}

// DefaultEnvelopeTimeout bounds an Envelope's Load when Envelope.Timeout
// is zero.
const DefaultEnvelopeTimeout = 30 * time.Second

// Envelope is a Source of keys kept wrapped (envelope encryption): the
// data keys and the index key are stored wrapped by a Wrapper and unwrapped
// once, when the ring loads, so the KMS sees one call per key per load,
// never one per value, and a database dump without the KMS reveals
// nothing. Make a key with NewWrappedKey.
//
// Rotating the wrapping key (in the KMS) re-wraps the keys: their ids,
// derived from the unwrapped key, and every sealed value stay as they are.
// Rotating a data key is Keys.Data's rotation.
type Envelope struct {
	// Wrapper unwraps the keys. Required.
	Wrapper Wrapper
	// Data are the wrapped data keys, the sealing key first.
	Data [][]byte
	// Index is the wrapped index key.
	Index []byte
	// Timeout bounds one Load, every Unwrap together. Defaults to
	// DefaultEnvelopeTimeout.
	Timeout time.Duration
}

var _ Source = Envelope{}

// Load unwraps every key. It fails, naming the key, when the Wrapper fails
// on one.
func (e Envelope) Load(ctx context.Context) (Keys, error) {
	if e.Wrapper == nil {
		return Keys{}, errors.New("an Envelope needs a Wrapper (the host's KMS client) to unwrap its keys")
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(e.Timeout, DefaultEnvelopeTimeout))
	defer cancel()
	var k Keys
	for i, w := range e.Data {
		key, err := e.Wrapper.Unwrap(ctx, w)
		if err != nil {
			return Keys{}, fmt.Errorf("unwrap data key %d: %w", i, err)
		}
		k.Data = append(k.Data, key)
	}
	var err error
	if k.Index, err = e.Wrapper.Unwrap(ctx, e.Index); err != nil {
		return Keys{}, fmt.Errorf("unwrap the index key: %w", err)
	}
	return k, nil
}

// NewKey returns a new key of KeySize random bytes, for Keys. For
// StaticKeys, encode it: base64.StdEncoding.EncodeToString(NewKey()).
func NewKey() []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k) // never fails (crypto/rand crashes the program first)
	return k
}

// NewWrappedKey makes a new random key and returns it wrapped by w, for
// Envelope.Data or Envelope.Index; the key in the clear is erased. It
// fails when w.Wrap does.
func NewWrappedKey(ctx context.Context, w Wrapper) ([]byte, error) {
	k := NewKey()
	defer clear(k)
	wrapped, err := w.Wrap(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("keyring: wrap a new key: %w", err)
	}
	return wrapped, nil
}
