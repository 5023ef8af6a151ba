// Package unixtime converts times to whole Unix milliseconds and
// microseconds rounded up, as the revocation lists of store/memory and
// store/redis keep them: rounding up never lets a revoked token through.
package unixtime

import "time"

// CeilMilli returns t in Unix milliseconds, rounded up.
func CeilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms
}

// CeilMicro returns t in Unix microseconds, rounded up.
func CeilMicro(t time.Time) int64 {
	us := t.UnixMicro()
	if t.After(time.UnixMicro(us)) {
		us++
	}
	return us
}
