package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultHealthCheckInterval is SubscriptionOptions' HealthCheckInterval
// when it is zero.
const DefaultHealthCheckInterval = 3 * time.Second

// DefaultRetryBackoff is SubscriptionOptions' RetryBackoff when it is zero.
const DefaultRetryBackoff = 250 * time.Millisecond

// maxRetryBackoffFactor caps the growing wait between attempts to
// resubscribe, as a multiple of RetryBackoff.
const maxRetryBackoffFactor = 16

// SubscriptionOptions configures how a subscriber to Redis pub/sub
// (Client.Bus, Client.RevocationList) keeps its subscription. A nil pointer
// or a zero field means the documented default.
type SubscriptionOptions struct {
	// Logger receives losses and restorations of the subscription, and
	// messages that could not be understood. Defaults to discarding
	// everything.
	Logger *slog.Logger
	// HealthCheckInterval is how long the subscription may stay quiet
	// before it is pinged; a ping unanswered for another interval reopens
	// it. A connection that dies without being closed is thus noticed
	// within two intervals, during which this instance can miss messages.
	// Defaults to DefaultHealthCheckInterval.
	HealthCheckInterval time.Duration
	// RetryBackoff is the first wait before restoring a broken
	// subscription; it doubles on every failed attempt, up to 16 times
	// this value. Defaults to DefaultRetryBackoff.
	RetryBackoff time.Duration
}

func (o *SubscriptionOptions) withDefaults() SubscriptionOptions {
	var r SubscriptionOptions
	if o != nil {
		r = *o
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if r.HealthCheckInterval <= 0 {
		r.HealthCheckInterval = DefaultHealthCheckInterval
	}
	if r.RetryBackoff <= 0 {
		r.RetryBackoff = DefaultRetryBackoff
	}
	return r
}

// subscription is a subscriber to one or more Redis pub/sub channels that
// stays subscribed, and the one way this package subscribes.
//
// Its goroutine delivers messages in order and watches the connection: a
// line quiet for HealthCheckInterval is pinged, and a ping unanswered for
// another interval means a dead connection that go-redis cannot see. On
// any failure it closes the PubSub and opens a new one (rather than rely on
// go-redis's own reconnection, which a protocol error or a half-open
// connection would not trigger), waiting RetryBackoff before the first
// attempt and twice as long before each next one, up to 16 times
// RetryBackoff.
//
// Every (re)subscription, once Redis has confirmed every channel, runs
// onSubscribed: messages published while the subscription was down are
// lost, and this is where the owner catches up. The subscription is healthy
// from then until the next failure.
//
// Set the hooks before start; start once, stop any number of times.
type subscription struct {
	rdb      goredis.UniversalClient
	name     string   // the owner, first in every log message
	channels []string // distinct
	opts     SubscriptionOptions

	// onSubscribed runs once Redis has confirmed every channel: within
	// start (with start's ctx), then after every restoration on the
	// subscription's goroutine (with a ctx that ends at stop). An error
	// counts as a failure: start fails; a restoration is retried with the
	// backoff. Nil means nothing to catch up.
	onSubscribed func(ctx context.Context) error
	// onMessage receives every message, in order, on the subscription's
	// goroutine; it must not block for long, nor call stop. Nil drops
	// them.
	onMessage func(channel, payload string)

	// healthy is true from a successful onSubscribed to the next failure.
	healthy atomic.Bool

	mu      sync.Mutex // guards the fields below
	state   lifeState
	ps      *goredis.PubSub
	cancel  context.CancelFunc
	stopped chan struct{}
}

// errAlreadyStarted is start's error when the subscription runs already.
var errAlreadyStarted = errors.New("already started")

type lifeState int

const (
	lifeNew lifeState = iota
	lifeRunning
	lifeStopped
)

// newSubscription returns a subscription to channels (duplicates count
// once), not yet started. name starts its log messages.
func newSubscription(rdb goredis.UniversalClient, name string, opts *SubscriptionOptions, channels ...string) *subscription {
	distinct := slices.Clone(channels)
	slices.Sort(distinct)
	return &subscription{rdb: rdb, name: name, channels: slices.Compact(distinct), opts: opts.withDefaults()}
}

// start subscribes, waits for Redis to confirm every channel, runs
// onSubscribed, and then hands the subscription to its goroutine. It
// returns an error, having closed what it opened, when Redis does not
// answer within ctx (or within two health-check intervals), when
// onSubscribed fails, or when the subscription was started or stopped
// before.
func (s *subscription) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case lifeRunning:
		return errAlreadyStarted
	case lifeStopped:
		return errors.New("stopped; create a new one to start again")
	}
	ps, err := s.open(ctx)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.state, s.ps, s.cancel, s.stopped = lifeRunning, ps, cancel, make(chan struct{})
	s.healthy.Store(true)
	go s.run(runCtx, ps, s.stopped)
	return nil
}

