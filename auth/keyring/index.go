package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

// IndexSize is the length of a blind index: an HMAC-SHA256.
const IndexSize = sha256.Size

// indexLabel separates blind indexes from any other use of the index key.
const indexLabel = "adshare/keyring/index/v1\x00"

// Index returns the blind index of value for purpose: HMAC-SHA256 under
// the ring's index key over a label, the purpose's length, the purpose and
// the value. Equal values of one purpose have equal indexes and nothing
// else does (short of a 2^-128 accident), so a store can look a sealed
// value up, or keep it unique, by its index, without the plaintext and
// without its row id; values of different purposes never share an index.
//
// The index is deterministic by design: whoever reads the database learns
// which rows hold equal values (never what they are), and whoever also
// holds the index key can test guesses, so index only what must be found,
// and normalise first (trim, lower-case an email) because the index is of
// the exact bytes. It does not depend on the data keys, which rotate
// freely; the index key stays (see Reload).
func (r *Ring) Index(purpose string, value []byte) []byte {
	m := hmac.New(sha256.New, r.keys.Load().index)
	m.Write([]byte(indexLabel))
	m.Write(binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64), uint64(len(purpose))))
	m.Write([]byte(purpose))
	m.Write(value)
	return m.Sum(make([]byte, 0, IndexSize))
}

// IndexString is Index for a string.
func (r *Ring) IndexString(purpose, value string) []byte {
	return r.Index(purpose, []byte(value))
}
