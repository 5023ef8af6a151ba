package transport

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/transport/realtime"
)

func TestWSConnect(t *testing.T) {
	t.Parallel()
	b := newWSBundle(t, backendMemory, wsOpts{
		origins: []string{"https://dash.example.com"},
		hub:     func(c *realtime.HubConfig) { c.AuthTimeout = 300 * time.Millisecond },
	})
	tok := b.register(t, "conn@example.com")

	t.Run("HeaderAuthBeforeUpgrade", func(t *testing.T) {
		c := b.dialWS(t, bearer(tok.AccessToken))
		w := payloadOf[realtime.WelcomePayload](t, c.expect(realtime.TypeWelcome))
		require.Equal(t, tok.User.ID.String(), w.UserID)
		require.Equal(t, "user", w.Role)
		require.False(t, w.ExpiresAt.IsZero())
		c.alive()
	})
	t.Run("FirstMessageAuth", func(t *testing.T) {
		c := b.dialWS(t, nil)
		c.send(realtime.TypeSubscribe, "early", realtime.SubscribePayload{Topics: []realtime.SubscribeTopic{{Topic: realtime.AlertsTopic}}})
		c.expectError("unauthenticated")
		c.send(realtime.TypeAuth, "a", realtime.AuthPayload{Token: tok.AccessToken})
		c.expect(realtime.TypeWelcome)
		time.Sleep(400 * time.Millisecond) // past the auth deadline: still open
		c.alive()
	})
	t.Run("NoAuthWithinDeadline", func(t *testing.T) {
		c := b.dialWS(t, nil)
		c.expectClose(realtime.CloseAuthTimeout)
	})
	t.Run("BadTokenInFirstMessage", func(t *testing.T) {
		c := b.dialWS(t, nil)
		c.send(realtime.TypeAuth, "a", realtime.AuthPayload{Token: "not-a-token"})
		c.expectClose(realtime.CloseUnauthorized)
	})
	for _, tc := range []struct {
		description string
		query       string
		header      http.Header
		status      int
	}{
		{"MalformedToken", "", bearer("garbage"), http.StatusUnauthorized},
		{"NotBearer", "", http.Header{"Authorization": {"Basic abc"}}, http.StatusUnauthorized},
		{"TokenInQuery", "?access_token=" + tok.AccessToken, nil, http.StatusBadRequest},
		{"TokenInQueryEvenWithHeader", "?token=x", bearer(tok.AccessToken), http.StatusBadRequest},
		{"ForeignOrigin", "", http.Header{"Origin": {"https://evil.example.com"}}, http.StatusForbidden},
	} {
		t.Run(tc.description, func(t *testing.T) {
			_, resp, err := b.tryDialWS(t, tc.query, tc.header)
			require.Error(t, err)
			require.NotNil(t, resp)
			require.Equal(t, tc.status, resp.StatusCode)
		})
	}
	t.Run("AllowedOrigin", func(t *testing.T) {
		h := bearer(tok.AccessToken)
		h.Set("Origin", "https://dash.example.com")
		c := b.dialWS(t, h)
		c.expect(realtime.TypeWelcome)
	})
}

