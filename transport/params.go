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
	pairs  []queryPair // parsed once, in order
	fields errs.Fields
}

// queryPair is one parameter of a query, unescaped.
type queryPair struct{ name, value string }

// maxQueryParams is the most parameters a query may carry: no route
// reads more than a score, and each lookup reads the list.
const maxQueryParams = 100

// newQuery parses r's query as url.ParseQuery does (pairs split at &,
// names and values unescaped, + as a space), into a list rather than a
// map: the few parameters a request carries cost one allocation, not a
// map and a slice each. Unlike r.URL.Query(), which drops them silently,
// a pair that does not parse (a bad %-escape, a ; separator) and a query
// of more than maxQueryParams parameters are errors.
func newQuery(r *http.Request) *query {
	q := &query{}
	raw := r.URL.RawQuery
	if raw == "" {
		return q
	}
	n := strings.Count(raw, "&") + 1
	if n > maxQueryParams {
		q.fields.Add("query", "has more than "+strconv.Itoa(maxQueryParams)+" parameters")
		return q
	}
	q.pairs = make([]queryPair, 0, n)
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		if strings.Contains(pair, ";") {
			q.fields.Add("query", "separates parameters with ;, not &")
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(name)
		if err != nil {
			q.fields.Add("query", "has a parameter name that is not valid percent-encoding")
			continue
		}
		if value, err = url.QueryUnescape(value); err != nil {
			q.fields.Add("query/"+name, "is not valid percent-encoding")
			continue
		}
		q.pairs = append(q.pairs, queryPair{name, value})
	}
	return q
}

func (q *query) raw(name string) (string, bool) {
	value, found := "", 0
	for i := range q.pairs {
		if q.pairs[i].name == name {
			value, found = q.pairs[i].value, found+1
		}
	}
	switch found {
	case 0:
		return "", false
	case 1:
		return value, true
	}
	q.fields.Add("query/"+name, "must be given once")
	return "", false
}

// present reports whether the parameter was sent at all.
func (q *query) present(name string) bool {
	for i := range q.pairs {
		if q.pairs[i].name == name {
			return true
		}
	}
	return false
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
