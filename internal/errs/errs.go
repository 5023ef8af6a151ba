// Package errs is the one error vocabulary shared by adshare's domain packages.
//
// A domain package declares its states as sentinels built with [New] (for
// example auth.ErrEmailTaken) and returns them, wrapped with context, or
// returns validation failures built with [Invalid]. Host applications compare
// with errors.Is against the exported sentinels; the transport package maps an
// error's [Kind] to an HTTP status in one table and shows only the error's
// public message, never the wrapped cause.
package errs

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"time"
)

// Kind classifies an error by what the caller can do about it.
type Kind uint8

// The kinds of error. Internal is the zero value so that an error of unknown
// kind is never shown to a client as anything but an internal failure.
const (
	Internal        Kind = iota // a bug or an unexpected failure; details stay in the logs
	Invalid                     // the input breaks a rule; Fields says which
	NotFound                    // the thing asked for does not exist (or is not the caller's)
	Conflict                    // the write collides with the current state
	Unauthenticated             // no valid credentials
	Forbidden                   // valid credentials, not allowed
	RateLimited                 // too many attempts; RetryAfter says when to come back
	Unavailable                 // a dependency is down; retrying later may work
	TooLarge                    // the request is bigger than allowed
	Malformed                   // the request cannot be parsed at all
	Gone                        // the thing existed but is no more (a used or expired link)
)

var kindNames = [...]string{
	Internal:        "internal",
	Invalid:         "invalid",
	NotFound:        "not_found",
	Conflict:        "conflict",
	Unauthenticated: "unauthenticated",
	Forbidden:       "forbidden",
	RateLimited:     "rate_limited",
	Unavailable:     "unavailable",
	TooLarge:        "too_large",
	Malformed:       "malformed",
	Gone:            "gone",
}

// String returns the kind's snake_case name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "internal"
}

// Error is a domain error with a stable machine-readable code, a message that
// is safe to show to the client, and optional field-level details.
//
// Sentinels are package-level *Error values; the With* methods return copies,
// so a shared sentinel is never mutated. A copy still matches its sentinel
// with errors.Is because Is compares kind and code.
type Error struct {
	// Kind classifies the error.
	Kind Kind
	// Code is a stable snake_case identifier, such as "email_taken".
	Code string
	// Message is a short sentence that is safe to show to clients.
	Message string
	// Fields maps a JSON pointer-ish field path ("email", "settings/refresh")
	// to what is wrong with it. Only set on Invalid errors.
	Fields map[string]string
	// RetryAfter tells a RateLimited or Unavailable caller when to retry.
	RetryAfter time.Duration

	cause error
}

// New returns a sentinel error of the given kind.
func New(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// Error implements error. It includes the cause, which may hold internal
// details: never show it to clients, show Message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if len(e.Fields) > 0 {
		b.WriteString(" (")
		for i, k := range slices.Sorted(maps.Keys(e.Fields)) {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(e.Fields[k])
		}
		b.WriteString(")")
	}
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

// Unwrap returns the cause attached with [Error.WithCause].
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error of the same kind and code, so that a
// copy made by a With* method matches the sentinel it came from.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Code == e.Code
}

// WithCause returns a copy of e that wraps cause (kept for logs, never shown).
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// WithFields returns a copy of e carrying field-level messages.
func (e *Error) WithFields(fields map[string]string) *Error {
	c := *e
	c.Fields = maps.Clone(fields)
	return &c
}

// WithRetryAfter returns a copy of e that tells the caller when to retry.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	c := *e
	c.RetryAfter = d
	return &c
}

// WithMessage returns a copy of e with a more specific public message.
func (e *Error) WithMessage(msg string) *Error {
	c := *e
	c.Message = msg
	return &c
}

// As returns the first *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// KindOf returns the kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	if e := As(err); e != nil {
		return e.Kind
	}
	return Internal
}

// Fields collects field-level validation messages. The zero value is ready
// to use.
type Fields map[string]string

// Add records msg for field unless the field already has a message, so the
// first (most basic) problem found with a field is the one reported.
func (f *Fields) Add(field, msg string) {
	if *f == nil {
		*f = make(Fields)
	}
	if _, ok := (*f)[field]; !ok {
		(*f)[field] = msg
	}
}

// Check records msg for field when ok is false.
func (f *Fields) Check(ok bool, field, msg string) {
	if !ok {
		f.Add(field, msg)
	}
}

// Err returns nil when no field failed, else a copy of sentinel (which should
// be of kind Invalid) carrying the field messages.
func (f Fields) Err(sentinel *Error) error {
	if len(f) == 0 {
		return nil
	}
	return sentinel.WithFields(f)
}
