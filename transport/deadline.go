package transport

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineCtx is a request's context with the deadline of
// Config.RequestTimeout, whose timer is armed only when something waits
// on it. context.WithTimeout costs every request a timer, a child entry
// in net/http's context and their removal at the end (a fill from the
// caches never waits on its context: about a twentieth of its CPU); most
// answers come from memory and never call Done. Until then the deadline
// is still there: Deadline reports it, and Err reports it passed.
//
// Once armed (Done was called, or Err found the deadline passed) it is a
// context.WithDeadline of the request's context, and answers every
// method, Value among them, as that one does: a child context
// (context.WithCancel, WithTimeout, AfterFunc) calls Done first, then
// finds the armed context's cancellation through Value, and is joined to
// it as to any other context, with no goroutine.
type deadlineCtx struct {
	context.Context // the request's context, with its values
	deadline        time.Time

	mu    sync.Mutex // held while arming
	armed atomic.Pointer[armedDeadline]
	ended atomic.Bool // release ran: canceled, as WithTimeout's context is after its cancel
}

// armedDeadline is the context a deadlineCtx became, and its cancel.
type armedDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// withRequestDeadline returns parent with a deadline d from now, and the
// release that ends it (the request's end); release is safe to call more
// than once.
func withRequestDeadline(parent context.Context, d time.Duration) (*deadlineCtx, func()) {
	c := &deadlineCtx{Context: parent, deadline: time.Now().Add(d)}
	return c, c.release
}

// Deadline implements context.Context.
func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Done implements context.Context, arming the deadline.
func (c *deadlineCtx) Done() <-chan struct{} { return c.arm().Done() }

// Err implements context.Context: the request's context's error, or
// context.DeadlineExceeded once the deadline passed.
func (c *deadlineCtx) Err() error {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if c.ended.Load() || !time.Now().Before(c.deadline) {
		return c.arm().Err() // done at once, and context.Cause agrees from now on
	}
	return nil
}

// Value implements context.Context.
func (c *deadlineCtx) Value(key any) any {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Value(key)
	}
	return c.Context.Value(key)
}

// String names the context as the standard ones do, for debugging.
func (c *deadlineCtx) String() string { return "transport.requestDeadline" }

func (c *deadlineCtx) arm() context.Context {
	if a := c.armed.Load(); a != nil {
		return a.ctx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		return a.ctx
	}
	var a armedDeadline
	if c.ended.Load() {
		// After the request: canceled, as context.WithTimeout's would be
		// by then, and with no timer left behind.
		var cancel context.CancelFunc
		a.ctx, cancel = context.WithCancel(c.Context)
		cancel()
		a.cancel = cancel
	} else {
		a.ctx, a.cancel = context.WithDeadline(c.Context, c.deadline)
	}
	c.armed.Store(&a)
	return a.ctx
}

// release ends the context: an armed timer is stopped, and any later
// waiter finds it canceled.
func (c *deadlineCtx) release() {
	c.mu.Lock()
	c.ended.Store(true)
	a := c.armed.Load()
	c.mu.Unlock()
	if a != nil {
		a.cancel()
	}
}
