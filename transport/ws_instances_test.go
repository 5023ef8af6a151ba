package transport

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/testenv"
	redisstore "github.com/adshare/adshare/store/redis"
	"github.com/adshare/adshare/transport/realtime"
)

// privateRedis runs a redis-server of the test's own on a loopback port,
// without persistence, so that the test may restart it (losing everything)
// without disturbing other tests. restart stops it and starts it again on
// the same port.
func privateRedis(t *testing.T) (url string, restart func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not on PATH")
		}
		t.Skip("redis-server is not on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	url = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	var cmd *exec.Cmd
	start := func() {
		cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		require.NoError(t, cmd.Start())
		rdb := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
		defer rdb.Close()
		require.Eventually(t, func() bool { return rdb.Ping(context.Background()).Err() == nil }, 10*time.Second, 20*time.Millisecond)
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	start()
	t.Cleanup(stop)
	return url, func() { stop(); start() }
}

// instance is one server of a fleet: its own Redis client, broker, hub and
// API, sharing the user system with the others.
type instance struct {
	broker realtime.Broker
	hub    *realtime.Hub
	pub    *realtime.Publisher
	srv    *httptest.Server
}

func newInstance(t *testing.T, b *authBundle, url string) *instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := redisstore.Open(ctx, url, &redisstore.Config{Prefix: "ws-test:"})
	require.NoError(t, err)
	return newInstanceOn(t, b, rc)
}

// newInstanceOn is an instance on rc, stopped when t ends.
func newInstanceOn(t *testing.T, b *authBundle, rc *redisstore.Client) *instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })
	broker := rc.Broker(&redisstore.BrokerOptions{Subscription: &redisstore.SubscriptionOptions{
		HealthCheckInterval: 200 * time.Millisecond, RetryBackoff: 50 * time.Millisecond}})
	hub, err := realtime.NewHub(realtime.HubConfig{Broker: broker, Auth: b.svc})
	require.NoError(t, err)
	require.NoError(t, hub.Start(ctx))
	t.Cleanup(func() { _ = hub.Stop(context.Background()) })
	h, err := New(Config{Auth: b.svc, Realtime: hub})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &instance{broker: broker, hub: hub, pub: realtime.NewPublisher(broker, nil), srv: srv}
}

func (in *instance) dial(t *testing.T, token string) *wsClient {
	t.Helper()
	b := &authBundle{srv: in.srv}
	return b.dialAs(t, token)
}

