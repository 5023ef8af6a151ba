package realtime_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision/decisiontest"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/transport/realtime"
)

// A Broker carries publications to every instance and keeps each topic's
// recent history, numbered without gaps, so that a client that
// reconnects is given what it missed (or told to reload). store/memory's
// is for one process; store/redis's for a fleet (a single Redis or a
// cluster).
func ExampleBroker() {
	var b realtime.Broker = memory.NewBroker(nil)
	ctx := context.Background()
	got := make(chan realtime.Publication, 8)
	stop, err := b.Subscribe(ctx, func(p realtime.Publication) { got <- p })
	if err != nil {
		panic(err)
	}
	defer stop()

	var first realtime.Position
	for i := 1; i <= 3; i++ {
		pos, err := b.Publish(ctx, "space:demo", []byte(fmt.Sprintf(`{"n":%d}`, i)), realtime.PublishOptions{History: true})
		if err != nil {
			panic(err)
		}
		if i == 1 {
			first = pos
		}
	}
	for range 3 {
		p := <-got
		fmt.Println("live", p.Topic, p.Seq, string(p.Data))
	}

	// A client that saw seq 1 asks for what followed.
	missed, now, err := b.History(ctx, "space:demo", first, 100)
	if err != nil {
		panic(err)
	}
	for _, p := range missed {
		fmt.Println("missed", p.Seq, string(p.Data))
	}
	fmt.Println("now at", now.Seq)

	// One from another epoch (the history was lost) must reload instead.
	_, _, err = b.History(ctx, "space:demo", realtime.Position{Seq: 1, Epoch: "gone"}, 100)
	fmt.Println(errors.Is(err, realtime.ErrUnrecoverable))
	// Output:
	// live space:demo 1 {"n":1}
	// live space:demo 2 {"n":2}
	// live space:demo 3 {"n":3}
	// missed 2 {"n":2}
	// missed 3 {"n":3}
	// now at 3
	// true
}

// The WebSocket (GET /ws) as an app uses it: connect with the access
// token, read the welcome, subscribe to the owner's space topic, and hear
// about a settings change made elsewhere (another device, another
// instance).
func Example_webSocket() {
	app, err := adshare.New(&adshare.Config{Store: memory.New(), Shared: memory.NewShared(), Decider: &decisiontest.Fake{}})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(context.Background())
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()

	_, pair, err := app.Auth().Register(ctx, auth.Registration{Email: "owner@example.com", Password: "a long enough passphrase"})
	if err != nil {
		panic(err)
	}
	owner, err := app.Auth().Authenticate(ctx, pair.AccessToken)
	if err != nil {
		panic(err)
	}

	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + pair.AccessToken}},
	})
	if err != nil {
		panic(err)
	}
	defer conn.CloseNow()
	read := func() realtime.Envelope {
		var env realtime.Envelope
		if err := wsjson.Read(ctx, conn, &env); err != nil {
			panic(err)
		}
		return env
	}
	var welcome realtime.WelcomePayload
	if err := realtime.DecodePayload(read(), &welcome); err != nil {
		panic(err)
	}
	fmt.Println("welcome", welcome.Role)

	topic := realtime.SpaceTopic(owner.UserID)
	if err := wsjson.Write(ctx, conn, map[string]any{
		"v": realtime.ProtocolVersion, "type": realtime.TypeSubscribe, "id": "sub-1",
		"payload": map[string]any{"topics": []map[string]any{{"topic": topic}}},
	}); err != nil {
		panic(err)
	}
	sub := read()
	var subscribed realtime.SubscribedPayload
	if err := realtime.DecodePayload(sub, &subscribed); err != nil {
		panic(err)
	}
	fmt.Println(sub.Type, sub.ID, subscribed.Topic == topic)

	space, err := app.AdSpaces().MySpace(ctx, owner)
	if err != nil {
		panic(err)
	}
	set := space.Settings
	set.Keywords = []string{"cycling"}
	if _, err := app.AdSpaces().UpdateSettings(ctx, owner, set, space.Version); err != nil {
		panic(err)
	}
	ev := read()
	var upd realtime.AdUpdatedPayload
	if err := realtime.DecodePayload(ev, &upd); err != nil {
		panic(err)
	}
	fmt.Println(ev.Type, ev.Seq, upd.Kind, upd.Version)
	// Output:
	// welcome user
	// subscribed sub-1 true
	// ad.updated 1 settings 2
}
