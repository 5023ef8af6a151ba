package adspace

import "context"

// Broadcaster carries messages to every instance of the service, so that
// each can drop what it cached when another changes it. Implementations:
// store/memory.Bus (one process) and store/redis.Bus (Redis pub/sub).
type Broadcaster interface {
	// Publish sends message to every subscriber of channel, on every
	// instance, the sender's included.
	Publish(ctx context.Context, channel, message string) error

	// Subscribe calls handle for each message on channel until stop is
	// called. handle("") means messages may have been missed (the
	// connection was lost and is back): drop everything cached. handle runs
	// on one goroutine per subscription and must not block for long.
	Subscribe(ctx context.Context, channel string, handle func(message string)) (stop func(), err error)
}

// ChangeNotifier is told of the changes clients watch live: a space's
// settings, and content moving between states (approved, rejected,
// paused, …). transport/realtime.Publisher implements it. Calls come after
// the change is stored and must not block for long; a notifier logs its own
// failures.
type ChangeNotifier interface {
	SettingsChanged(ctx context.Context, sp Space)
	ContentChanged(ctx context.Context, c Content)
}