func TestWSAcrossInstances(t *testing.T) {
	t.Parallel()
	url, restart := privateRedis(t)
	notifier := &realtime.RevocationNotifier{}
	b := newAuthBundle(t, backendMemory, bundleOpts{authConfig: func(c *auth.Config) {
		notifier.RevocationList = c.Revocations
		c.Revocations = notifier
	}})
	a, z := newInstance(t, b, url), newInstance(t, b, url)
	notifier.Broker = a.broker
	ctx := context.Background()
	tok := b.register(t, "fleet@example.com")
	topic := realtime.UserTopic(tok.User.ID)

	onZ := z.dial(t, tok.AccessToken)
	start := onZ.subscribe(topic, nil)

	t.Run("AnEventOnOneInstanceReachesAClientOnAnother", func(t *testing.T) {
		a.pub.Alert(ctx, tok.User.ID, "test", "from a")
		env := onZ.expect(realtime.TypeSystemAlert)
		require.Equal(t, start.Position.Seq+1, env.Seq)
		require.Equal(t, "from a", payloadOf[realtime.AlertPayload](t, env).Message)
	})
	var last realtime.Position
	t.Run("ResumeOnAnotherInstance", func(t *testing.T) {
		onA := a.dial(t, tok.AccessToken)
		first := onA.subscribe(topic, nil)
		require.NoError(t, onA.c.CloseNow())
		z.pub.Alert(ctx, tok.User.ID, "test", "missed 1")
		z.pub.Alert(ctx, tok.User.ID, "test", "missed 2")
		onZ.expect(realtime.TypeSystemAlert)
		onZ.expect(realtime.TypeSystemAlert)

		back := z.dial(t, tok.AccessToken)
		got := back.subscribe(topic, &first.Position)
		require.True(t, got.Recovered)
		require.Equal(t, 2, got.Replayed)
		require.Equal(t, "missed 1", payloadOf[realtime.AlertPayload](t, back.expect(realtime.TypeSystemAlert)).Message)
		env := back.expect(realtime.TypeSystemAlert)
		require.Equal(t, "missed 2", payloadOf[realtime.AlertPayload](t, env).Message)
		last = realtime.Position{Seq: env.Seq, Epoch: env.Epoch}
	})
	t.Run("RedisRestartEndsInAReload", func(t *testing.T) {
		restart() // every key and every connection is lost
		reason := payloadOf[realtime.ReloadPayload](t, onZ.expect(realtime.TypeReload)).Reason
		require.Contains(t, []string{"too_old", "epoch_changed"}, reason)
		onZ.alive()
		// A client resuming with the old epoch is told to reload too.
		later := a.dial(t, tok.AccessToken)
		got := later.subscribe(topic, &last)
		require.False(t, got.Recovered)
		require.NotEqual(t, last.Epoch, got.Position.Epoch)
		require.Equal(t, "epoch_changed", payloadOf[realtime.ReloadPayload](t, later.expect(realtime.TypeReload)).Reason)
		// And events flow again, in the new epoch.
		require.Eventually(t, func() bool {
			return a.pub.Publish(ctx, topic, realtime.TypeSystemAlert, realtime.AlertPayload{Kind: "test", Message: "after"}) == nil
		}, 10*time.Second, 50*time.Millisecond)
		env := later.expect(realtime.TypeSystemAlert)
		require.Equal(t, got.Position.Epoch, env.Epoch)
	})
	t.Run("LogoutOnOneInstanceClosesConnectionsOnAnother", func(t *testing.T) {
		s := b.register(t, "fleet-logout@example.com")
		c := z.dial(t, s.AccessToken)
		b.do(t, http.MethodPost, "/auth/logout", s.AccessToken, nil).requireStatus(t, http.StatusNoContent)
		c.expectClose(realtime.CloseSessionRevoked)
	})
}

// TestWSAcrossInstancesOnACluster runs the fleet on a Redis Cluster: an
// event published on one instance reaches a client of another, in
// sequence, and a client that moves resumes what it missed (the topic's
// history and sequence live in one slot; its publications, kept or not,
// come from that slot's node, so they stay in order).
func TestWSAcrossInstancesOnACluster(t *testing.T) {
	t.Parallel()
	r := testenv.RedisOn(t, testenv.RedisCluster)
	b := newAuthBundle(t, backendMemory, bundleOpts{})
	open := func() *instance {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rc, err := redisstore.OpenCluster(ctx, r.Addrs, &redisstore.Config{Prefix: r.Prefix})
		require.NoError(t, err)
		return newInstanceOn(t, b, rc)
	}
	a, z := open(), open()
	ctx := context.Background()
	tok := b.register(t, "cluster-fleet@example.com")
	topic := realtime.UserTopic(tok.User.ID)

	onZ := z.dial(t, tok.AccessToken)
	start := onZ.subscribe(topic, nil)
	for i := 1; i <= 3; i++ {
		a.pub.Alert(ctx, tok.User.ID, "test", fmt.Sprintf("from a %d", i))
	}
	for i := 1; i <= 3; i++ {
		env := onZ.expect(realtime.TypeSystemAlert)
		require.Equal(t, start.Position.Seq+uint64(i), env.Seq)
		require.Equal(t, fmt.Sprintf("from a %d", i), payloadOf[realtime.AlertPayload](t, env).Message)
	}

	onA := a.dial(t, tok.AccessToken)
	first := onA.subscribe(topic, nil)
	require.NoError(t, onA.c.CloseNow())
	z.pub.Alert(ctx, tok.User.ID, "test", "missed 1")
	z.pub.Alert(ctx, tok.User.ID, "test", "missed 2")
	onZ.expect(realtime.TypeSystemAlert)
	onZ.expect(realtime.TypeSystemAlert)
	back := z.dial(t, tok.AccessToken)
	got := back.subscribe(topic, &first.Position)
	require.True(t, got.Recovered)
	require.Equal(t, 2, got.Replayed)
	require.Equal(t, "missed 1", payloadOf[realtime.AlertPayload](t, back.expect(realtime.TypeSystemAlert)).Message)
	require.Equal(t, "missed 2", payloadOf[realtime.AlertPayload](t, back.expect(realtime.TypeSystemAlert)).Message)
}
