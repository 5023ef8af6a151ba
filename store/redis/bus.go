package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Bus is publish/subscribe over Redis, shared by every instance: the
// fleet-wide adspace.Broadcaster. Channels live under the client's prefix.
// A subscription that loses its connection is re-established by go-redis;
// after every re-subscription the handler is told that messages may have
// been missed (handle("")).
type Bus struct {
	rdb    goredis.UniversalClient
	prefix string
	logger *slog.Logger
}

// Bus returns a bus on this client. logger may be nil.
func (c *Client) Bus(logger *slog.Logger) *Bus {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Bus{rdb: c.rdb, prefix: c.prefix + "bus:", logger: logger}
}

// Publish implements adspace.Broadcaster.
func (b *Bus) Publish(ctx context.Context, channel, message string) error {
	if err := b.rdb.Publish(ctx, b.prefix+channel, message).Err(); err != nil {
		return fmt.Errorf("redis: publish: %w", err)
	}
	return nil
}

// Subscribe implements adspace.Broadcaster. It returns once Redis has
// confirmed the subscription, so a message published after Subscribe
// returns is delivered.
func (b *Bus) Subscribe(ctx context.Context, channel string, handle func(message string)) (func(), error) {
	ps := b.rdb.Subscribe(ctx, b.prefix+channel)
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		_ = ps.Close()
		return nil, fmt.Errorf("redis: subscribe: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := ps.Receive(context.Background())
			if err != nil {
				if errors.Is(err, goredis.ErrClosed) {
					return
				}
				b.logger.Warn("redis: bus subscription interrupted", slog.String("channel", channel), slog.Any("error", err))
				time.Sleep(100 * time.Millisecond)
				continue
			}
			switch m := msg.(type) {
			case *goredis.Message:
				handle(m.Payload)
			case *goredis.Subscription:
				if m.Kind == "subscribe" {
					handle("") // re-subscribed after a reconnect: we may have missed messages
				}
			}
		}
	}()
	stop := func() {
		_ = ps.Close()
		<-done
	}
	return stop, nil
}