// stop ends the subscription and waits, within ctx, for its goroutine to
// end: once it returns nil, no hook runs any more. It is idempotent and
// safe before start; a stopped subscription cannot start again. It returns
// ctx's error, wrapped, when ctx ends first (the goroutine still ends on
// its own).
func (s *subscription) stop(ctx context.Context) error {
	s.mu.Lock()
	if s.state != lifeRunning {
		s.state = lifeStopped
		s.mu.Unlock()
		return nil
	}
	s.state = lifeStopped
	s.healthy.Store(false)
	s.cancel()
	_ = s.ps.Close() // unblocks the goroutine's Receive
	stopped := s.stopped
	s.mu.Unlock()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop: %w", ctx.Err())
	}
}

// open subscribes on a new PubSub, waits for the confirmation of every
// channel and runs onSubscribed. It closes the PubSub when it fails.
func (s *subscription) open(ctx context.Context) (opened *goredis.PubSub, err error) {
	ps := s.rdb.Subscribe(ctx)
	// go-redis does not watch ctx while it waits for a reply: closing the
	// PubSub when ctx ends (at stop, say) is what interrupts the wait.
	unwatch := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		if !unwatch() && err == nil {
			opened, err = nil, fmt.Errorf("subscribe: %w", ctx.Err())
		}
		if err != nil {
			_ = ps.Close()
		}
	}()
	// Unlike UniversalClient.Subscribe, PubSub.Subscribe reports a failure
	// to connect.
	if err := ps.Subscribe(ctx, s.channels...); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	// Redis answers one SUBSCRIBE with every confirmation in a row: no
	// message comes between them.
	for confirmed := 0; confirmed < len(s.channels); {
		msg, err := ps.ReceiveTimeout(ctx, 2*s.opts.HealthCheckInterval)
		if err != nil {
			return nil, fmt.Errorf("await subscription: %w", err)
		}
		if m, ok := msg.(*goredis.Subscription); ok && m.Kind == "subscribe" {
			confirmed++
		}
	}
	if s.onSubscribed != nil {
		if err := s.onSubscribed(ctx); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// run is the subscription's goroutine: it delivers messages, checks the
// connection's health and restores the subscription when it fails, until
// ctx ends.
func (s *subscription) run(ctx context.Context, ps *goredis.PubSub, stopped chan<- struct{}) {
	defer close(stopped)
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.opts.HealthCheckInterval)
		if ctx.Err() != nil {
			return
		}
		var failed error
		switch {
		case err == nil:
			pinged = false
			failed = s.deliver(msg)
		case isTimeout(err) && !pinged:
			// A quiet line: check that it is alive.
			if failed = ps.Ping(ctx); failed == nil {
				pinged = true
			}
		case isTimeout(err):
			// The ping went unanswered: the connection is dead but not
			// closed, which go-redis cannot see.
			failed = errors.New("health-check ping unanswered")
		default:
			failed = err
		}
		if failed != nil {
			if ctx.Err() != nil { // stopped while pinging
				return
			}
			s.healthy.Store(false)
			s.opts.Logger.WarnContext(ctx, s.name+": subscription lost; restoring it",
				slog.Any("channels", s.channels), slog.String("error", failed.Error()))
			pinged = false
			if ps = s.restore(ctx, ps); ps == nil {
				return
			}
		}
	}
}

// deliver hands one message to onMessage. A confirmation of a new
// subscription means go-redis resubscribed on its own, after a loss in
// which messages may have been missed: it returns an error, so that the
// subscription is restored (and onSubscribed runs) like after any failure.
func (s *subscription) deliver(msg any) error {
	switch m := msg.(type) {
	case *goredis.Message:
		if s.onMessage != nil {
			s.onMessage(m.Channel, m.Payload)
		}
	case *goredis.Subscription:
		if m.Kind == "subscribe" {
			return errors.New("resubscribed by go-redis")
		}
	}
	return nil
}

// restore closes ps and opens a new subscription, retrying with a growing
// backoff until it succeeds; it returns nil when ctx ends first.
func (s *subscription) restore(ctx context.Context, ps *goredis.PubSub) *goredis.PubSub {
	_ = ps.Close()
	wait := s.opts.RetryBackoff
	for {
		if !sleep(ctx, wait) {
			return nil
		}
		wait = min(2*wait, maxRetryBackoffFactor*s.opts.RetryBackoff)
		ps, err := s.open(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.opts.Logger.WarnContext(ctx, s.name+": restoring the subscription failed; retrying",
				slog.Any("channels", s.channels), slog.String("error", err.Error()), slog.Duration("retry_in", wait))
			continue
		}
		s.mu.Lock()
		if s.state != lifeRunning {
			s.mu.Unlock()
			_ = ps.Close()
			return nil
		}
		s.ps = ps
		s.healthy.Store(true)
		s.mu.Unlock()
		s.opts.Logger.InfoContext(ctx, s.name+": subscription restored", slog.Any("channels", s.channels))
		return ps
	}
}

// sleep waits d; it returns false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
