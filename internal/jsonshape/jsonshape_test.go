package jsonshape

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	keys := func(n int, repeatLast bool) string {
		var sb strings.Builder
		sb.WriteString("{")
		for i := range n {
			if i > 0 {
				sb.WriteString(",")
			}
			k := i
			if repeatLast && i == n-1 {
				k = 0
			}
			sb.WriteString(`"k` + strings.Repeat("x", k) + `":1`)
		}
		sb.WriteString("}")
		return sb.String()
	}
	for _, tt := range []struct {
		body    string
		problem Problem // 0: accepted
		offset  int
		key     string
	}{
		{`{}`, 0, 0, ""},
		{" \t\r\n{ } \n", 0, 0, ""},
		{`{"a":1,"b":[true,false,null,-0.5e+10,"x\"\\\/\b\f\n\r\t\u00e9"],"c":{"a":{}}}`, 0, 0, ""},
		{`{"a":1,"A":2}`, 0, 0, ""},
		{keys(40, false), 0, 0, ""},
		{`{"tags":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`, 0, 0, ""},

		{"{\"a\":\"\xff\"}", InvalidUTF8, 0, ""},
		{"", Empty, 0, ""},
		{" \n\t", Empty, 0, ""},
		{`null`, NotObject, 0, ""},
		{` [{"a":1}]`, NotObject, 1, ""},
		{`"a"`, NotObject, 0, ""},
		{`{"a":1} {"b":2}`, Trailing, 8, ""},
		{`{"a":1}x`, Trailing, 7, ""},
		{`{"a":1,"a":2}`, DuplicateKey, 7, "a"},
		{`{"a":1,"\u0061":2}`, DuplicateKey, 7, "a"},
		{`{"x":{"n":1,"n":2}}`, DuplicateKey, 12, "n"},
		{keys(40, true), DuplicateKey, strings.LastIndex(keys(40, true), `"k"`), "k"},
		{`{"tags":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`, TooDeep, 39, ""},
		{`{"a":`, Truncated, 5, ""},
		{`{"a":"abc`, Truncated, 9, ""},
		{`{"a":tru`, Truncated, 8, ""},
		{`{"a":1,,}`, Syntax, 7, ""},
		{`{"a":1,}`, Syntax, 7, ""},
		{`{"a" 1}`, Syntax, 5, ""},
		{`{a:1}`, Syntax, 1, ""},
		{`{"a":01}`, Syntax, 6, ""},
		{`{"a":1.}`, Syntax, 7, ""},
		{`{"a":1e}`, Syntax, 7, ""},
		{`{"a":-}`, Syntax, 6, ""},
		{`{"a":+1}`, Syntax, 5, ""},
		{`{"a":"\x"}`, Syntax, 7, ""},
		{`{"a":"\u12g4"}`, Syntax, 10, ""},
		{"{\"a\":\"tab\there\"}", Syntax, 9, ""},
		{`{"a":[1 2]}`, Syntax, 8, ""},
		{`{"a":True}`, Syntax, 5, ""},
		{`{"a":nul}`, Syntax, 8, ""},
	} {
		err := Check([]byte(tt.body), 32)
		if tt.problem == 0 {
			require.NoError(t, err, "%q", tt.body)
			continue
		}
		var e *Error
		require.ErrorAs(t, err, &e, "%q", tt.body)
		require.Equal(t, Error{Problem: tt.problem, Offset: tt.offset, Key: tt.key}, *e, "%q", tt.body)
		require.NotEmpty(t, e.Error())
	}
}

// reference is the slow, obviously right check: UTF-8 and encoding/json's
// validity, then a token walk for keys and depth.
func reference(body []byte, maxDepth int) bool {
	if !utf8.Valid(body) || !json.Valid(body) || !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var walk func(depth int) bool
	walk = func(depth int) bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return true
		}
		if depth > maxDepth {
			return false
		}
		seen := map[string]bool{}
		for dec.More() {
			if d == '{' {
				k, _ := dec.Token()
				if seen[k.(string)] {
					return false
				}
				seen[k.(string)] = true
			}
			if !walk(depth + 1) {
				return false
			}
		}
		_, err = dec.Token()
		return err == nil
	}
	if !walk(1) {
		return false
	}
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":null}],"c":"\u00e9"}`, `{"a":1,"a":2}`, `{"a":-0.1e5}`,
		`[1]`, `{"a":"\"}`, `{"x":[[[[[[]]]]]]}`, "{\"\\u0061\":1,\"a\":2}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const depth = 5
		err := Check(body, depth)
		want := reference(body, depth)
		if want != (err == nil) {
			t.Fatalf("Check(%q) = %v; the reference accepts: %v", body, err, want)
		}
	})
}

func benchBody() []byte {
	var sb strings.Builder
	sb.WriteString(`{"events":[`)
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"type":"impression","token":"` + strings.Repeat("AbCd", 40) + `","occurred_at":"2026-11-27T12:00:00Z"}`)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// BenchmarkCheck compares Check with the token walk it replaced
// (encoding/json's Decoder.Token) on a batch of 100 events.
func BenchmarkCheck(b *testing.B) {
	body := benchBody()
	b.Run("jsonshape", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if err := Check(body, 32); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("token-walk", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if !reference(body, 32) {
				b.Fatal("refused")
			}
		}
	})
}
