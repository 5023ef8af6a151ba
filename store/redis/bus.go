package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/adshare/adshare/adspace"
)

// Bus is publish/subscribe over Redis, shared by every instance: the
// fleet-wide adspace.Broadcaster. Channels live under the client's prefix
// followed by "bus:".
//
// Each subscription has its own connection, kept as SubscriptionOptions
// say: a connection that fails, or stays quiet and does not answer a ping,
// is replaced by a new subscription, and after every re-subscription the
// handler is told that messages may have been missed (handle("")).
type Bus struct {
	rdb    goredis.UniversalClient
	prefix string
	opts   SubscriptionOptions
}

var _ adspace.Broadcaster = (*Bus)(nil)

// Bus returns a bus on this client. A nil opts means every default.
func (c *Client) Bus(opts *SubscriptionOptions) *Bus {
	return &Bus{rdb: c.rdb, prefix: c.prefix + "bus:", opts: opts.withDefaults()}
}

// Publish implements adspace.Broadcaster. It returns an error when Redis
// does not answer.
func (b *Bus) Publish(ctx context.Context, channel, message string) error {
	if err := b.rdb.Publish(ctx, b.prefix+channel, message).Err(); err != nil {
		return fmt.Errorf("redis: publish: %w", err)
	}
	return nil
}

// Subscribe implements adspace.Broadcaster. It returns once Redis has
// confirmed the subscription, so a message published after Subscribe
// returns is delivered; it returns an error when Redis does not confirm
// within ctx. handle runs on the subscription's goroutine, in the order of
// the messages, and is called with "" after every re-subscription that
// follows a loss. stop ends the subscription and waits for handle to
// return; it must not be called from handle.
func (b *Bus) Subscribe(ctx context.Context, channel string, handle func(message string)) (stop func(), err error) {
	sub := newSubscription(b.rdb, "redis bus", &b.opts, b.prefix+channel)
	subscribed := false
	sub.onSubscribed = func(context.Context) error {
		if subscribed { // re-subscribed after a loss: messages may have been missed
			handle("")
		}
		subscribed = true
		return nil
	}
	sub.onMessage = func(_, payload string) { handle(payload) }
	if err := sub.start(ctx); err != nil {
		return nil, fmt.Errorf("redis: subscribe: %w", err)
	}
	return func() { _ = sub.stop(context.Background()) }, nil
}