func TestWSTokenExpiry(t *testing.T) {
	t.Parallel()
	var b *wsBundle
	b = newWSBundle(t, backendMemory, wsOpts{hub: func(c *realtime.HubConfig) { c.Now = func() time.Time { return b.clock.Now() } }})
	tok := b.register(t, "exp@example.com")
	// The token has 400 ms left by the clock both auth and the hub read.
	b.clock.Advance(auth.DefaultAccessTokenTTL - 400*time.Millisecond)

	t.Run("ClosedAtExpiry", func(t *testing.T) {
		c := b.dialAs(t, tok.AccessToken)
		c.expectClose(realtime.CloseTokenExpired)
	})
	t.Run("RenewedInBand", func(t *testing.T) {
		c := b.dialAs(t, tok.AccessToken)
		fresh := b.refresh(t, tok.RefreshToken)
		c.send(realtime.TypeAuth, "renew", realtime.AuthPayload{Token: fresh.AccessToken})
		w := payloadOf[realtime.WelcomePayload](t, c.expect(realtime.TypeWelcome))
		require.True(t, w.ExpiresAt.After(b.clock.Now().Add(time.Minute)))
		time.Sleep(600 * time.Millisecond)
		c.alive()
		c.send(realtime.TypeAuth, "bad", realtime.AuthPayload{Token: "garbage"})
		c.expectError("auth_failed")
		c.alive()
	})
	t.Run("RenewalForAnotherUserCloses", func(t *testing.T) {
		other := b.register(t, "exp-other@example.com")
		c := b.dialAs(t, other.AccessToken)
		mine := b.login(t, "exp@example.com")
		c.send(realtime.TypeAuth, "swap", realtime.AuthPayload{Token: mine.AccessToken})
		c.expectClose(realtime.CloseUnauthorized)
	})
}

func TestWSRevocation(t *testing.T) {
	t.Parallel()
	b := newWSBundle(t, backendMemory, wsOpts{})
	t.Run("LogoutClosesTheSessionsConnections", func(t *testing.T) {
		tok := b.register(t, "rev@example.com")
		other := b.login(t, "rev@example.com") // another session of the same user
		c, keep := b.dialAs(t, tok.AccessToken), b.dialAs(t, other.AccessToken)
		b.do(t, http.MethodPost, "/auth/logout", tok.AccessToken, nil).requireStatus(t, http.StatusNoContent)
		c.expectClose(realtime.CloseSessionRevoked)
		keep.alive()
	})
	t.Run("RoleChangeAsksForAFreshToken", func(t *testing.T) {
		tok := b.register(t, "role@example.com")
		c := b.dialAs(t, tok.AccessToken)
		b.do(t, http.MethodPost, "/users/me/advertiser", tok.AccessToken, map[string]string{"terms_version": auth.DefaultAdvertiserTerms}).requireStatus(t, http.StatusOK)
		c.expectClose(realtime.ClosePermissionsChanged)
	})
}

func TestWSSubscribeAuthorization(t *testing.T) {
	t.Parallel()
	b := newWSBundle(t, backendMemory, wsOpts{})
	owner := b.register(t, "owner@example.com")
	other := b.register(t, "other@example.com")
	admin := b.promote(t, b.register(t, "admin@example.com"), auth.RoleAdmin)

	c := b.dialAs(t, owner.AccessToken)
	for _, tc := range []struct {
		description string
		topic       string
		code        string // "" for allowed
	}{
		{"OwnSpace", realtime.SpaceTopic(owner.User.ID), ""},
		{"OwnAlerts", realtime.UserTopic(owner.User.ID), ""},
		{"Broadcasts", realtime.AlertsTopic, ""},
		{"AnotherUsersSpace", realtime.SpaceTopic(other.User.ID), "forbidden_topic"},
		{"AnotherUsersAlerts", realtime.UserTopic(other.User.ID), "forbidden_topic"},
		{"AdsWithoutBeingAnAdvertiser", realtime.AdsTopic(owner.User.ID), "forbidden_topic"},
		{"UnknownPrefix", "secret:" + uuid.NewString(), "unknown_topic"},
		{"NotAUUID", "space:../../x", "unknown_topic"},
		{"Control", "_control", "unknown_topic"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			if tc.code == "" {
				p := c.subscribe(tc.topic, nil)
				require.NotEmpty(t, p.Position.Epoch)
				return
			}
			c.send(realtime.TypeSubscribe, "x", realtime.SubscribePayload{Topics: []realtime.SubscribeTopic{{Topic: tc.topic}}})
			c.expectError(tc.code)
			c.alive()
		})
	}
	t.Run("AdminsSeeAnySpace", func(t *testing.T) {
		a := b.dialAs(t, admin.AccessToken)
		a.subscribe(realtime.SpaceTopic(other.User.ID), nil)
		require.NoError(t, b.pub.Publish(context.Background(), realtime.SpaceTopic(other.User.ID), realtime.TypeAdUpdated, realtime.AdUpdatedPayload{Kind: "settings"}))
		env := a.expect(realtime.TypeAdUpdated)
		require.Equal(t, uint64(1), env.Seq)
	})
}

