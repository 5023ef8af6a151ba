package realtime

import (
	"context"
	"errors"
)

// ErrUnrecoverable is returned by Broker.History when the events after a
// position cannot all be returned: the epoch changed (the history was lost)
// or the oldest of them was trimmed. The client must reload.
var ErrUnrecoverable = errors.New("realtime: events after this position are no longer available")

// Publication is one event as the broker carries it: the topic, the
// encoded envelope (without topic, sequence and epoch, which the hub adds)
// and, for events kept in history, the sequence and epoch assigned.
type Publication struct {
	Topic string
	Seq   uint64 // 0: not kept in history
	Epoch string
	Data  []byte
}

// PublishOptions says how a publication is kept.
type PublishOptions struct {
	// History keeps the publication in the topic's bounded history, with
	// the next sequence. Without it, the publication is delivered live only.
	History bool
}

// Broker carries publications to every instance and keeps each topic's
// recent history. Implementations: store/memory.Broker (one process) and
// store/redis.Broker (Redis pub/sub and streams). realtimetest.Exercise is
// the contract every implementation passes.
type Broker interface {
	// Publish delivers data on topic to every subscriber on every instance,
	// the publisher's included, and returns the publication's position (a
	// zero Seq when not kept in history). Sequences of a topic are
	// consecutive from 1 within an epoch. It returns an error when the
	// broker does not answer; the publication may then be lost.
	Publish(ctx context.Context, topic string, data []byte, opts PublishOptions) (Position, error)

	// Subscribe calls handle for every publication of every topic until
	// stop is called, in the order of each topic's sequence. A publication
	// with an empty Topic means publications may have been missed (the
	// connection to the broker was lost and is back): the subscriber
	// checks its topics' histories. handle runs on one goroutine and must
	// not block. Subscribe returns once publications after it are sure to
	// be delivered, or an error.
	Subscribe(ctx context.Context, handle func(Publication)) (stop func(), err error)

	// History returns the publications of topic after since, oldest first,
	// at most limit of them, and the topic's current position. It returns
	// ErrUnrecoverable when since's epoch is not the topic's, when events
	// after since were trimmed, or when more than limit were missed.
	History(ctx context.Context, topic string, since Position, limit int) ([]Publication, Position, error)

	// Position returns the topic's current position, creating its epoch
	// when the topic has none yet.
	Position(ctx context.Context, topic string) (Position, error)
}
