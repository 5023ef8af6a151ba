package adshare

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"
)

// stopTimeout bounds the stop of every part when the App's Start fails and
// undoes what it started.
const stopTimeout = 10 * time.Second

// starter and stopper are the lifecycle every adshare component has: a
// component that owns goroutines or connections has Stop, and Start too
// when something must run before it is used. Both are found by type
// assertion, so that a part without them needs nothing.
type (
	starter interface {
		Start(ctx context.Context) error
	}
	stopper interface {
		Stop(ctx context.Context) error
	}
)

// part is one component of the App, named for logs and errors.
type part struct {
	name string
	v    any
}

// lifecycle starts parts in order and stops them in reverse. A value that
// appears twice (the Decider that is also the Pixels) is started and
// stopped once.
type lifecycle struct {
	logger *slog.Logger
	parts  []part

	mu      sync.Mutex
	running bool
	stopped bool
}

func newLifecycle(logger *slog.Logger, parts ...part) *lifecycle {
	l := &lifecycle{logger: logger}
	for _, p := range parts {
		if p.v == nil || l.has(p.v) {
			continue
		}
		l.parts = append(l.parts, p)
	}
	return l
}

func (l *lifecycle) has(v any) bool {
	if !reflect.TypeOf(v).Comparable() {
		return false
	}
	for _, p := range l.parts {
		if reflect.TypeOf(p.v) == reflect.TypeOf(v) && p.v == v {
			return true
		}
	}
	return false
}

func (l *lifecycle) start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.stopped:
		return errors.New("adshare: the App was stopped; build a new one to start again")
	case l.running:
		return nil
	}
	for _, p := range l.parts {
		if s, ok := p.v.(starter); ok {
			if err := s.Start(ctx); err != nil {
				err = fmt.Errorf("adshare: start %s: %w", p.name, err)
				// Stop everything, the parts not started too: they may
				// own connections from their construction.
				l.stopped = true
				stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
				defer cancel()
				if serr := l.stopAll(stopCtx); serr != nil {
					l.logger.ErrorContext(ctx, "adshare: stopping after a failed start", slog.Any("error", serr))
				}
				return err
			}
		}
	}
	l.running = true
	l.logger.DebugContext(ctx, "adshare: started")
	return nil
}

func (l *lifecycle) stop(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return nil
	}
	l.stopped, l.running = true, false
	// A part never started may still own something (a store's
	// connections), so every part is stopped, started or not.
	return l.stopAll(ctx)
}

// stopAll stops every part in reverse order. Each gets ctx; once ctx has
// ended, the rest are still told to stop (their Stop returns at once), so
// that nothing is left running unasked.
func (l *lifecycle) stopAll(ctx context.Context) error {
	var errs []error
	for i := len(l.parts) - 1; i >= 0; i-- {
		p := l.parts[i]
		if s, ok := p.v.(stopper); ok {
			if err := s.Stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("adshare: stop %s: %w", p.name, err))
			}
		}
	}
	return errors.Join(errs...)
}