func TestWSMessageValidation(t *testing.T) {
	t.Parallel()
	b := newWSBundle(t, backendMemory, wsOpts{hub: func(c *realtime.HubConfig) { c.MaxStrikes = 8; c.ReadLimit = 1024 }})
	tok := b.register(t, "valid@example.com")
	c := b.dialAs(t, tok.AccessToken)
	for _, tc := range []struct {
		description string
		typ         websocket.MessageType
		msg         string
		code        string
	}{
		{"BadJSON", websocket.MessageText, `{"v":1,"type":`, "bad_json"},
		{"InvalidUTF8", websocket.MessageText, "{\"v\":1,\"type\":\"ping\",\"id\":\"\xff\"}", "bad_json"},
		{"UnknownField", websocket.MessageText, `{"v":1,"type":"ping","extra":1}`, "bad_json"},
		{"WrongVersion", websocket.MessageText, `{"v":2,"type":"ping"}`, "bad_version"},
		{"UnknownType", websocket.MessageText, `{"v":1,"type":"launch"}`, "unknown_type"},
		{"WrongPayloadShape", websocket.MessageText, `{"v":1,"type":"subscribe","payload":{"topics":"alerts"}}`, "bad_payload"},
		{"BinaryFrame", websocket.MessageBinary, `{"v":1,"type":"ping"}`, "binary_frame"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			c.raw(tc.typ, []byte(tc.msg))
			c.expectError(tc.code)
		})
	}
	t.Run("ConnectionStaysOpen", func(t *testing.T) { c.alive() })
	t.Run("RepeatedAbuseCloses", func(t *testing.T) {
		c.raw(websocket.MessageText, []byte(`nope`)) // the eighth strike
		c.expectError("bad_json")
		c.expectClose(realtime.CloseBadRequest)
	})
	t.Run("OversizedCloses1009", func(t *testing.T) {
		c := b.dialAs(t, tok.AccessToken)
		c.raw(websocket.MessageText, []byte(`{"v":1,"type":"ping","id":"`+strings.Repeat("x", 2000)+`"}`))
		c.expectClose(int(websocket.StatusMessageTooBig))
	})
	t.Run("FloodCloses", func(t *testing.T) {
		c := b.dialAs(t, tok.AccessToken)
		for range 60 {
			c.send(realtime.TypePing, "", nil)
		}
		deadline := time.Now().Add(5 * time.Second)
		sawLimit := false
		for time.Now().Before(deadline) {
			env, err := c.tryRead(5 * time.Second)
			if err != nil {
				require.Equal(t, websocket.StatusCode(realtime.CloseTooManyRequests), websocket.CloseStatus(err))
				require.True(t, sawLimit, "a rate_limited error came before the close")
				return
			}
			if env.Type == realtime.TypeError && payloadOf[realtime.ErrorPayload](t, env).Code == "rate_limited" {
				sawLimit = true
			}
		}
		t.Fatal("a flood did not close the connection")
	})
}

