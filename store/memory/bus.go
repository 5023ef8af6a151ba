package memory

import (
	"context"
	"sync"
)

// Bus is an in-process publish/subscribe bus: the embedded default of
// adspace.Broadcaster for a single instance. Each subscription delivers on
// its own goroutine, in order, through a bounded buffer; a subscriber that
// falls more than the buffer behind is told it missed messages (handle(""))
// instead of blocking publishers.
type Bus struct {
	mu   sync.Mutex
	subs map[string]map[*subscription]struct{}
}

type subscription struct {
	ch     chan string
	missed chan struct{}
	done   chan struct{}
	once   sync.Once
}

// busBuffer is each subscription's queue length.
const busBuffer = 1024

// NewBus returns a bus with no subscribers.
func NewBus() *Bus { return &Bus{subs: map[string]map[*subscription]struct{}{}} }

// Publish implements adspace.Broadcaster.
func (b *Bus) Publish(ctx context.Context, channel, message string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[channel] {
		select {
		case s.ch <- message:
		default:
			select {
			case s.missed <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// Subscribe implements adspace.Broadcaster.
func (b *Bus) Subscribe(ctx context.Context, channel string, handle func(message string)) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &subscription{ch: make(chan string, busBuffer), missed: make(chan struct{}, 1), done: make(chan struct{})}
	b.mu.Lock()
	if b.subs[channel] == nil {
		b.subs[channel] = map[*subscription]struct{}{}
	}
	b.subs[channel][s] = struct{}{}
	b.mu.Unlock()
	go func() {
		for {
			select {
			case <-s.done:
				return
			case m := <-s.ch:
				handle(m)
			case <-s.missed:
				handle("")
			}
		}
	}()
	stop := func() {
		s.once.Do(func() {
			b.mu.Lock()
			delete(b.subs[channel], s)
			b.mu.Unlock()
			close(s.done)
		})
	}
	return stop, nil
}
