// Package realtimetest is the contract every realtime.Broker passes, run
// against store/memory and store/redis.
package realtimetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/transport/realtime"
)

// Harness builds brokers for the suite.
type Harness struct {
	// New returns two brokers on one backend, as two instances would hold
	// (for an in-process broker, the same one twice).
	New func(tb testing.TB) (a, b realtime.Broker)
	// HistorySize is how many publications a topic keeps, as configured by
	// New; the suite publishes past it.
	HistorySize int
}

// collector gathers what a subscription delivers.
type collector struct {
	mu   sync.Mutex
	pubs []realtime.Publication
}

func (c *collector) handle(p realtime.Publication) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pubs = append(c.pubs, p)
}

func (c *collector) topic(t string) []realtime.Publication {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []realtime.Publication
	for _, p := range c.pubs {
		if p.Topic == t {
			out = append(out, p)
		}
	}
	return out
}

func subscribe(t *testing.T, b realtime.Broker) *collector {
	t.Helper()
	c := &collector{}
	stop, err := b.Subscribe(context.Background(), c.handle)
	require.NoError(t, err)
	t.Cleanup(stop)
	return c
}

func topicName() string { return "space:" + uuid.NewString() }

// Exercise runs the contract.
func Exercise(t *testing.T, h Harness) {
	ctx := context.Background()

	t.Run("SequencesAreConsecutiveInOneEpoch", func(t *testing.T) {
		t.Parallel()
		a, b := h.New(t)
		topic := topicName()
		start, err := b.Position(ctx, topic)
		require.NoError(t, err)
		require.Zero(t, start.Seq)
		require.NotEmpty(t, start.Epoch)
		for i := 1; i <= 3; i++ {
			pos, err := a.Publish(ctx, topic, []byte(fmt.Sprintf(`{"n":%d}`, i)), realtime.PublishOptions{History: true})
			require.NoError(t, err)
			require.Equal(t, realtime.Position{Seq: uint64(i), Epoch: start.Epoch}, pos)
		}
		pos, err := b.Position(ctx, topic)
		require.NoError(t, err)
		require.Equal(t, realtime.Position{Seq: 3, Epoch: start.Epoch}, pos)
	})

	t.Run("SubscribersOnEveryInstanceGetPublicationsInOrder", func(t *testing.T) {
		t.Parallel()
		a, b := h.New(t)
		onA, onB := subscribe(t, a), subscribe(t, b)
		topic := topicName()
		for i := 1; i <= 5; i++ {
			_, err := a.Publish(ctx, topic, []byte(fmt.Sprintf(`{"n":%d}`, i)), realtime.PublishOptions{History: i%2 == 1})
			require.NoError(t, err)
		}
		for _, c := range []*collector{onA, onB} {
			require.Eventually(t, func() bool { return len(c.topic(topic)) == 5 }, 5*time.Second, 5*time.Millisecond)
			got := c.topic(topic)
			for i, p := range got {
				require.Equal(t, fmt.Sprintf(`{"n":%d}`, i+1), string(p.Data))
			}
			require.Equal(t, []uint64{1, 0, 2, 0, 3}, []uint64{got[0].Seq, got[1].Seq, got[2].Seq, got[3].Seq, got[4].Seq})
			require.NotEmpty(t, got[0].Epoch)
		}
	})

	t.Run("HistoryReturnsWhatWasMissed", func(t *testing.T) {
		t.Parallel()
		a, b := h.New(t)
		topic := topicName()
		var last realtime.Position
		for i := 1; i <= 5; i++ {
			var err error
			last, err = a.Publish(ctx, topic, []byte(fmt.Sprintf(`{"n":%d}`, i)), realtime.PublishOptions{History: true})
			require.NoError(t, err)
		}
		_, err := a.Publish(ctx, topic, []byte(`{"live":true}`), realtime.PublishOptions{})
		require.NoError(t, err)

		pubs, pos, err := b.History(ctx, topic, realtime.Position{Seq: 2, Epoch: last.Epoch}, 10)
		require.NoError(t, err)
		require.Equal(t, last, pos)
		require.Len(t, pubs, 3, "ephemeral publications are not kept")
		for i, p := range pubs {
			require.Equal(t, uint64(3+i), p.Seq)
			require.Equal(t, topic, p.Topic)
			require.Equal(t, fmt.Sprintf(`{"n":%d}`, 3+i), string(p.Data))
		}

		pubs, _, err = b.History(ctx, topic, last, 10)
		require.NoError(t, err)
		require.Empty(t, pubs, "nothing missed at the head")

		_, _, err = b.History(ctx, topic, realtime.Position{Seq: 2, Epoch: "other"}, 10)
		require.ErrorIs(t, err, realtime.ErrUnrecoverable, "another epoch")
		_, _, err = b.History(ctx, topic, realtime.Position{Seq: 1, Epoch: last.Epoch}, 3)
		require.ErrorIs(t, err, realtime.ErrUnrecoverable, "more missed than the limit")
		_, _, err = b.History(ctx, topic, realtime.Position{Seq: 9, Epoch: last.Epoch}, 10)
		require.ErrorIs(t, err, realtime.ErrUnrecoverable, "a position ahead of the stream")
	})

	t.Run("TrimmedHistoryIsUnrecoverable", func(t *testing.T) {
		t.Parallel()
		a, b := h.New(t)
		topic := topicName()
		var last realtime.Position
		for i := 0; i < h.HistorySize+3; i++ {
			var err error
			last, err = a.Publish(ctx, topic, []byte(`{}`), realtime.PublishOptions{History: true})
			require.NoError(t, err)
		}
		_, _, err := b.History(ctx, topic, realtime.Position{Seq: 1, Epoch: last.Epoch}, h.HistorySize+10)
		require.ErrorIs(t, err, realtime.ErrUnrecoverable)
		pubs, _, err := b.History(ctx, topic, realtime.Position{Seq: last.Seq - 2, Epoch: last.Epoch}, 10)
		require.NoError(t, err)
		require.Len(t, pubs, 2)
	})

	t.Run("StopEndsDelivery", func(t *testing.T) {
		t.Parallel()
		a, _ := h.New(t)
		c := &collector{}
		stop, err := a.Subscribe(ctx, c.handle)
		require.NoError(t, err)
		stop()
		stop() // idempotent
		topic := topicName()
		_, err = a.Publish(ctx, topic, []byte(`{}`), realtime.PublishOptions{})
		require.NoError(t, err)
		time.Sleep(50 * time.Millisecond)
		require.Empty(t, c.topic(topic))
	})

	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		a, _ := h.New(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := a.Publish(cctx, topicName(), []byte(`{}`), realtime.PublishOptions{History: true})
		require.True(t, errors.Is(err, context.Canceled), "got %v", err)
	})
}
