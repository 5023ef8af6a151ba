package oidc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

// translate turns whatever go-oidc, x/oauth2, net/http or this package
// returned into a domain error. It is the one place where vendor errors
// become auth errors:
//
//   - nil stays nil, and an *errs.Error (already a domain error) passes through;
//   - a timeout, a cancelled call, a network failure, or a provider answering
//     5xx or 429 becomes a copy of auth.ErrProviderUnavailable;
//   - anything else (a refused code or verifier, a token that does not
//     verify, a malformed answer, a wrong issuer at discovery) becomes a copy
//     of auth.ErrOIDCFailed.
//
// The cause is kept for logs, but its text has every secret in secrets
// (client secret, code, verifier, tokens) replaced, because providers echo
// request values in error descriptions (mockoidc answers "Invalid code: …").
func translate(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var domain *errs.Error
	if errors.As(err, &domain) {
		return err
	}
	cause := redact(err, secrets)
	if unavailable(err) {
		return auth.ErrProviderUnavailable.WithCause(cause)
	}
	return auth.ErrOIDCFailed.WithCause(cause)
}

// unavailable reports whether err means the provider could not answer
// properly, so that trying again later may work.
func unavailable(err error) bool {
	var (
		status   *statusError
		retrieve *oauth2.RetrieveError
		netErr   net.Error
		urlErr   *url.Error
	)
	switch {
	case errors.As(err, &status):
		return true
	case errors.As(err, &retrieve):
		// Normally caught as a statusError by the transport; kept for a
		// 5xx that reaches oauth2 some other way.
		return retrieve.Response != nil && retryableStatus(retrieve.Response.StatusCode)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return true
	case errors.As(err, &netErr), errors.As(err, &urlErr):
		// Every transport failure of an http.Client is a *url.Error:
		// refused or reset connections, DNS, TLS, timeouts.
		return true
	}
	return false
}

// retryableStatus reports whether an HTTP status means "the provider is
// unwell or busy" rather than "the provider refused".
func retryableStatus(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests
}

// redactedMark replaces secrets in error text.
const redactedMark = "[REDACTED]"

// minSecretLen is the shortest secret that is redacted; shorter strings
// would mangle the message without hiding anything worth hiding.
const minSecretLen = 4

// redactedError shows err's text with secrets replaced and unwraps to err,
// so errors.Is and errors.As still see the original chain.
type redactedError struct {
	err     error
	secrets []string
}

func redact(err error, secrets []string) error {
	var keep []string
	for _, s := range secrets {
		if len(s) < minSecretLen {
			continue
		}
		keep = append(keep, s)
		if q := url.QueryEscape(s); q != s {
			keep = append(keep, q)
		}
	}
	return &redactedError{err: err, secrets: keep}
}

func (r *redactedError) Error() string {
	msg := r.err.Error()
	for _, s := range r.secrets {
		msg = strings.ReplaceAll(msg, s, redactedMark)
	}
	return msg
}

func (r *redactedError) Unwrap() error { return r.err }

// statusError is what the transport returns instead of a response with a
// 5xx or 429 status, so that the status survives go-oidc, which reports
// other statuses only as text.
type statusError struct {
	StatusCode int
	Status     string
	Endpoint   string // scheme, host and path; never the query
}

func (e *statusError) Error() string {
	return fmt.Sprintf("oidc: %s answered %s", e.Endpoint, e.Status)
}

// maxResponseBytes bounds every response body read from the provider
// (discovery documents, key sets and token responses are a few KiB).
const maxResponseBytes = 1 << 20

// statusTransport turns 5xx and 429 answers into *statusError and bounds
// response bodies.
type statusTransport struct {
	base http.RoundTripper
}

func (t *statusTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if retryableStatus(resp.StatusCode) {
		// Drain a little so the connection can be reused; the body may
		// echo request values, so it is not kept.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		endpoint := url.URL{Scheme: req.URL.Scheme, Host: req.URL.Host, Path: req.URL.Path}
		return nil, &statusError{StatusCode: resp.StatusCode, Status: resp.Status, Endpoint: endpoint.String()}
	}
	resp.Body = limitedBody{Reader: io.LimitReader(resp.Body, maxResponseBytes), Closer: resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}

// wrapClient returns a shallow copy of c whose transport is wrapped in a
// statusTransport. The caller's client is not modified.
func wrapClient(c *http.Client) *http.Client {
	cp := *c
	base := cp.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp.Transport = &statusTransport{base: base}
	return &cp
}
