package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"sync"

	"github.com/adshare/adshare/decision"
)

// Key names one pool: the SHA-256 of a canonical encoding of everything in a
// request that changes which ads a placement may get (see "Keys" in the
// package documentation). A fixed-size array, so looking a pool up
// allocates nothing. A Tier stores it as it likes; String gives a form fit
// for names.
type Key [sha256.Size]byte

// String returns the key in lower-case hexadecimal (64 characters).
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// keyVersion starts every encoding, so that a change to the encoding (or to
// what the pools hold) never shares a pool with the previous one in a shared
// tier during a rolling deploy.
const keyVersion = "adshare/decision-cache/v1\x00"

// scratch holds the buffers one key computation needs; pooled so that a
// cache hit allocates nothing for its key.
type scratch struct {
	buf  []byte
	strs []string
	ints []int64
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// requestKeys sets the key of every slot, one per placement, in order.
//
// In the key: the user key, keywords, categories and request properties, the
// exclusions and the consent state; per placement its ad types, formats,
// site, zones, properties and event ids. Lists are sorted (their order does
// not change the answer) and every string is length-prefixed (so that
// ["ab"] and ["a", "b"] differ). Not in the key: the placement's ID and
// Count, and the request's IP, UserAgent, URL, Referrer and Time.
func requestKeys(req *decision.Request, slots []slot) {
	s := scratchPool.Get().(*scratch)
	b := append(s.buf[:0], keyVersion...)
	b = appendString(b, req.UserKey)
	b = s.appendStrings(b, req.Keywords)
	b = s.appendStrings(b, req.Categories)
	b = s.appendMap(b, req.Properties)
	b = s.appendStrings(b, req.Exclude.Advertisers)
	b = s.appendStrings(b, req.Exclude.Categories)
	b = s.appendStrings(b, req.Exclude.Creatives)
	var flags byte
	for i, f := range []bool{req.Consent.GDPRApplies, req.Consent.GDPR, req.Consent.DoNotSell} {
		if f {
			flags |= 1 << i
		}
	}
	b = append(b, flags)
	b = appendString(b, req.Consent.TCString)
	common := len(b)
	for i := range req.Placements {
		p := &req.Placements[i]
		b = b[:common]
		s.ints = s.ints[:0]
		for _, t := range p.AdTypes {
			s.ints = append(s.ints, int64(t))
		}
		b = s.appendInts(b)
		b = s.appendStrings(b, p.Formats)
		b = binary.AppendVarint(b, p.SiteID)
		s.ints = append(s.ints[:0], p.ZoneIDs...)
		b = s.appendInts(b)
		b = s.appendMap(b, p.Properties)
		s.ints = s.ints[:0]
		for _, e := range p.EventIDs {
			s.ints = append(s.ints, int64(e))
		}
		b = s.appendInts(b)
		slots[i].key = sha256.Sum256(b)
	}
	s.buf = b
	clear(s.strs[:cap(s.strs)]) // drop references to the caller's strings
	s.strs = s.strs[:0]
	scratchPool.Put(s)
}

func appendString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendStrings appends vs sorted, with their count.
func (s *scratch) appendStrings(b []byte, vs []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(vs)))
	switch len(vs) {
	case 0:
		return b
	case 1:
		return appendString(b, vs[0])
	}
	s.strs = append(s.strs[:0], vs...)
	slices.Sort(s.strs)
	for _, v := range s.strs {
		b = appendString(b, v)
	}
	return b
}

// appendMap appends m's entries sorted by key, with their count.
func (s *scratch) appendMap(b []byte, m map[string]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	if len(m) == 0 {
		return b
	}
	s.strs = s.strs[:0]
	for k := range m {
		s.strs = append(s.strs, k)
	}
	slices.Sort(s.strs)
	for _, k := range s.strs {
		b = appendString(b, k)
		b = appendString(b, m[k])
	}
	return b
}

// appendInts appends s.ints sorted, with their count.
func (s *scratch) appendInts(b []byte) []byte {
	slices.Sort(s.ints)
	b = binary.AppendUvarint(b, uint64(len(s.ints)))
	for _, v := range s.ints {
		b = binary.AppendVarint(b, v)
	}
	return b
}
