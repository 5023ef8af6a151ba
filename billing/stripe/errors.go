package stripe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/secret"
)

// Codes this adapter gives a *billing.ProcessorError when Stripe's answer
// has none (its own codes, such as "card_declined", "balance_insufficient",
// "rate_limit" or "lock_timeout", pass through).
const (
	// CodeTimeout: the call's deadline passed; Stripe may have acted.
	CodeTimeout = "timeout"
	// CodeCanceled: the caller's context was canceled; Stripe may have
	// acted.
	CodeCanceled = "canceled"
	// CodeNetwork: the connection failed or broke; Stripe may have acted.
	CodeNetwork = "network_error"
	// CodeBadResponse: Stripe's answer could not be read; it may have
	// acted.
	CodeBadResponse = "bad_response"
	// CodeIdempotencyKeyReused: the key was used before with other
	// parameters (or on another endpoint). Stripe did nothing this time;
	// the first request's result stands under the key.
	CodeIdempotencyKeyReused = "idempotency_key_reused"
	// CodeServerError: a 5xx without a code.
	CodeServerError = "api_error"
	// CodeRefused: a 4xx without a code.
	CodeRefused = "invalid_request_error"
	// CodeListTooLong: a listing had more than Config.MaxListItems items;
	// nothing is returned (reconcile a shorter window).
	CodeListTooLong = "list_too_long"
	// CodeUnknown: a failure this adapter does not recognize; treated as
	// ambiguous.
	CodeUnknown = "unknown"
)

// processorError is the one place where a failed call becomes a
// *billing.ProcessorError (nil for nil). Definite means Stripe certainly
// did nothing:
//
//   - card_error (402): the payer's card was refused → definite;
//   - idempotency_error: the key was already used with other parameters
//     (Stripe compares the endpoint and the parameters of every request
//     with the key's first one, for 24 hours at least) → definite: nothing
//     was done this time, and the first request's result still stands
//     under the key (read it, do not retry with a new key);
//   - any other 4xx but 409 and 429 (invalid parameters, insufficient
//     platform balance, a missing object, a bad key) → definite;
//   - 409 (idempotency_key_in_use: a request with the same key is still
//     running; or another conflict) and 429 (rate_limit, lock_timeout) →
//     ambiguous: retry with the same key;
//   - 5xx → ambiguous (Stripe stores a 5xx under the key and replays it:
//     after one, look the result up, e.g. TransfersInGroup);
//   - a timeout, a cancellation, a network error, an unreadable answer, or
//     anything unrecognized → ambiguous.
//
// The Message, the cause's text and stripe-go's error itself (the cause
// unwraps to it, for callers that want its fields) are scrubbed of the
// secret key and of anything shaped like a Stripe key or client secret:
// Stripe and stripe-mock echo credentials in some messages.
func processorError(err error, key Secret) *billing.ProcessorError {
	if err == nil {
		return nil
	}
	if pe, ok := errors.AsType[*billing.ProcessorError](err); ok {
		return pe
	}
	cause := &scrubbedError{err: err, key: key}
	if se, ok := errors.AsType[*stripego.Error](err); ok {
		// The error is this call's own: scrub it in place, so that a
		// caller reaching it with errors.As finds no credential either.
		se.Msg = secret.ScrubStripe(se.Msg, key)
		if se.PaymentIntent != nil {
			se.PaymentIntent.ClientSecret = ""
		}
		if se.SetupIntent != nil {
			se.SetupIntent.ClientSecret = ""
		}
		definite, code := classify(se)
		msg := se.Msg
		if se.Type == stripego.ErrorTypeIdempotency {
			msg = "the idempotency key was used before with other parameters: Stripe did nothing now, and the first request's result stands under that key (read it; never retry with a new key): " + msg
		}
		return billing.NewProcessorError(definite, code, msg, se.RequestID, cause)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return billing.NewProcessorError(false, CodeTimeout, "the call to Stripe timed out; it may have been carried out", "", cause)
	case errors.Is(err, context.Canceled):
		return billing.NewProcessorError(false, CodeCanceled, "the call to Stripe was canceled; it may have been carried out", "", cause)
	case isNetwork(err):
		return billing.NewProcessorError(false, CodeNetwork, "the connection to Stripe failed; the call may have been carried out", "", cause)
	case strings.HasPrefix(err.Error(), "Couldn't deserialize JSON"):
		return billing.NewProcessorError(false, CodeBadResponse, "Stripe's answer could not be read; the call may have been carried out", "", cause)
	}
	return billing.NewProcessorError(false, CodeUnknown, "the call to Stripe failed: "+cause.Error(), "", cause)
}

// classify says whether a Stripe error answer is definite, and its code.
func classify(se *stripego.Error) (definite bool, code string) {
	code = string(se.Code)
	status := se.HTTPStatusCode
	switch {
	case se.Type == stripego.ErrorTypeIdempotency:
		return true, CodeIdempotencyKeyReused
	case status == http.StatusConflict || status == http.StatusTooManyRequests:
		return false, cmp.Or(code, string(stripego.ErrorCodeRateLimit))
	case status >= 500:
		return false, cmp.Or(code, CodeServerError)
	case se.Type == stripego.ErrorTypeCard:
		return true, cmp.Or(code, string(stripego.ErrorCodeCardDeclined))
	case status >= 400:
		return true, cmp.Or(code, CodeRefused)
	case se.Type == stripego.ErrorTypeInvalidRequest:
		return true, cmp.Or(code, CodeRefused)
	}
	return false, cmp.Or(code, CodeUnknown)
}

func isTimeout(err error) bool {
	t, ok := errors.AsType[interface {
		error
		Timeout() bool
	}](err)
	return ok && t.Timeout()
}

func isNetwork(err error) bool {
	_, ok := errors.AsType[net.Error](err)
	return ok
}

// scrubbedError shows err's text scrubbed of credentials, and unwraps to
// err.
type scrubbedError struct {
	err error
	key Secret
}

// Error implements error. For stripe-go's errors it is a summary: their own
// text is the whole error as JSON, with any PaymentIntent in it (and so
// its client secret).
func (e *scrubbedError) Error() string {
	if se, ok := errors.AsType[*stripego.Error](e.err); ok {
		return secret.ScrubStripe(fmt.Sprintf("stripe answered %d %s %s: %s", se.HTTPStatusCode, se.Type, se.Code, se.Msg), e.key)
	}
	return secret.ScrubStripe(e.err.Error(), e.key)
}

// Unwrap returns the wrapped error.
func (e *scrubbedError) Unwrap() error { return e.err }
