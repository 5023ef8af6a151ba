package transport

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// jsonAppender is an answer that writes its own JSON, byte for byte what
// encoding/json writes for it (HTML-safe, as json.Encoder's default), with
// no reflection and no allocation: writeJSON uses it for the API's
// hottest answers. A test holds each to encoding/json's output.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

const hexDigits = "0123456789abcdef"

// jsonSafeASCII marks the ASCII bytes a JSON string holds as they are.
var jsonSafeASCII = func() (safe [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		safe[c] = !strings.ContainsRune(`"\<>&`, rune(c))
	}
	return safe
}()

// appendJSONString appends s as a JSON string, as encoding/json does:
// quotes, backslashes and control characters escaped, and <, >, &,
// U+2028 and U+2029 too (so that the answer is safe inside HTML and
// JavaScript), invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	return append(appendJSONStringBody(append(b, '"'), s), '"')
}

// appendJSONStringPair appends a+c as appendJSONString would, without
// building a+c. Escaping goes rune by rune, so the two escape apart when a
// ends on a whole rune (it is valid UTF-8); else they are joined first.
func appendJSONStringPair(b []byte, a, c string) []byte {
	if !utf8.ValidString(a) {
		return appendJSONString(b, a+c)
	}
	return append(appendJSONStringBody(appendJSONStringBody(append(b, '"'), a), c), '"')
}

// appendJSONStringBody appends s escaped, without the quotes.
func appendJSONStringBody(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafeASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(append(b, s[start:i]...), `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// appendJSONStrings appends a list of strings; nil is null.
func appendJSONStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONUUID appends u as its text form, quoted.
func appendJSONUUID(b []byte, u uuid.UUID) []byte {
	b = append(b, '"')
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return append(b, '"')
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds), for the years it accepts.
func appendJSONTime(b []byte, t time.Time) []byte {
	return append(t.AppendFormat(append(b, '"'), time.RFC3339Nano), '"')
}

// appendJSONInt appends n.
func appendJSONInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }
