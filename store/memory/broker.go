package memory

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/adshare/adshare/transport/realtime"
)

// Defaults of BrokerOptions.
const (
	DefaultBrokerHistorySize = 100
	DefaultBrokerHistoryTTL  = 10 * time.Minute
)

// BrokerOptions configures NewBroker; zero fields take the defaults.
type BrokerOptions struct {
	// HistorySize is how many publications each topic keeps. Default 100.
	HistorySize int
	// HistoryTTL drops a topic's history (and so its epoch) when nothing
	// was published on it for this long. Default 10 minutes.
	HistoryTTL time.Duration
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
}

// Broker is an in-process realtime.Broker: the embedded default for a
// single instance. Every subscription delivers on its own goroutine through
// a bounded buffer; a subscriber that falls more than the buffer behind is
// told it may have missed publications (a Publication with no Topic) and
// reads them back from the history. Memory is bounded by HistorySize per
// topic published within HistoryTTL.
type Broker struct {
	opts BrokerOptions

	mu        sync.Mutex
	topics    map[string]*brokerTopic
	subs      map[*brokerSub]struct{}
	nextSweep time.Time
}

type brokerTopic struct {
	epoch   string
	seq     uint64
	history []realtime.Publication // oldest first, at most HistorySize
	touched time.Time
}

type brokerSub struct {
	ch     chan realtime.Publication
	missed chan struct{}
	done   chan struct{}
	exited chan struct{}
	once   sync.Once
}

var _ realtime.Broker = (*Broker)(nil)

// NewBroker returns an empty broker; a nil opts means every default.
func NewBroker(opts *BrokerOptions) *Broker {
	var o BrokerOptions
	if opts != nil {
		o = *opts
	}
	o.HistorySize = cmp.Or(o.HistorySize, DefaultBrokerHistorySize)
	o.HistoryTTL = cmp.Or(o.HistoryTTL, DefaultBrokerHistoryTTL)
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Broker{opts: o, topics: map[string]*brokerTopic{}, subs: map[*brokerSub]struct{}{}}
}

func newEpoch() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// topicLocked returns the topic's state, creating it (with a new epoch).
func (b *Broker) topicLocked(topic string, now time.Time) *brokerTopic {
	if now.After(b.nextSweep) {
		for name, t := range b.topics {
			if now.Sub(t.touched) > b.opts.HistoryTTL {
				delete(b.topics, name)
			}
		}
		b.nextSweep = now.Add(b.opts.HistoryTTL / 4)
	}
	t := b.topics[topic]
	if t == nil || now.Sub(t.touched) > b.opts.HistoryTTL {
		t = &brokerTopic{epoch: newEpoch(), touched: now}
		b.topics[topic] = t
	}
	return t
}

// Publish implements realtime.Broker.
func (b *Broker) Publish(ctx context.Context, topic string, data []byte, opts realtime.PublishOptions) (realtime.Position, error) {
	if err := ctx.Err(); err != nil {
		return realtime.Position{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	p := realtime.Publication{Topic: topic, Data: data}
	if opts.History {
		now := b.opts.Now()
		t := b.topicLocked(topic, now)
		t.seq++
		t.touched = now
		p.Seq, p.Epoch = t.seq, t.epoch
		if len(t.history) >= b.opts.HistorySize {
			t.history = append(t.history[:0:0], t.history[1:]...)
		}
		t.history = append(t.history, p)
	}
	for s := range b.subs {
		select {
		case s.ch <- p:
		default:
			select {
			case s.missed <- struct{}{}:
			default:
			}
		}
	}
	return realtime.Position{Seq: p.Seq, Epoch: p.Epoch}, nil
}

// Subscribe implements realtime.Broker.
func (b *Broker) Subscribe(ctx context.Context, handle func(realtime.Publication)) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &brokerSub{ch: make(chan realtime.Publication, busBuffer), missed: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go func() {
		defer close(s.exited)
		for {
			select {
			case <-s.done:
				return
			case p := <-s.ch:
				handle(p)
			case <-s.missed:
				handle(realtime.Publication{})
			}
		}
	}()
	return func() {
		s.once.Do(func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
			close(s.done)
			<-s.exited
		})
	}, nil
}

// History implements realtime.Broker.
func (b *Broker) History(ctx context.Context, topic string, since realtime.Position, limit int) ([]realtime.Publication, realtime.Position, error) {
	if err := ctx.Err(); err != nil {
		return nil, realtime.Position{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topicLocked(topic, b.opts.Now())
	pos := realtime.Position{Seq: t.seq, Epoch: t.epoch}
	if since.Epoch != t.epoch || since.Seq > t.seq {
		return nil, pos, realtime.ErrUnrecoverable
	}
	missed := t.seq - since.Seq
	if missed == 0 {
		return nil, pos, nil
	}
	if missed > uint64(limit) || missed > uint64(len(t.history)) {
		return nil, pos, realtime.ErrUnrecoverable
	}
	return append([]realtime.Publication(nil), t.history[uint64(len(t.history))-missed:]...), pos, nil
}

// Position implements realtime.Broker.
func (b *Broker) Position(ctx context.Context, topic string) (realtime.Position, error) {
	if err := ctx.Err(); err != nil {
		return realtime.Position{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topicLocked(topic, b.opts.Now())
	return realtime.Position{Seq: t.seq, Epoch: t.epoch}, nil
}