func TestWSLimits(t *testing.T) {
	t.Parallel()
	b := newWSBundle(t, backendMemory, wsOpts{hub: func(c *realtime.HubConfig) {
		c.MaxConnsPerUser = 2
		c.QueueSize = 8
		c.WriteTimeout = 300 * time.Millisecond
		c.PingInterval, c.PongTimeout = 200*time.Millisecond, 200*time.Millisecond
	}})
	t.Run("PerUserConnectionLimit", func(t *testing.T) {
		tok := b.register(t, "limit@example.com")
		b.dialAs(t, tok.AccessToken)
		second := b.dialAs(t, tok.AccessToken)
		third := b.dialWS(t, bearer(tok.AccessToken))
		third.expectClose(realtime.CloseConnectionLimit)
		second.alive()
	})
	t.Run("PingsKeepAReadingClientAndCloseASilentOne", func(t *testing.T) {
		tok := b.register(t, "ping@example.com")
		reading := b.dialAs(t, tok.AccessToken)
		silent := b.dialAs(t, tok.AccessToken)
		// The reading client answers pings while it waits (coder/websocket
		// replies during Read); the silent one does not read at all.
		_, err := reading.tryRead(time.Second)
		require.ErrorIs(t, err, context.DeadlineExceeded, "nothing but pings for a second")
		silent.expectClose(realtime.CloseNoPong)
	})
	t.Run("SlowReaderIsDisconnected", func(t *testing.T) {
		tok := b.register(t, "slow@example.com")
		before := b.hub.Connections()
		c := b.dialAs(t, tok.AccessToken)
		c.subscribe(realtime.UserTopic(tok.User.ID), nil)
		big := strings.Repeat("x", 16<<10)
		// The client reads nothing more: the socket buffers fill, then the
		// queue, bounded at 8, and the session is closed.
		for i := 0; i < 2000 && b.hub.Connections() > before; i++ {
			b.pub.Alert(context.Background(), tok.User.ID, "test", big)
		}
		require.Eventually(t, func() bool { return b.hub.Connections() == before }, 10*time.Second, 10*time.Millisecond)
	})
}

func TestWSResume(t *testing.T) {
	t.Parallel()
	b := newWSBundle(t, backendMemory, wsOpts{hub: func(c *realtime.HubConfig) { c.RecoveryLimit = 5 }})
	tok := b.register(t, "resume@example.com")
	topic := realtime.UserTopic(tok.User.ID)
	ctx := context.Background()
	alert := func(msg string) { b.pub.Alert(ctx, tok.User.ID, "test", msg) }

	c := b.dialAs(t, tok.AccessToken)
	start := c.subscribe(topic, nil)
	alert("one")
	first := c.expect(realtime.TypeSystemAlert)
	require.Equal(t, topic, first.Topic)
	require.Equal(t, start.Position.Seq+1, first.Seq)
	require.Equal(t, start.Position.Epoch, first.Epoch)
	require.NoError(t, c.c.Close(websocket.StatusNormalClosure, ""))

	alert("two")
	alert("three")
	t.Run("MissedEventsAreReplayed", func(t *testing.T) {
		c := b.dialAs(t, tok.AccessToken)
		got := c.subscribe(topic, &realtime.Position{Seq: first.Seq, Epoch: first.Epoch})
		require.True(t, got.Recovered)
		require.Equal(t, 2, got.Replayed)
		for _, want := range []string{"two", "three"} {
			env := c.expect(realtime.TypeSystemAlert)
			require.Equal(t, want, payloadOf[realtime.AlertPayload](t, env).Message)
		}
		alert("four")
		env := c.expect(realtime.TypeSystemAlert)
		require.Equal(t, first.Seq+3, env.Seq, "live events follow the replay in sequence")
	})
	t.Run("GapTooOldReloads", func(t *testing.T) {
		for range 6 {
			alert("more")
		}
		c := b.dialAs(t, tok.AccessToken)
		got := c.subscribe(topic, &realtime.Position{Seq: first.Seq, Epoch: first.Epoch})
		require.False(t, got.Recovered)
		require.Equal(t, "too_old", payloadOf[realtime.ReloadPayload](t, c.expect(realtime.TypeReload)).Reason)
		alert("after")
		env := c.expect(realtime.TypeSystemAlert)
		require.Equal(t, got.Position.Seq+1, env.Seq, "the subscription goes on from the head")
	})
	t.Run("OtherEpochReloads", func(t *testing.T) {
		c := b.dialAs(t, tok.AccessToken)
		got := c.subscribe(topic, &realtime.Position{Seq: 1, Epoch: "gone"})
		require.False(t, got.Recovered)
		require.Equal(t, "epoch_changed", payloadOf[realtime.ReloadPayload](t, c.expect(realtime.TypeReload)).Reason)
	})
}

