package kevel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/errs"
)

// Errors of the pixel Firer (compare with errors.Is).
var (
	// ErrPixelRefused: the URL is not a pixel of the configured Kevel host,
	// its options are out of range (eventMultiplier, a query over 1024
	// characters), or it expired.
	ErrPixelRefused = errs.New(errs.Invalid, "kevel_pixel_refused", "the URL is not a Kevel pixel of this network")
	// ErrPixelDuplicate: this process already fired (or is firing) the URL.
	ErrPixelDuplicate = errs.New(errs.Conflict, "kevel_pixel_duplicate", "the pixel was already fired")
	// ErrPixelQueueFull: the queue is full; the pixel was dropped.
	ErrPixelQueueFull = errs.New(errs.Unavailable, "kevel_pixel_queue_full", "too many pixels are waiting; this one was dropped")
	// ErrPixelFailed: a synchronous fire got no usable answer. It is not
	// retried: the request may have reached Kevel.
	ErrPixelFailed = errs.New(errs.Unavailable, "kevel_pixel_failed", "the pixel could not be fired")
	// ErrFirerStopped: Stop was called.
	ErrFirerStopped = errs.New(errs.Unavailable, "kevel_firer_stopped", "the pixel firer is stopped")
)

var (
	errTooLarge    = errors.New("kevel: answer larger than Config.MaxResponseBytes")
	errCircuitOpen = errors.New("kevel: circuit breaker open after repeated failures")
	errThrottled   = errors.New("kevel: client-side rate limit reached")
	errRetryAfter  = errors.New("kevel: waiting out Kevel's Retry-After")
)

// outcome is everything known about one HTTP exchange with Kevel.
type outcome struct {
	// err is a transport, read or decode error.
	err error
	// ctxErr is the call context's error when it ended.
	ctxErr error
	status int
	header http.Header
	// body, for the cause of a non-2xx answer.
	body []byte
	now  time.Time
	// secret is redacted from every cause.
	secret Secret
}

// interpret is the one place where Kevel's failures become domain errors
// (nil for a usable 2xx):
//
//   - the call's context ended, or a network timeout → ErrTimeout;
//   - a malformed or oversized answer, any other transport error → ErrUnavailable;
//   - 429 → ErrRateLimited with RetryAfter from Retry-After (seconds or
//     HTTP date; DefaultRetryAfter when absent; at most MaxRetryAfter);
//   - 400, 413, 422 → ErrInvalidRequest (Kevel's 400s are the request's:
//     no placement, bad count, unknown site...);
//   - 5xx, 401, 403 (a key is missing or wrong), 404 (a wrong BaseURL) and
//     any other status → ErrUnavailable.
//
// The cause (status, the start of the body, the transport error) is kept
// for logs with the API key redacted; clients only ever see the message.
func interpret(o outcome) error {
	switch {
	case o.err == nil && o.ctxErr == nil && o.status >= 200 && o.status < 300:
		return nil
	case o.err != nil && (errors.Is(o.err, errMalformed) || errors.Is(o.err, errTooLarge)):
		return decision.ErrUnavailable.WithCause(redact(o.err, o.secret))
	case o.ctxErr != nil || errors.Is(o.err, context.DeadlineExceeded) || errors.Is(o.err, context.Canceled) || isTimeout(o.err):
		return decision.ErrTimeout.WithCause(redact(cmpErr(o.err, o.ctxErr), o.secret))
	case o.err != nil:
		return decision.ErrUnavailable.WithCause(redact(o.err, o.secret))
	}
	body := string(o.body)
	if o.secret != "" {
		// Before snippet cuts it: a cut key would survive replacement.
		body = strings.ReplaceAll(body, string(o.secret), redacted)
	}
	cause := redact(&statusError{status: o.status, snippet: snippet(body)}, o.secret)
	switch o.status {
	case http.StatusTooManyRequests:
		return decision.ErrRateLimited.WithRetryAfter(retryAfter(o.header, o.now)).WithCause(cause)
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return decision.ErrInvalidRequest.WithCause(cause)
	default:
		return decision.ErrUnavailable.WithCause(cause)
	}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// retryAfter reads a Retry-After header (delta seconds or an HTTP date).
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	d := DefaultRetryAfter
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// statusError is a non-2xx answer.
type statusError struct {
	status  int
	snippet string
}

// Error implements error.
func (e *statusError) Error() string {
	if e.snippet == "" {
		return fmt.Sprintf("kevel answered %d", e.status)
	}
	return fmt.Sprintf("kevel answered %d: %s", e.status, e.snippet)
}

// snippet returns the start of a body as one printable line.
func snippet(s string) string {
	const n = 200
	if len(s) > n {
		s = s[:n]
	}
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.TrimSpace(s))
}

// redact wraps err so that its text never shows secret.
func redact(err error, secret Secret) error {
	if err == nil || secret == "" {
		return err
	}
	return &redactedError{err: err, secret: string(secret)}
}

type redactedError struct {
	err    error
	secret string
}

// Error implements error, with the secret replaced.
func (e *redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.secret, redacted)
}

// Unwrap returns the wrapped error (for errors.Is).
func (e *redactedError) Unwrap() error { return e.err }
