package redis_test

import (
	"testing"

	"github.com/adshare/adshare/internal/testenv"
	redisstore "github.com/adshare/adshare/store/redis"
	"github.com/adshare/adshare/transport/realtime"
	"github.com/adshare/adshare/transport/realtime/realtimetest"
)

func TestBrokerContract(t *testing.T) {
	t.Parallel()
	testenv.ForEachRedis(t, func(t *testing.T, target testenv.RedisTarget) {
		realtimetest.Exercise(t, realtimetest.Harness{
			HistorySize: 20,
			New: func(tb testing.TB) (realtime.Broker, realtime.Broker) {
				// Two instances on one prefix; on a cluster, each topic's
				// hash and stream share a slot, and PUBLISH reaches the
				// subscribers on every node.
				r := testenv.RedisOn(tb, target.Name)
				open := func() *redisstore.Broker {
					return openOn(tb, r).Broker(&redisstore.BrokerOptions{HistorySize: 20})
				}
				return open(), open()
			},
		})
	})
}
