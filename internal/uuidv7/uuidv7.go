// Package uuidv7 makes version 7 UUIDs (RFC 9562) on the hot paths of the
// API, without the allocation github.com/google/uuid's NewV7 makes per
// call: a request id per request, a tracking id per ad served.
//
// The layout is RFC 9562's: 48 bits of Unix milliseconds, the version, 12
// bits of sub-millisecond clock (its method 3), the variant and 62 random
// bits from crypto/rand. The 60 bits of time never repeat or go back
// within a process, so that ids made one after another sort in the order
// they were made, as google/uuid's do.
package uuidv7

import (
	"crypto/rand"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// last is the most recent 60-bit timestamp handed out: milliseconds << 12
// | the fraction of a millisecond in 1/4096ths.
var last atomic.Int64

// New returns a new version 7 UUID.
func New() uuid.UUID {
	var u uuid.UUID
	_, _ = rand.Read(u[8:]) // crypto/rand.Read never fails
	t := next(time.Now().UnixNano())
	ms, frac := t>>12, t&0xfff
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | byte(frac>>8)
	u[7] = byte(frac)
	u[8] = u[8]&0x3f | 0x80 // the RFC 9562 variant
	return u
}

// next returns the timestamp of now (Unix nanoseconds), or one past the
// last one handed out when the clock has not moved past it.
func next(now int64) int64 {
	ms := now / int64(time.Millisecond)
	t := ms<<12 | (now%int64(time.Millisecond))*4096/int64(time.Millisecond)
	for {
		prev := last.Load()
		cand := max(t, prev+1)
		if last.CompareAndSwap(prev, cand) {
			return cand
		}
	}
}
