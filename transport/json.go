package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/internal/jsonshape"
)

// validator is implemented by request bodies that check their own fields
// after decoding. It returns nil or the messages per field.
type validator interface {
	Valid(ctx context.Context) errs.Fields
}

// maxJSONDepth bounds nesting in request bodies; no adshare request needs
// more, and deep nesting is a cheap way to burn a decoder's stack and time.
const maxJSONDepth = 32

// decodeJSON reads the request body as one JSON object into a T, strictly:
//
//   - Content-Type must be application/json or application/merge-patch+json
//     (charset, if given, utf-8): else 415;
//   - the body must fit the limit: else 413;
//   - it must be valid UTF-8, one JSON object, no duplicate keys, no
//     deeper than maxJSONDepth, nothing after it: else 400;
//   - every field must be known and of the declared type: else 422 with the
//     field's pointer;
//   - if T is a validator, its Valid must pass: else 422 with its fields.
func decodeJSON[T any](r *http.Request) (T, error) {
	var v T
	if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
		return v, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return v, errBodyTooLarge.WithMessage(fmt.Sprintf("the request body must be at most %d bytes", tooLarge.Limit))
		}
		return v, errMalformedJSON.WithMessage("the request body could not be read").WithCause(err)
	}
	if err := checkJSONShape(body); err != nil {
		return v, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, decodeError(err, body, reflect.TypeFor[T]())
	}
	if val, ok := any(&v).(validator); ok {
		if fields := val.Valid(r.Context()); len(fields) > 0 {
			return v, errInvalidBody.WithFields(fields)
		}
	}
	return v, nil
}

func checkJSONContentType(ct string) error {
	if ct == "" {
		return errUnsupportedMedia
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && mt != "application/merge-patch+json") {
		return errUnsupportedMedia
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return errUnsupportedMedia
	}
	return nil
}

// checkJSONShape rejects what encoding/json would silently accept: invalid
// UTF-8 (it would substitute U+FFFD), a body that is not an object (null
// decodes into a struct as nothing), duplicate keys (last wins, a parser
// differential attackers use), excessive depth and trailing data.
func checkJSONShape(body []byte) error {
	err := jsonshape.Check(body, maxJSONDepth)
	var e *jsonshape.Error
	if !errors.As(err, &e) {
		return err
	}
	var msg string
	switch e.Problem {
	case jsonshape.InvalidUTF8:
		msg = "the request body must be valid UTF-8"
	case jsonshape.Empty:
		msg = "the request body must not be empty"
	case jsonshape.NotObject:
		msg = "the request body must be a JSON object"
	case jsonshape.Trailing:
		msg = "the request body must hold exactly one JSON value"
	case jsonshape.DuplicateKey:
		msg = fmt.Sprintf("the request body repeats the key %q", e.Key)
	case jsonshape.TooDeep:
		msg = fmt.Sprintf("the request body is nested deeper than %d levels", maxJSONDepth)
	case jsonshape.Truncated:
		msg = "the request body ends before the JSON value does"
	default:
		msg = fmt.Sprintf("the request body is not valid JSON (at byte %d)", e.Offset)
	}
	return errMalformedJSON.WithMessage(msg)
}

// decodeError turns a json.Decoder error on a well-formed body (decoded
// into a t) into a field error.
func decodeError(err error, body []byte, t reflect.Type) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := strings.Join(jsonPath(t, typeErr.Field), "/")
		if field == "" {
			field = "/"
		}
		return errInvalidBody.WithFields(errs.Fields{field: "must be " + jsonTypeName(typeErr.Type.Kind().String())}).WithCause(err)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		// The error names the key but not where it is: find it, so that a
		// nested unknown field gets its full pointer.
		key := strings.Trim(name, `"`)
		if k, err := strconv.Unquote(name); err == nil {
			key = k
		}
		field := unknownFieldPath(body, t)
		if last := field[strings.LastIndex(field, "/")+1:]; field == "" || last != pointerEscaper.Replace(key) {
			field = pointerEscaper.Replace(key)
		}
		return errInvalidBody.WithFields(errs.Fields{field: "is not a known field"}).WithCause(err)
	}
	return errMalformedJSON.WithCause(err)
}

