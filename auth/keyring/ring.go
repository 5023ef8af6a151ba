package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
)

// The format of a sealed value (see the package doc).
const (
	// formatVersion is the first byte of every sealed value.
	formatVersion = 1
	// idSize is the length of a key id in a sealed value.
	idSize = 8
	// tagSize is the length of the purpose tag.
	tagSize = 4
	// headerSize is the version byte, the key id and the purpose tag.
	headerSize = 1 + idSize + tagSize
	// nonceSize and aeadTagSize are AES-GCM's standard 96-bit nonce and
	// 128-bit tag.
	nonceSize   = 12
	aeadTagSize = 16
)

// KeySize is the length in bytes of every key, data key or index key:
// AES-256 and HMAC-SHA256 keys are 32 bytes.
const KeySize = 32

// Overhead is how many bytes Seal adds to a plaintext: a sealed value is
// exactly len(plain)+Overhead bytes long, whatever the key, so columns can
// be sized and nothing about the value leaks but its length.
const Overhead = headerSize + nonceSize + aeadTagSize

// Labels that separate this package's hashes from any other use of a key.
const (
	keyIDLabel   = "adshare/keyring/key-id/v1\x00"
	purposeLabel = "adshare/keyring/purpose/v1\x00"
)

// keyID identifies a data key inside sealed values.
type keyID [idSize]byte

// String returns the id as it appears in logs and in KeyID's answers: 16
// lower-case hex digits, which SQL finds as
// encode(substring(col from 2 for 8), 'hex').
func (id keyID) String() string { return hex.EncodeToString(id[:]) }

// idOf derives a key's id from the key: stable wherever and in whatever
// order the key is configured, and the same when a KMS re-wraps it under a
// new wrapping key. It reveals nothing usable about the key (the first 8
// bytes of a labelled SHA-256 of 32 random bytes).
func idOf(key []byte) keyID {
	h := sha256.New()
	h.Write([]byte(keyIDLabel))
	h.Write(key)
	var id keyID
	copy(id[:], h.Sum(nil))
	return id
}

// purposeTag is the purpose's short, public fingerprint in the header,
// which lets Open tell a value of another purpose from a tampered one. It
// is no secret (purposes are names in the code) and is authenticated with
// the rest of the header.
func purposeTag(purpose string) [tagSize]byte {
	var buf [128]byte // on the stack for any purpose of a sane length
	sum := sha256.Sum256(append(append(buf[:0], purposeLabel...), purpose...))
	var t [tagSize]byte
	copy(t[:], sum[:])
	return t
}

// keys is one loaded generation of a ring's keys.
type keys struct {
	sealID keyID
	seal   cipher.AEAD
	open   map[keyID]cipher.AEAD
	ids    []string // every data key's id, the sealing key first
	index  []byte
}

// Ring seals and opens values at rest with AES-256-GCM under rotating data
// keys, and computes blind indexes under a key of its own. The first data
// key seals; every data key opens. Safe for concurrent use, Reload
// included. Make one with New (the zero Ring holds no key).
type Ring struct {
	// load is the source's Load: a func prints as an address, so
	// printing a Ring never shows the keys of a StaticKeys or Keys
	// source (fmt reads unexported fields without their methods).
	load func(context.Context) (Keys, error)
	keys atomic.Pointer[keys]
}

// New loads the ring's keys from src (once: Seal and Open never call the
// source) and returns the ring. ctx bounds the loading, which may ask a
// KMS. It fails when the source does, or when the keys break a rule: at
// least one data key, every key KeySize bytes, no key twice, and an index
// key that is none of the data keys.
func New(ctx context.Context, src Source) (*Ring, error) {
	if src == nil {
		return nil, errors.New("keyring: New needs a Source: StaticKeys from configuration, an Envelope over a KMS, or Keys")
	}
	r := &Ring{load: src.Load}
	k, err := r.loadKeys(ctx)
	if err != nil {
		return nil, err
	}
	r.keys.Store(k)
	return r, nil
}

