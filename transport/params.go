package transport

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/adshare/adshare/internal/errs"
)

// errInvalidQuery is the error for a bad query parameter; its fields are
// named "query/<parameter>".
var errInvalidQuery = errs.New(errs.Invalid, "invalid_query", "a query parameter is not valid")

// pathUUID parses a path wildcard as a UUID in its canonical form.
func pathUUID(r *http.Request, name string) (uuid.UUID, error) {
	raw := r.PathValue(name)
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		return uuid.Nil, errs.New(errs.NotFound, "not_found", "not found")
	}
	return id, nil
}

// query reads typed query parameters, collecting one message per bad one.
type query struct {
	values url.Values // parsed once
	fields errs.Fields
}

func newQuery(r *http.Request) *query { return &query{values: r.URL.Query()} }

func (q *query) raw(name string) (string, bool) {
	vs, ok := q.values[name]
	if !ok {
		return "", false
	}
	if len(vs) != 1 {
		q.fields.Add("query/"+name, "must be given once")
		return "", false
	}
	return vs[0], true
}

// present reports whether the parameter was sent at all.
func (q *query) present(name string) bool {
	_, ok := q.values[name]
	return ok
}

func (q *query) string(name string, maxLen int) string {
	v, _ := q.raw(name)
	if len(v) > maxLen {
		q.fields.Add("query/"+name, "is too long")
		return ""
	}
	if !utf8.ValidString(v) {
		// Decoded from %XX escapes: nothing downstream (PostgreSQL text,
		// JSON answers) can take invalid UTF-8.
		q.fields.Add("query/"+name, "must be valid UTF-8")
		return ""
	}
	return v
}

func (q *query) uuid(name string) uuid.UUID {
	v, ok := q.raw(name)
	if !ok {
		return uuid.Nil
	}
	id, err := uuid.Parse(v)
	if err != nil || len(v) != 36 {
		q.fields.Add("query/"+name, "must be a UUID")
	}
	return id
}

func (q *query) time(name string) time.Time {
	v, ok := q.raw(name)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		q.fields.Add("query/"+name, "must be an RFC 3339 time such as 2026-11-27T10:00:00Z")
	}
	return t
}

func (q *query) int(name string, lo, hi int64) int64 {
	v, ok := q.raw(name)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		q.fields.Add("query/"+name, "must be an integer from "+strconv.FormatInt(lo, 10)+" to "+strconv.FormatInt(hi, 10))
		return 0
	}
	return n
}

func (q *query) bool(name string) bool {
	v, ok := q.raw(name)
	if !ok {
		return false
	}
	switch strings.ToLower(v) {
	case "true", "1":
		return true
	case "false", "0", "":
		return false
	}
	q.fields.Add("query/"+name, "must be true or false")
	return false
}

func (q *query) err() error { return q.fields.Err(errInvalidQuery) }

// queryBool reads one boolean parameter.
func queryBool(r *http.Request, name string) (bool, error) {
	q := newQuery(r)
	v := q.bool(name)
	return v, q.err()
}
