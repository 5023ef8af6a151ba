package errs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/errs"
)

func TestTransient(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, refused := net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, refused)

	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"a refused dial, wrapped as drivers do", fmt.Errorf("failed to connect to `host=x`: %w", refused), true},
		{"a reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"a broken stream", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), true},
		{"a closed connection", net.ErrClosed, true},
		{"nil", nil, false},
		{"a plain error", errors.New("duplicate key"), false},
		{"a dependency too slow for the request's deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), true},
		{"a client that went away", context.Canceled, false},
		{"an error the code classified", errs.New(errs.NotFound, "x", "x").WithCause(refused), false},
		{"a driver's error sent nowhere", fmt.Errorf("begin: %w", unsentError{safe: true}), true},
		{"a driver's error that may have been sent", unsentError{safe: false}, false},
		{"a cancellation the driver calls unsent", unsentError{safe: true, cause: context.Canceled}, false},
	} {
		require.Equal(t, tt.want, errs.Transient(tt.err), tt.name)
	}

	got := errs.Classify(fmt.Errorf("query: %w", syscall.ECONNRESET))
	e := errs.As(got)
	require.NotNil(t, e)
	require.Equal(t, errs.Unavailable, e.Kind)
	require.Equal(t, "dependency_unavailable", e.Code)
	require.Positive(t, e.RetryAfter)
	require.ErrorIs(t, got, syscall.ECONNRESET, "the cause stays for the logs")
	plain := errors.New("other")
	require.Same(t, plain, errs.Classify(plain))
}

// unsentError is a driver error that says whether it reached the server
// (pgconn's SafeToRetry).
type unsentError struct {
	safe  bool
	cause error
}

func (e unsentError) Error() string     { return "conn closed" }
func (e unsentError) SafeToRetry() bool { return e.safe }
func (e unsentError) Unwrap() error     { return e.cause }
