package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/testenv"
	redisstore "github.com/adshare/adshare/store/redis"
	"github.com/adshare/adshare/transport/realtime"
	"github.com/adshare/adshare/transport/realtime/realtimetest"
)

func TestBrokerContract(t *testing.T) {
	t.Parallel()
	realtimetest.Exercise(t, realtimetest.Harness{
		HistorySize: 20,
		New: func(tb testing.TB) (realtime.Broker, realtime.Broker) {
			url, prefix := testenv.Redis(tb)
			open := func() *redisstore.Broker {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := redisstore.Open(ctx, url, &redisstore.Config{Prefix: prefix})
				require.NoError(tb, err)
				tb.Cleanup(func() { _ = c.Stop(context.Background()) })
				return c.Broker(&redisstore.BrokerOptions{HistorySize: 20})
			}
			return open(), open()
		},
	})
}
