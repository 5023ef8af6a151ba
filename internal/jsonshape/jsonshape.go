// Package jsonshape checks that a request body is one well-formed JSON
// object of a sane shape before a decoder sees it, in one pass over the
// bytes and without building tokens: encoding/json silently accepts
// duplicate keys (the last wins: a parser differential attackers use),
// nesting of any depth, and invalid UTF-8 (it substitutes U+FFFD).
package jsonshape

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Problem is what is wrong with a body.
type Problem int

// Problems Check reports.
const (
	// InvalidUTF8: the body is not valid UTF-8.
	InvalidUTF8 Problem = iota + 1
	// Empty: the body holds nothing but whitespace.
	Empty
	// NotObject: the body's value is not an object.
	NotObject
	// Syntax: the body is not valid JSON at Offset.
	Syntax
	// Truncated: the body ends before its value does.
	Truncated
	// Trailing: something follows the value, at Offset.
	Trailing
	// DuplicateKey: an object repeats Key (compared after unescaping).
	DuplicateKey
	// TooDeep: arrays and objects nest deeper than the limit.
	TooDeep
)

// Error describes why Check refused a body.
type Error struct {
	Problem Problem
	// Offset is the byte at which the problem was found.
	Offset int
	// Key is the repeated key (DuplicateKey only).
	Key string
}

func (e *Error) Error() string {
	switch e.Problem {
	case InvalidUTF8:
		return "jsonshape: invalid UTF-8"
	case Empty:
		return "jsonshape: empty body"
	case NotObject:
		return "jsonshape: not a JSON object"
	case Truncated:
		return "jsonshape: the body ends before the JSON value does"
	case Trailing:
		return fmt.Sprintf("jsonshape: data after the JSON value at byte %d", e.Offset)
	case DuplicateKey:
		return fmt.Sprintf("jsonshape: repeated key %q at byte %d", e.Key, e.Offset)
	case TooDeep:
		return fmt.Sprintf("jsonshape: nested too deep at byte %d", e.Offset)
	}
	return fmt.Sprintf("jsonshape: invalid JSON at byte %d", e.Offset)
}

// Check returns nil when body is valid UTF-8 holding exactly one JSON
// object (whitespace around it aside) in which no object repeats a key and
// arrays and objects nest at most maxDepth deep (the top object is depth
// 1). Otherwise it returns an *Error.
func Check(body []byte, maxDepth int) error {
	if !utf8.Valid(body) {
		return &Error{Problem: InvalidUTF8}
	}
	s := scanner{b: body, maxDepth: maxDepth}
	s.space()
	if s.i == len(s.b) {
		return &Error{Problem: Empty}
	}
	if s.b[s.i] != '{' {
		return &Error{Problem: NotObject, Offset: s.i}
	}
	if err := s.value(0); err != nil {
		return err
	}
	s.space()
	if s.i != len(s.b) {
		return &Error{Problem: Trailing, Offset: s.i}
	}
	return nil
}

type scanner struct {
	b        []byte
	i        int
	maxDepth int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// fail reports a syntax error at the current byte, or Truncated at the end.
func (s *scanner) fail() error {
	if s.i >= len(s.b) {
		return &Error{Problem: Truncated, Offset: s.i}
	}
	return &Error{Problem: Syntax, Offset: s.i}
}

// value scans one value starting at s.i (after whitespace); depth is the
// nesting of the arrays and objects around it.
func (s *scanner) value(depth int) error {
	if s.i >= len(s.b) {
		return s.fail()
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return s.fail()
}

func (s *scanner) object(depth int) error {
	if depth > s.maxDepth {
		return &Error{Problem: TooDeep, Offset: s.i}
	}
	s.i++ // {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	var keys keySet
	for {
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.fail()
		}
		at := s.i
		raw, err := s.str()
		if err != nil {
			return err
		}
		if !keys.add(raw) {
			return &Error{Problem: DuplicateKey, Offset: at, Key: unquote(raw)}
		}
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.fail()
		}
		s.i++
		s.space()
		if err := s.value(depth); err != nil {
			return err
		}
		if done, err := s.next('}'); done || err != nil {
			return err
		}
	}
}

func (s *scanner) array(depth int) error {
	if depth > s.maxDepth {
		return &Error{Problem: TooDeep, Offset: s.i}
	}
	s.i++ // [
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		s.space()
		if err := s.value(depth); err != nil {
			return err
		}
		if done, err := s.next(']'); done || err != nil {
			return err
		}
	}
}

// next scans what follows a member or element: a comma (more to come) or
// the closing delimiter (done).
func (s *scanner) next(closing byte) (done bool, err error) {
	s.space()
	switch {
	case s.i >= len(s.b):
		return false, s.fail()
	case s.b[s.i] == ',':
		s.i++
		return false, nil
	case s.b[s.i] == closing:
		s.i++
		return true, nil
	}
	return false, s.fail()
}

// str scans a string and returns it raw, quotes included.
func (s *scanner) str() ([]byte, error) {
	start := s.i
	s.i++ // "
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start:s.i], nil
		case c < 0x20:
			return nil, s.fail()
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return nil, s.fail()
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for range 4 {
					if s.i >= len(s.b) || !isHex(s.b[s.i]) {
						return nil, s.fail()
					}
					s.i++
				}
			default:
				return nil, s.fail()
			}
		default:
			s.i++
		}
	}
	return nil, s.fail()
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return s.fail()
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return s.fail()
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return s.fail()
		}
	}
	return nil
}

func (s *scanner) digits() int {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}

func (s *scanner) literal(word string) error {
	for k := range len(word) {
		if s.i >= len(s.b) || s.b[s.i] != word[k] {
			return s.fail()
		}
		s.i++
	}
	return nil
}

// keySet holds the keys of one object, as slices of the body (unescaped
// copies for keys with escapes: "a" and "\u0061" are the same key).
// Objects in requests are small: an array beats a map up to smallKeys.
type keySet struct {
	small [smallKeys][]byte
	n     int
	large map[string]struct{}
}

const smallKeys = 16

// add adds the raw (quoted) key and reports whether it was new.
func (k *keySet) add(raw []byte) bool {
	key := raw[1 : len(raw)-1]
	if bytes.IndexByte(key, '\\') >= 0 {
		key = []byte(unquote(raw))
	}
	if k.large != nil {
		if _, dup := k.large[string(key)]; dup {
			return false
		}
		k.large[string(key)] = struct{}{}
		return true
	}
	for _, seen := range k.small[:k.n] {
		if bytes.Equal(seen, key) {
			return false
		}
	}
	if k.n < smallKeys {
		k.small[k.n] = key
		k.n++
		return true
	}
	k.large = make(map[string]struct{}, 2*smallKeys)
	for _, seen := range k.small {
		k.large[string(seen)] = struct{}{}
	}
	k.large[string(key)] = struct{}{}
	return true
}

// unquote returns a scanned (valid) JSON string's value.
func unquote(raw []byte) string {
	var v string
	_ = json.Unmarshal(raw, &v)
	return v
}
