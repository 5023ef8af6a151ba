package adshare_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision/local"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/transport/realtime"
)

// The App serves /ws on the embedded defaults, and a settings change made
// through the ad space service reaches the owner's connection.
func TestTheAppServesTheRealtimeChannel(t *testing.T) {
	t.Parallel()
	app := newApp(t, &adshare.Config{Store: memory.New(), Shared: memory.NewShared(), Decider: bannerDecider()})
	require.NotNil(t, app.Realtime())
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	u, pair, err := app.Auth().Register(ctx, auth.Registration{Email: "live@example.com", Password: "a long enough passphrase"})
	require.NoError(t, err)
	c, read := watchSpace(t, ctx, srv.URL, pair.AccessToken, u.ID)

	p, err := app.Auth().Authenticate(ctx, pair.AccessToken)
	require.NoError(t, err)
	sp, err := app.AdSpaces().MySpace(ctx, p)
	require.NoError(t, err)
	_, err = app.AdSpaces().UpdateSettings(ctx, p, sp.Settings, sp.Version)
	require.NoError(t, err)
	env := read()
	require.Equal(t, realtime.TypeAdUpdated, env.Type)
	require.Equal(t, realtime.SpaceTopic(u.ID), env.Topic)
	require.Equal(t, uint64(1), env.Seq)
	var upd realtime.AdUpdatedPayload
	require.NoError(t, json.Unmarshal(env.Payload, &upd))
	require.Equal(t, "settings", upd.Kind)

	// A logout closes the connection with the terminal code.
	require.NoError(t, app.Auth().Logout(ctx, p))
	_, _, err = c.Read(ctx)
	require.Equal(t, websocket.StatusCode(realtime.CloseSessionRevoked), websocket.CloseStatus(err))
}

// An impression accepted by POST /events reaches the owner's connection as
// metrics.live, with the owner's estimated earnings, within a second.
func TestAnImpressionReachesTheOwnerLive(t *testing.T) {
	t.Parallel()
	store := memory.New()
	inventory, err := adspace.NewInventory(store)
	require.NoError(t, err)
	engine, err := local.New(local.Config{Inventory: inventory, Stats: store, Frequency: memory.NewFrequencyCounter(time.Hour)})
	require.NoError(t, err)
	cfg := &adshare.Config{Store: store, Shared: memory.NewShared(), Decider: engine, Keys: testKeys(t)}
	cfg.AdSpaces.AllowAnonymous = true
	app, err := adshare.New(cfg)
	require.NoError(t, err)
	owner, _ := seedApprovedAd(t, app, store)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { require.NoError(t, app.Stop(context.Background())) })
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(srv.Close)

	_, pair, err := app.Auth().Login(ctx, "owner@example.com", "a long enough passphrase")
	require.NoError(t, err)
	_, read := watchSpace(t, ctx, srv.URL, pair.AccessToken, owner)

	var token string
	require.Eventually(t, func() bool {
		var ok bool
		token, ok = fillOnce(srv.Client(), srv.URL, owner, "device-live")
		return ok
	}, 10*time.Second, 50*time.Millisecond, "the engine serves the seeded ad")
	posted := time.Now()
	require.Equal(t, http.StatusOK, postImpression(srv.Client(), srv.URL, token), "accepted")
	env := read()
	require.Less(t, time.Since(posted), time.Second)
	require.Equal(t, realtime.TypeMetricsLive, env.Type)
	var m realtime.MetricsPayload
	require.NoError(t, json.Unmarshal(env.Payload, &m))
	require.Equal(t, owner.String(), m.OwnerID)
	require.Equal(t, int64(1), m.Impressions)
	require.Positive(t, m.EarningsMicros)
}

// watchSpace connects to the realtime channel at base with token,
// subscribes to owner's space, and returns the connection and a reader of
// its next envelope. The connection closes when the test ends.
func watchSpace(t *testing.T, ctx context.Context, base, token string, owner uuid.UUID) (*websocket.Conn, func() realtime.Envelope) {
	t.Helper()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.CloseNow() })
	read := func() realtime.Envelope {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		var env realtime.Envelope
		require.NoError(t, json.Unmarshal(b, &env))
		return env
	}
	require.Equal(t, realtime.TypeWelcome, read().Type)
	sub, err := json.Marshal(map[string]any{"v": 1, "type": "subscribe", "payload": map[string]any{"topics": []map[string]any{{"topic": realtime.SpaceTopic(owner)}}}})
	require.NoError(t, err)
	require.NoError(t, c.Write(ctx, websocket.MessageText, sub))
	require.Equal(t, realtime.TypeSubscribed, read().Type)
	return c, read
}
