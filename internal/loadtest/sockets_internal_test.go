package loadtest

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A metrics.live times the oldest impressions sent of its count; an
// impression is expected once per token, and only by a subscribed client.
func TestMetricsLiveTimesTheImpressionsItReports(t *testing.T) {
	t.Parallel()
	s := &Sockets{messages: map[string]int{}, closeCodes: map[string]int{}, latency: newHistogram(), byOwner: map[int][]*socket{}}
	live := &socket{s: s, space: "space:a", live: true}
	away := &socket{s: s, space: "space:a"}
	s.clients = []*socket{live, away}
	s.byOwner[0] = s.clients
	f := &Fleet{Tracking: []string{"t0", "t1", "t2"}, trackOwner: []int{0, 0, 0}, used: make([]atomic.Bool, 3)}
	f.sockets.Store(s)

	f.sent(0)
	f.sent(0) // the same token again: the server takes it once
	time.Sleep(30 * time.Millisecond)
	f.sent(1)
	f.sent(2)
	require.Len(t, live.waiting, 3)
	require.Empty(t, away.waiting, "a client not subscribed is not told")

	live.handle([]byte(`{"v":1,"type":"metrics.live","topic":"space:other","payload":{"impressions":2}}`))
	require.Len(t, live.waiting, 3, "another space's figures time nothing")
	live.handle([]byte(`{"v":1,"type":"metrics.live","topic":"space:a","payload":{"impressions":2,"clicks":1}}`))
	require.Len(t, live.waiting, 1)
	rep := s.Report(0)
	require.Equal(t, 2, rep.Samples)
	require.GreaterOrEqual(t, rep.MetricsLatency.Max, 30.0, "the oldest first")
	require.Equal(t, 1, rep.Unreported)
	require.Equal(t, int64(2), rep.ImpressionsReported)
	live.handle([]byte(`{"v":1,"type":"metrics.live","topic":"space:a","payload":{"impressions":5}}`))
	rep = s.Report(0)
	require.Equal(t, 3, rep.Samples, "more reported than sent times what was sent")
	require.Zero(t, rep.Unreported)
	require.Equal(t, 3, rep.Messages["metrics.live"])
	require.Equal(t, 1, rep.WithoutMetrics, "the client away got none")
}

// With Viewers set, the mix's fills come from that many viewers over and
// over (device id and client address); without it, from a new one each.
func TestViewersReturn(t *testing.T) {
	t.Parallel()
	f := &Fleet{Base: "http://127.0.0.1:1", Owners: []*Member{{ID: "o1"}}, Viewers: 3}
	off := Weights{Fill: 1, Impression: -1, Batch: -1, Click: -1, Settings: -1, Report: -1, Balance: -1, SignIn: -1, Refresh: -1,
		TopUp: -1, Payout: -1}
	seen := func(f *Fleet) (devices, addrs map[string]bool) {
		devices, addrs = map[string]bool{}, map[string]bool{}
		ss := f.Mix(off)
		require.Len(t, ss, 1)
		for n := range uint64(12) {
			r := ss[0].Next(n)
			devices[r.Header.Get("X-Adshare-Device")] = true
			addrs[r.Header.Get("X-Forwarded-For")] = true
		}
		return devices, addrs
	}
	devices, addrs := seen(f)
	require.Len(t, devices, 3)
	require.Len(t, addrs, 3)
	f.Viewers = 0
	devices, addrs = seen(f)
	require.Len(t, devices, 12)
	require.Len(t, addrs, 12)
}
