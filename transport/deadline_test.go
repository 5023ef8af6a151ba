package transport

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type deadlineTestKey struct{}

// TestRequestDeadlineUnarmed: a context nothing waits on still has its
// deadline: Deadline reports it, Err turns to DeadlineExceeded once it
// passed (and Done is closed then, as is Cause's answer), and the values
// of the request's context come through.
func TestRequestDeadlineUnarmed(t *testing.T) {
	t.Parallel()
	parent := context.WithValue(context.Background(), deadlineTestKey{}, "v")
	ctx, release := withRequestDeadline(parent, 30*time.Millisecond)
	defer release()
	d, ok := ctx.Deadline()
	require.True(t, ok)
	require.WithinDuration(t, time.Now().Add(30*time.Millisecond), d, 20*time.Millisecond)
	require.NoError(t, ctx.Err())
	require.Equal(t, "v", ctx.Value(deadlineTestKey{}))
	require.Nil(t, ctx.armed.Load(), "nothing waited: no timer")

	time.Sleep(40 * time.Millisecond)
	require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
	require.ErrorIs(t, context.Cause(ctx), context.DeadlineExceeded)
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done is closed once Err reported the deadline")
	}
	require.Equal(t, "v", ctx.Value(deadlineTestKey{}), "values come through once armed")
}

// TestRequestDeadlineArmedByDone: Done arms the timer, and closes at the
// deadline.
func TestRequestDeadlineArmedByDone(t *testing.T) {
	t.Parallel()
	ctx, release := withRequestDeadline(context.Background(), 30*time.Millisecond)
	defer release()
	began := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the deadline never came")
	}
	require.GreaterOrEqual(t, time.Since(began), 25*time.Millisecond)
	require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
}

// TestRequestDeadlineChildren: contexts derived from it (WithCancel,
// WithTimeout, AfterFunc) end at its deadline and at its release, and
// joining them costs no goroutine each, as with any standard context.
func TestRequestDeadlineChildren(t *testing.T) {
	ctx, release := withRequestDeadline(context.Background(), 50*time.Millisecond)
	defer release()
	before := runtime.NumGoroutine()
	children := make([]context.Context, 200)
	for i := range children {
		var cancel context.CancelFunc
		if i%2 == 0 {
			children[i], cancel = context.WithCancel(ctx)
		} else {
			children[i], cancel = context.WithTimeout(ctx, time.Hour)
		}
		defer cancel()
	}
	require.Less(t, runtime.NumGoroutine(), before+10, "children join the armed context, not a goroutine each")
	ran := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { close(ran) })
	defer stop()
	for _, c := range children {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a child outlived its parent's deadline")
		}
		require.ErrorIs(t, c.Err(), context.DeadlineExceeded)
	}
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc did not run at the deadline")
	}

	// Release ends the children of another, before its deadline.
	ctx2, release2 := withRequestDeadline(context.Background(), time.Hour)
	child, cancel := context.WithCancel(ctx2)
	defer cancel()
	release2()
	release2() // twice is harmless
	<-child.Done()
	require.ErrorIs(t, child.Err(), context.Canceled)
}

// TestRequestDeadlineParentCanceled: the request's own end (net/http
// cancels its context when the client goes) shows through, armed or not.
func TestRequestDeadlineParentCanceled(t *testing.T) {
	t.Parallel()
	for _, armFirst := range []bool{false, true} {
		parent, cancel := context.WithCancel(context.Background())
		ctx, release := withRequestDeadline(parent, time.Hour)
		if armFirst {
			_ = ctx.Done()
		}
		cancel()
		require.ErrorIs(t, ctx.Err(), context.Canceled, "armed first: %v", armFirst)
		<-ctx.Done()
		release()
	}
}

// TestRequestDeadlineAfterRelease: after the request ended, the context
// is canceled whether it was armed or not, as context.WithTimeout's is
// after its cancel, and a late Done arms no timer.
func TestRequestDeadlineAfterRelease(t *testing.T) {
	t.Parallel()
	ctx, release := withRequestDeadline(context.Background(), time.Hour)
	release()
	require.ErrorIs(t, ctx.Err(), context.Canceled)
	<-ctx.Done()
	late, release2 := withRequestDeadline(context.Background(), time.Hour)
	release2()
	select {
	case <-late.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a context waited on after its release is not done")
	}
	require.True(t, errors.Is(late.Err(), context.Canceled))
}

// TestRequestDeadlineConcurrent is for the race detector: waiters, error
// checks and value reads from many goroutines while it arms and ends.
func TestRequestDeadlineConcurrent(t *testing.T) {
	t.Parallel()
	for range 50 {
		parent := context.WithValue(context.Background(), deadlineTestKey{}, "v")
		ctx, release := withRequestDeadline(parent, 5*time.Millisecond)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				switch i % 4 {
				case 0:
					<-ctx.Done()
				case 1:
					for ctx.Err() == nil {
						runtime.Gosched()
					}
				case 2:
					if ctx.Value(deadlineTestKey{}) != "v" {
						t.Error("a value was lost")
					}
				case 3:
					c, cancel := context.WithCancel(ctx)
					<-c.Done()
					cancel()
				}
			})
		}
		wg.Wait()
		release()
		require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
	}
}

// TestRequestTimeout: a handler's context ends at Config.RequestTimeout;
// one that never waits still sees its deadline.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	waited := make(chan error, 1)
	b := setup(t, Config{RequestTimeout: 40 * time.Millisecond},
		route{http.MethodGet, "/test/wait", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			began := time.Now()
			select {
			case <-r.Context().Done():
				if time.Since(began) < 30*time.Millisecond {
					waited <- errors.New("ended early")
					return
				}
				waited <- r.Context().Err()
			case <-time.After(5 * time.Second):
				waited <- errors.New("the deadline never came")
			}
			w.WriteHeader(http.StatusNoContent)
		})},
		route{http.MethodGet, "/test/deadline", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d, ok := r.Context().Deadline()
			if !ok || time.Until(d) > 40*time.Millisecond || time.Until(d) < 20*time.Millisecond {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})})
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodGet, "/test/wait", nil, nil).StatusCode)
	require.ErrorIs(t, <-waited, context.DeadlineExceeded)
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodGet, "/test/deadline", nil, nil).StatusCode)
}