// Reload loads the keys from the ring's source again and, when they are
// valid, swaps them in: values sealed from then on use the new first key.
// It fails, keeping the keys the ring has, when the source fails, when
// the new keys break New's rules, or when the index key changed (every
// stored index would stop matching: a new index key needs its own
// migration, not a reload).
func (r *Ring) Reload(ctx context.Context) error {
	k, err := r.loadKeys(ctx)
	if err != nil {
		return err
	}
	if !bytes.Equal(k.index, r.keys.Load().index) {
		return errors.New("keyring: reload: the index key changed; indexes already stored would no longer match (keep the index key, or recompute every index first)")
	}
	r.keys.Store(k)
	return nil
}

// loadKeys loads the keys from the source and checks them.
func (r *Ring) loadKeys(ctx context.Context) (*keys, error) {
	m, err := r.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("keyring: load keys: %w", err)
	}
	if len(m.Data) == 0 {
		return nil, errors.New("keyring: no data key: configure at least one key of 32 random bytes (see NewKey), the sealing key first")
	}
	if len(m.Index) != KeySize {
		return nil, fmt.Errorf("keyring: the index key is %d bytes; want %d random bytes (see NewKey)", len(m.Index), KeySize)
	}
	k := &keys{open: make(map[keyID]cipher.AEAD, len(m.Data)), index: bytes.Clone(m.Index)}
	for i, key := range m.Data {
		if len(key) != KeySize {
			return nil, fmt.Errorf("keyring: data key %d is %d bytes; want %d random bytes (see NewKey)", i, len(key), KeySize)
		}
		if subtle.ConstantTimeCompare(key, m.Index) == 1 {
			return nil, fmt.Errorf("keyring: data key %d is also the index key; the index key must be a key of its own", i)
		}
		id := idOf(key)
		if _, dup := k.open[id]; dup {
			return nil, fmt.Errorf("keyring: data key %d repeats an earlier one (id %s); list each key once", i, id)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("keyring: data key %d: %w", i, err)
		}
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("keyring: data key %d: %w", i, err)
		}
		k.open[id] = aead
		k.ids = append(k.ids, id.String())
		if i == 0 {
			k.sealID, k.seal = id, aead
		}
	}
	return k, nil
}

// SealingKeyID returns the id of the key that seals (the first data key).
func (r *Ring) SealingKeyID() string { return r.keys.Load().sealID.String() }

// KeyIDs returns the ids of every data key the ring holds, the sealing key
// first, in the order the source gave them.
func (r *Ring) KeyIDs() []string { return append([]string(nil), r.keys.Load().ids...) }

// Seal encrypts plain for one purpose (the field it is stored in, such as
// "billing.connected_account") and one row (the id of the row, or of the
// entity, that holds it) under the sealing key, with a random nonce. The
// value opens only with the same purpose and row id. It fails only when
// purpose or rowID is empty.
func (r *Ring) Seal(purpose, rowID string, plain []byte) ([]byte, error) {
	if err := checkBinding("Seal", purpose, rowID); err != nil {
		return nil, err
	}
	k := r.keys.Load()
	out := make([]byte, headerSize, len(plain)+Overhead)
	out[0] = formatVersion
	copy(out[1:], k.sealID[:])
	tag := purposeTag(purpose)
	copy(out[1+idSize:], tag[:])
	return k.seal.Seal(out, nil, plain, additionalData(out, purpose, rowID)), nil
}

// SealString is Seal for a string.
func (r *Ring) SealString(purpose, rowID, plain string) ([]byte, error) {
	return r.Seal(purpose, rowID, []byte(plain))
}