// jsonPath turns the dotted field path of a json.UnmarshalTypeError on a t
// into the body's JSON path: encoding/json names an embedded struct in the
// path ("creativeJSON.title") though its fields sit in the enclosing
// object, so those segments go.
func jsonPath(t reflect.Type, dotted string) []string {
	if dotted == "" {
		return nil
	}
	var path []string
	for _, seg := range strings.Split(dotted, ".") {
		for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			t = t.Elem()
		}
		var next reflect.Type
		embedded := false
		if t != nil && t.Kind() == reflect.Struct {
			for _, f := range reflect.VisibleFields(t) {
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				switch {
				case f.Anonymous && name == "" && f.Name == seg:
					next, embedded = f.Type, true
				case !f.Anonymous && (name == seg || name == "" && f.Name == seg):
					next = f.Type
				}
				if next != nil {
					break
				}
			}
		}
		if !embedded {
			path = append(path, seg)
		}
		t = next
	}
	return path
}

// pointerEscaper escapes one JSON pointer segment (RFC 6901).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// unknownFieldPath returns the path ("a/b", segments escaped) of the first
// object key in body that t has no field for: the key a json.Decoder with
// DisallowUnknownFields refuses, since it decodes in document order. It
// returns "" when there is none.
func unknownFieldPath(body []byte, t reflect.Type) string {
	path, _ := findUnknownField(json.NewDecoder(bytes.NewReader(body)), t)
	return strings.Join(path, "/")
}

// findUnknownField consumes one JSON value from dec, decoded into t (nil
// when anything goes), and returns the path to its first unknown key.
func findUnknownField(dec *json.Decoder, t reflect.Type) ([]string, bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, false
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil, false
	}
	for i := 0; dec.More(); i++ {
		var (
			segment = strconv.Itoa(i)
			elem    reflect.Type
		)
		if delim == '{' {
			keyTok, err := dec.Token()
			if err != nil {
				return nil, false
			}
			key, _ := keyTok.(string)
			segment = pointerEscaper.Replace(key)
			switch {
			case t != nil && t.Kind() == reflect.Struct:
				ft, known := structFieldType(t, key)
				if !known {
					return []string{segment}, true
				}
				elem = ft
			case t != nil && t.Kind() == reflect.Map:
				elem = t.Elem()
			}
		} else if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		if path, found := findUnknownField(dec, elem); found {
			return append([]string{segment}, path...), true
		}
	}
	_, _ = dec.Token() // the closing delimiter
	return nil, false
}

// structFieldType returns the type of the field of struct t that
// encoding/json decodes key into: the exact name, else a case-insensitive
// match, looking into embedded structs.
func structFieldType(t reflect.Type, key string) (reflect.Type, bool) {
	var folded reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if et, ok := structFieldType(ft, key); ok {
					return et, true
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f.Type, true
		}
		if folded == nil && strings.EqualFold(name, key) {
			folded = f.Type
		}
	}
	return folded, folded != nil
}

func jsonTypeName(kind string) string {
	switch {
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "slice" || kind == "array":
		return "an array"
	case kind == "map" || kind == "struct":
		return "an object"
	}
	return "of another type"
}

// jsonEncode writes v as JSON followed by a newline.
func jsonEncode(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// writeJSON answers with status and v as application/json (through v's
// own appendJSON when it is a jsonAppender). It encodes v whole before it
// sends the status, so an answer is all of v or, when v
// cannot be encoded, a 500 problem document: never a status followed by
// a body cut short.
//
// A value the handler built that does not encode is a bug in the
// handler, not a state a client can cause (input is validated first), so
// writeJSON panics with the encoder's error: withRecovery, which wraps
// every route, logs it with its stack and answers the 500. That covers
// every handler in one place, with no error result a caller could drop.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body := answerBuffers.Get().(*bytes.Buffer)
	defer putAnswerBuffer(body)
	if a, ok := v.(jsonAppender); ok {
		b := a.appendJSON(body.AvailableBuffer())
		body.Write(append(b, '\n'))
	} else if err := jsonEncode(body, v); err != nil {
		panic(fmt.Errorf("transport: a %d answer cannot be encoded as JSON: %w", status, err))
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}

// jsonContentType is the Content-Type of JSON answers, shared (its length
// is its capacity: Header.Add copies it, Header.Set replaces it).
var jsonContentType = []string{"application/json; charset=utf-8"}

// answerBuffers hold answers while they are encoded, so that buffering
// costs the hot path (POST /events) no allocation.
var answerBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledAnswer is the largest buffer kept for reuse: one long list must
// not pin its memory in the pool for good.
const maxPooledAnswer = 64 << 10

func putAnswerBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledAnswer {
		return
	}
	b.Reset()
	answerBuffers.Put(b)
}
