package redis

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/testenv"
)

func TestSharedStartsTheRevocationListAndStopsTheClient(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testSharedStartsTheRevocationListAndStopsTheClient)
}

func testSharedStartsTheRevocationListAndStopsTheClient(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	c := openTarget(t, target, "")
	s := c.Shared(nil)
	require.Equal(t, "redis", s.Name())
	require.NoError(t, s.Ping(ctx))
	require.Same(t, s.revocations, s.RevocationList(), "one list, made once")
	require.False(t, s.revocations.Healthy(), "nothing subscribed before Start")

	require.NoError(t, s.Start(ctx))
	require.True(t, s.revocations.Healthy())
	require.NoError(t, s.Start(ctx), "a second Start is a no-op")

	require.NoError(t, s.Stop(ctx))
	require.False(t, s.revocations.Healthy())
	require.Error(t, s.Ping(ctx), "Stop closed the client Open made")
	require.NoError(t, s.Stop(ctx), "a second Stop is a no-op")
}

func TestStopLeavesAHostsClientOpen(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, testStopLeavesAHostsClientOpen)
}

func testStopLeavesAHostsClientOpen(t *testing.T, target testenv.RedisTarget) {
	ctx := context.Background()
	owned := openTarget(t, target, "")
	hosts := New(owned.Redis(), nil) // the host's go-redis client, wrapped
	require.NoError(t, hosts.Stop(ctx))
	require.NoError(t, hosts.Ping(ctx), "the host's client stays open")
}

func TestSharedGivesTheBusItsOptionsAndTheLogger(t *testing.T) {
	t.Parallel()
	c := openClient(t)
	logger := slog.New(slog.DiscardHandler)
	s := c.Shared(&SharedOptions{Logger: logger, Bus: SubscriptionOptions{HealthCheckInterval: time.Second}})
	require.Same(t, logger, s.bus.opts.Logger, "the bus logs to Logger")
	require.Equal(t, time.Second, s.bus.opts.HealthCheckInterval)
	require.Equal(t, DefaultRetryBackoff, s.bus.opts.RetryBackoff)

	own := slog.New(slog.DiscardHandler)
	s = c.Shared(&SharedOptions{Logger: logger, Bus: SubscriptionOptions{Logger: own}})
	require.Same(t, own, s.bus.opts.Logger)
}
