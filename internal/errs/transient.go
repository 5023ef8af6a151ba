package errs

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// ErrDependencyUnavailable is what a caller gets when a store or another
// service the request needs could not be reached (connection refused,
// reset or timed out): nothing was done that the answer does not say, and
// retrying shortly may work.
var ErrDependencyUnavailable = New(Unavailable, "dependency_unavailable",
	"a service this request needs is unavailable; retry shortly").WithRetryAfter(2 * time.Second)

// Transient reports whether err is a failure to reach a dependency over
// the network rather than an answer from it: a refused, reset or broken
// connection, an unexpected end of stream, a timeout (a network one, or
// the request's deadline passing while it waited on a dependency), or an
// error whose SafeToRetry method says nothing was sent.
// Errors the code classified already (an *Error in the chain) are not, nor
// is a cancellation (the client went away).
func Transient(err error) bool {
	if err == nil || As(err) != nil {
		return false
	}
	var netErr net.Error
	var unsent interface{ SafeToRetry() bool }
	switch {
	case errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &netErr):
		return true
	case errors.As(err, &unsent) && unsent.SafeToRetry():
		// A driver's word that nothing reached the dependency (pgx's "conn
		// closed" on a connection that broke under the pool).
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return true
	}
	return false
}

// Classify returns err, or ErrDependencyUnavailable wrapping it when it
// is Transient.
func Classify(err error) error {
	if Transient(err) {
		return ErrDependencyUnavailable.WithCause(err)
	}
	return err
}
