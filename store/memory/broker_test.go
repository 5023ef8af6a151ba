package memory_test

import (
	"testing"

	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/transport/realtime"
	"github.com/adshare/adshare/transport/realtime/realtimetest"
)

func TestBrokerContract(t *testing.T) {
	t.Parallel()
	realtimetest.Exercise(t, realtimetest.Harness{
		HistorySize: 20,
		New: func(testing.TB) (realtime.Broker, realtime.Broker) {
			b := memory.NewBroker(&memory.BrokerOptions{HistorySize: 20})
			return b, b
		},
	})
}
