package transport

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/adshare/adshare/internal/errs"
)

// statusByKind is the one table that maps a domain error's kind to an HTTP
// status. Anything that is not an *errs.Error is Internal: 500, no details.
var statusByKind = map[errs.Kind]int{
	errs.Internal:        http.StatusInternalServerError,
	errs.Invalid:         http.StatusUnprocessableEntity,
	errs.Malformed:       http.StatusBadRequest,
	errs.Gone:            http.StatusGone,
	errs.NotFound:        http.StatusNotFound,
	errs.Conflict:        http.StatusConflict,
	errs.Unauthenticated: http.StatusUnauthorized,
	errs.Forbidden:       http.StatusForbidden,
	errs.RateLimited:     http.StatusTooManyRequests,
	errs.Unavailable:     http.StatusServiceUnavailable,
	errs.TooLarge:        http.StatusRequestEntityTooLarge,
}

// problemTypePrefix starts every problem type URI.
const problemTypePrefix = "urn:adshare:problem:"

// Protocol errors raised by the transport itself.
var (
	errNotFound         = errs.New(errs.NotFound, "route_not_found", "no such endpoint")
	errInternal         = errs.New(errs.Internal, "internal", "an internal error occurred; quote the request id when reporting it")
	errBodyTooLarge     = errs.New(errs.TooLarge, "body_too_large", "the request body is too large")
	errMalformedJSON    = errs.New(errs.Malformed, "malformed_json", "the request body is not valid JSON")
	errInvalidBody      = errs.New(errs.Invalid, "invalid_body", "the request body has invalid fields")
	errUnsupportedMedia = &statusError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
		message: "the request body must be application/json"}
	errMethodNotAllowed = &statusError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
		message: "this endpoint does not support the method"}
	errOriginNotAllowed = &statusError{status: http.StatusForbidden, code: "origin_not_allowed",
		message: "this origin may not call the API from a browser"}
)

// statusError is an HTTP protocol error that has no domain meaning (415,
// 405): it carries its status directly.
type statusError struct {
	status  int
	code    string
	message string
}

func (e *statusError) Error() string { return e.message }

// Problem is an RFC 9457 problem details document, with adshare's
// extensions: a stable code, the request id, and field errors.
type Problem struct {
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail,omitempty"`
	Code      string         `json:"code"`
	RequestID string         `json:"request_id,omitempty"`
	Errors    []FieldProblem `json:"errors,omitempty"`
	// Checks holds per-dependency readiness, only on /readyz answers.
	Checks map[string]string `json:"checks,omitempty"`
}

// FieldProblem says what is wrong with one field of the request.
type FieldProblem struct {
	// Pointer is a JSON pointer, as a URI fragment, into the request body
	// (or names a query parameter as "#/query/name").
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

// problemFor builds the problem document for err. Internal errors reveal
// nothing but the request id.
func problemFor(ctx context.Context, err error) Problem {
	var se *statusError
	if errors.As(err, &se) {
		return Problem{Status: se.status, Code: se.code, Detail: se.message, Title: http.StatusText(se.status),
			Type: problemTypePrefix + se.code, RequestID: RequestIDFromContext(ctx)}
	}
	e := errs.As(err)
	if e == nil {
		e = errInternal
	}
	status, ok := statusByKind[e.Kind]
	if !ok || e.Kind == errs.Internal {
		e, status = errInternal, http.StatusInternalServerError
	}
	p := Problem{
		Type:      problemTypePrefix + e.Code,
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    e.Message,
		Code:      e.Code,
		RequestID: RequestIDFromContext(ctx),
	}
	p.Errors = fieldProblems("#", e.Fields)
	return p
}

// fieldProblems lists fields' messages in field order, each field's
// pointer relative to base (a URI fragment: "#" for the request body).
func fieldProblems(base string, fields map[string]string) []FieldProblem {
	var out []FieldProblem
	for _, field := range slices.Sorted(maps.Keys(fields)) {
		out = append(out, FieldProblem{Pointer: base + "/" + strings.TrimPrefix(field, "/"), Detail: fields[field]})
	}
	return out
}

// writeError answers with the problem document for err and logs what the
// client does not see: the full error of a 5xx at error level.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	// A store or service that could not be reached is a 503 to retry,
	// not an internal error.
	err = errs.Classify(err)
	p := problemFor(r.Context(), err)
	if p.Status >= 500 {
		s.logger.ErrorContext(r.Context(), "transport: request failed",
			slog.String("request_id", p.RequestID), slog.String("route", r.Pattern), slog.Any("error", err))
	}
	if e := errs.As(err); e != nil && e.RetryAfter > 0 && (p.Status == http.StatusTooManyRequests || p.Status == http.StatusServiceUnavailable) {
		secs := int((e.RetryAfter + 999_999_999) / 1_000_000_000)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="adshare"`)
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p Problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(p.Status)
	_ = jsonEncode(w, p)
}