// Open decrypts a value Seal returned for the same purpose and row id. It
// returns ErrWrongPurpose when the value was sealed for another purpose,
// ErrUnknownKey when its key is not in the ring, and ErrTampered for
// anything else that is not such a value: truncated, of an unknown format,
// altered in any byte, or sealed for another row. It never panics,
// whatever sealed holds. A misuse (an empty purpose or row id) is an error
// of its own.
func (r *Ring) Open(purpose, rowID string, sealed []byte) ([]byte, error) {
	if err := checkBinding("Open", purpose, rowID); err != nil {
		return nil, err
	}
	id, err := header(purpose, sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := r.keys.Load().open[id]
	if !ok {
		return nil, ErrUnknownKey.WithCause(fmt.Errorf("key id %s", id))
	}
	plain, err := aead.Open(nil, nil, sealed[headerSize:], additionalData(sealed, purpose, rowID))
	if err != nil {
		return nil, ErrTampered.WithCause(err)
	}
	return plain, nil
}

// OpenString is Open for a value sealed from a string.
func (r *Ring) OpenString(purpose, rowID string, sealed []byte) (string, error) {
	plain, err := r.Open(purpose, rowID, sealed)
	return string(plain), err
}

// Reseal returns sealed under the sealing key, for the job that
// re-encrypts old rows after a rotation: a value already under the
// sealing key comes back as it is, unopened, with changed false (nothing
// to write); any other is opened and sealed again (a new nonce), with
// changed true. Errors are Open's.
func (r *Ring) Reseal(purpose, rowID string, sealed []byte) (resealed []byte, changed bool, err error) {
	if err := checkBinding("Reseal", purpose, rowID); err != nil {
		return nil, false, err
	}
	id, err := header(purpose, sealed)
	if err != nil {
		return nil, false, err
	}
	if id == r.keys.Load().sealID {
		return sealed, false, nil
	}
	plain, err := r.Open(purpose, rowID, sealed)
	if err != nil {
		return nil, false, err
	}
	defer clear(plain)
	out, err := r.Seal(purpose, rowID, plain)
	return out, err == nil, err
}

// KeyID returns the id of the key that sealed a value (as SealingKeyID
// and KeyIDs spell it) without opening it, for re-encryption and for
// checking that no value still uses a key before it retires. It returns
// ErrTampered when sealed is too short or of an unknown format; the id of
// an altered value is not authenticated until Open.
func KeyID(sealed []byte) (string, error) {
	if len(sealed) < Overhead || sealed[0] != formatVersion {
		return "", ErrTampered
	}
	return keyID(sealed[1 : 1+idSize]).String(), nil
}

// header checks sealed's length, version and purpose tag and returns its
// key id.
func header(purpose string, sealed []byte) (keyID, error) {
	if len(sealed) < Overhead || sealed[0] != formatVersion {
		return keyID{}, ErrTampered
	}
	if tag := purposeTag(purpose); subtle.ConstantTimeCompare(tag[:], sealed[1+idSize:headerSize]) != 1 {
		return keyID{}, ErrWrongPurpose
	}
	return keyID(sealed[1 : 1+idSize]), nil
}

// additionalData binds a value to its header (format, key and purpose
// tag), its purpose and its row: the header, the purpose's length as a
// uvarint, the purpose, the row id. The length keeps ("ab", "c") apart
// from ("a", "bc"). It is a new slice: AES-GCM forbids additional data
// that overlaps its output.
func additionalData(sealed []byte, purpose, rowID string) []byte {
	ad := make([]byte, 0, headerSize+binary.MaxVarintLen64+len(purpose)+len(rowID))
	ad = append(ad, sealed[:headerSize]...)
	ad = binary.AppendUvarint(ad, uint64(len(purpose)))
	ad = append(ad, purpose...)
	return append(ad, rowID...)
}

func checkBinding(op, purpose, rowID string) error {
	if purpose == "" || rowID == "" {
		return fmt.Errorf("keyring: %s needs a purpose (the field, such as \"billing.connected_account\") and the id of the row that holds the value; got purpose %q, row id %q", op, purpose, rowID)
	}
	return nil
}
