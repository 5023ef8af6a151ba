package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/transport/realtime"
)

// wsOpts changes what newWSBundle builds.
type wsOpts struct {
	hub     func(*realtime.HubConfig) // changes the hub's config
	origins []string                  // Config.WebSocketOrigins
	// broker, when set, is the broker (a Redis one for cross-instance
	// tests); nil: a fresh memory broker.
	broker realtime.Broker
}

// wsBundle is the API with the realtime channel on one backend.
type wsBundle struct {
	*authBundle
	broker realtime.Broker
	hub    *realtime.Hub
	pub    *realtime.Publisher
}

func newWSBundle(t *testing.T, backend string, opts wsOpts) *wsBundle {
	t.Helper()
	w := &wsBundle{broker: opts.broker}
	if w.broker == nil {
		w.broker = memory.NewBroker(nil)
	}
	w.pub = realtime.NewPublisher(w.broker, nil)
	w.authBundle = newAuthBundle(t, backend, bundleOpts{
		authConfig: func(c *auth.Config) {
			c.Revocations = &realtime.RevocationNotifier{RevocationList: c.Revocations, Broker: w.broker}
		},
		configure: func(t *testing.T, b *authBundle, cfg *Config) {
			hc := realtime.HubConfig{Broker: w.broker, Auth: b.svc, Revocations: nil}
			if opts.hub != nil {
				opts.hub(&hc)
			}
			hub, err := realtime.NewHub(hc)
			require.NoError(t, err)
			require.NoError(t, hub.Start(context.Background()))
			t.Cleanup(func() { _ = hub.Stop(context.Background()) })
			w.hub = hub
			cfg.Realtime = hub
			cfg.Announcer, err = realtime.NewAnnouncer(w.pub, b.svc, b.audit)
			require.NoError(t, err)
			cfg.WebSocketOrigins = opts.origins
		},
	})
	return w
}

// wsURL is the channel's URL on the bundle's server.
func (b *authBundle) wsURL() string { return "ws" + strings.TrimPrefix(b.srv.URL, "http") + "/ws" }

// wsClient is a test client of the channel.
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

// dialWS connects with header (nil: none) and fails the test on error.
func (b *authBundle) dialWS(t *testing.T, header http.Header) *wsClient {
	t.Helper()
	c, resp, err := b.tryDialWS(t, "", header)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	return c
}

func (b *authBundle) tryDialWS(t *testing.T, query string, header http.Header) (*wsClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, b.wsURL()+query, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &wsClient{t: t, c: c}, resp, nil
}

// dialAs connects with the access token in the Authorization header and
// reads the welcome.
func (b *authBundle) dialAs(t *testing.T, token string) *wsClient {
	t.Helper()
	c := b.dialWS(t, http.Header{"Authorization": {"Bearer " + token}})
	c.expect(realtime.TypeWelcome)
	return c
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// send writes one message built from typ, id and payload.
func (c *wsClient) send(typ, id string, payload any) {
	c.t.Helper()
	env := map[string]any{"v": realtime.ProtocolVersion, "type": typ}
	if id != "" {
		env["id"] = id
	}
	if payload != nil {
		env["payload"] = payload
	}
	b, err := json.Marshal(env)
	require.NoError(c.t, err)
	c.raw(websocket.MessageText, b)
}

func (c *wsClient) raw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(c.t, c.c.Write(ctx, typ, b))
}

// read returns the next message, failing after 5 s.
func (c *wsClient) read() realtime.Envelope {
	c.t.Helper()
	env, err := c.tryRead(5 * time.Second)
	require.NoError(c.t, err)
	return env
}

func (c *wsClient) tryRead(timeout time.Duration) (realtime.Envelope, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := c.c.Read(ctx)
	if err != nil {
		return realtime.Envelope{}, err
	}
	var env realtime.Envelope
	require.NoError(c.t, json.Unmarshal(b, &env))
	require.Equal(c.t, realtime.ProtocolVersion, env.V)
	return env, nil
}

// expect reads the next message and requires its type.
func (c *wsClient) expect(typ string) realtime.Envelope {
	c.t.Helper()
	env := c.read()
	require.Equal(c.t, typ, env.Type, "message: %s", env.Payload)
	return env
}

// expectError reads an error message and requires its code.
func (c *wsClient) expectError(code string) realtime.ErrorPayload {
	c.t.Helper()
	env := c.expect(realtime.TypeError)
	var p realtime.ErrorPayload
	require.NoError(c.t, json.Unmarshal(env.Payload, &p))
	require.Equal(c.t, code, p.Code, p.Message)
	return p
}

// expectClose reads until the connection closes and requires the code.
func (c *wsClient) expectClose(code int) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, err := c.tryRead(10 * time.Second)
		if err != nil {
			require.Equal(c.t, websocket.StatusCode(code), websocket.CloseStatus(err), "closed with %v", err)
			return
		}
	}
	c.t.Fatalf("not closed with %d", code)
}

// subscribe subscribes to topic (from since, when given) and returns the
// confirmation.
func (c *wsClient) subscribe(topic string, since *realtime.Position) realtime.SubscribedPayload {
	c.t.Helper()
	c.send(realtime.TypeSubscribe, "s1", realtime.SubscribePayload{Topics: []realtime.SubscribeTopic{{Topic: topic, Since: since}}})
	env := c.expect(realtime.TypeSubscribed)
	var p realtime.SubscribedPayload
	require.NoError(c.t, json.Unmarshal(env.Payload, &p))
	require.Equal(c.t, topic, p.Topic)
	return p
}

// alive requires the connection to answer a ping.
func (c *wsClient) alive() {
	c.t.Helper()
	c.send(realtime.TypePing, "alive", nil)
	env := c.expect(realtime.TypePong)
	require.Equal(c.t, "alive", env.ID)
}

func payloadOf[T any](t *testing.T, env realtime.Envelope) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(env.Payload, &v))
	return v
}