func TestWSMetricsAreCoalesced(t *testing.T) {
	t.Parallel()
	b := newWSBundle(t, backendMemory, wsOpts{hub: func(c *realtime.HubConfig) { c.MetricsInterval = 300 * time.Millisecond }})
	tok := b.register(t, "metrics@example.com")
	c := b.dialAs(t, tok.AccessToken)
	topic := realtime.SpaceTopic(tok.User.ID)
	c.subscribe(topic, nil)
	ctx := context.Background()
	for range 5 {
		_, err := b.broker.Publish(ctx, topic, []byte(`{"v":1,"type":"metrics.live","payload":{"owner_id":"`+tok.User.ID.String()+`","impressions":2,"valid_impressions":1,"clicks":1,"earnings_micros":10}}`), realtime.PublishOptions{})
		require.NoError(t, err)
	}
	firstAt := time.Now()
	m1 := payloadOf[realtime.MetricsPayload](t, c.expect(realtime.TypeMetricsLive))
	m2env := c.expect(realtime.TypeMetricsLive)
	require.GreaterOrEqual(t, time.Since(firstAt), 200*time.Millisecond, "the second waits for the interval")
	require.Zero(t, m2env.Seq, "live figures are not kept in history")
	m2 := payloadOf[realtime.MetricsPayload](t, m2env)
	require.Equal(t, int64(10), m1.Impressions+m2.Impressions)
	require.Equal(t, int64(50), m1.EarningsMicros+m2.EarningsMicros)
	_, err := c.tryRead(500 * time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded, "two messages for five publications")
}

func TestWSMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	b := newWSBundle(t, backendMemory, wsOpts{hub: func(c *realtime.HubConfig) { c.Metrics = reg }})
	tok := b.register(t, "ws-metrics@example.com")
	topic := realtime.UserTopic(tok.User.ID)
	metric := func(name string, labels ...string) float64 {
		t.Helper()
		return testenv.Metric(t, reg, name, labels...)
	}

	c := b.dialAs(t, tok.AccessToken)
	start := c.subscribe(topic, nil)
	c.send(realtime.TypePing, "p1", nil)
	c.expect(realtime.TypePong)
	c.raw(websocket.MessageText, []byte(`{not json`))
	c.expectError("bad_json")
	require.Equal(t, 1.0, metric("adshare_ws_connections"))
	require.Equal(t, 1.0, metric("adshare_ws_messages_received_total", "type", realtime.TypeSubscribe))
	require.Equal(t, 1.0, metric("adshare_ws_messages_received_total", "type", realtime.TypePing))
	require.Equal(t, 1.0, metric("adshare_ws_messages_received_total", "type", "invalid"))
	require.GreaterOrEqual(t, metric("adshare_ws_messages_sent_total"), 3.0, "subscribed, pong, error")

	other := b.dialAs(t, tok.AccessToken)
	got := other.subscribe(topic, &start.Position)
	require.True(t, got.Recovered)
	require.Equal(t, 1.0, metric("adshare_ws_resumes_total", "result", "replayed"))
	stale := b.dialAs(t, tok.AccessToken)
	stale.subscribe(topic, &realtime.Position{Seq: 1, Epoch: "gone"})
	require.Equal(t, 1.0, metric("adshare_ws_resumes_total", "result", "reload"))

	require.NoError(t, c.c.Close(websocket.StatusNormalClosure, ""))
	require.Eventually(t, func() bool {
		return metric("adshare_ws_connections") == 2 && metric("adshare_ws_closes_total", "reason", "closed") == 1
	}, 5*time.Second, 10*time.Millisecond)
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}
