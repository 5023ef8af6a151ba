package transport

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/transport/realtime"
)

var (
	errTokenInURL = errs.New(errs.Malformed, "token_in_url",
		"access tokens are never accepted in the URL; send Authorization: Bearer, or an auth message after connecting")
)

// tokenQueryParams are the query parameters a client might carry a token
// in; a request with any of them is refused before the upgrade, so that no
// token is logged by proxies as part of a URL.
var tokenQueryParams = []string{"token", "access_token", "jwt", "auth", "authorization"}

// handleWS serves the realtime channel (GET /ws): the access token in the
// Authorization header (native apps), checked before the upgrade, or in an
// auth message within the hub's AuthTimeout (browsers, which cannot set
// headers on a WebSocket). Browsers must come from an allowed Origin or
// from a page the server itself served (the Origin's host is the
// request's Host); a request without Origin (a native app) passes.
func (s *server) handleWS() http.Handler {
	hub := s.cfg.Realtime
	cfg := hub.Config()
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		for _, k := range tokenQueryParams {
			if q.Has(k) {
				return errTokenInURL
			}
		}
		if origin := r.Header.Get("Origin"); origin != "" && !s.wsOrigins.allowed(strings.ToLower(origin)) && !sameHost(origin, r.Host) {
			return errOriginNotAllowed
		}
		var p *auth.Principal
		if r.Header.Get("Authorization") != "" {
			token := bearerToken(r)
			if token == "" {
				return auth.ErrUnauthenticated.WithMessage("the Authorization header must be: Bearer <access token>")
			}
			pr, err := s.auth.Authenticate(r.Context(), token)
			if err != nil {
				return err
			}
			p = &pr
		}
		// The Origin was checked above against the exact allowlist.
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			s.logger.DebugContext(r.Context(), "transport: websocket upgrade failed", slog.Any("error", err))
			return nil // Accept answered the request
		}
		c.SetReadLimit(cfg.ReadLimit)
		// The connection is hijacked: it outlives this handler, whose
		// goroutine (deep in the middleware) returns, and a goroutine of
		// its own, with a small stack, serves it. Idle connections are most
		// of what a server holds, and a stack is most of an idle one.
		go serveSession(context.WithoutCancel(r.Context()), c, hub.NewSession(p), cfg)
		return nil
	})
}

// sameHost reports whether origin (scheme://host[:port]) names host, the
// request's Host: the page that opens the socket came from this server,
// as a browser's same-origin policy would have it (what coder/websocket
// checks by default).
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// serveSession runs one connection: a reader goroutine feeding the session,
// this goroutine as the only writer of data messages, and a timer that
// pings (closing the session when a pong does not come in time).
func serveSession(ctx context.Context, c *websocket.Conn, sess *realtime.Session, cfg realtime.HubConfig) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				code := websocket.CloseStatus(err)
				if code == websocket.StatusMessageTooBig {
					sess.Close(int(code), "message too big")
				} else {
					sess.Close(realtime.CloseShutdown, "connection closed")
				}
				cancel()
				return
			}
			if typ == websocket.MessageBinary {
				sess.HandleBinary()
				continue
			}
			sess.Handle(ctx, data)
		}
	}()

	// The first ping comes at a random point of the second half of the
	// interval, so that connections opened together do not ping together.
	first := cfg.PingInterval/2 + rand.N(cfg.PingInterval/2+1)
	var ping *time.Timer
	ping = time.AfterFunc(first, func() {
		// The pong deadline is a timer of ours: a Ping whose context ends
		// tears the connection down without a close frame, and the client
		// should learn the code.
		late := time.AfterFunc(cfg.PongTimeout, func() { sess.Close(realtime.CloseNoPong, "no pong in time") })
		err := c.Ping(ctx)
		late.Stop()
		if err != nil {
			sess.Close(realtime.CloseShutdown, "connection lost")
			return
		}
		ping.Reset(cfg.PingInterval)
	})
	defer ping.Stop()

	for {
		msg, err := sess.Next(ctx)
		if err != nil {
			break
		}
		wctx, wcancel := context.WithTimeout(ctx, cfg.WriteTimeout)
		err = c.Write(wctx, websocket.MessageText, msg)
		wcancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				sess.Close(realtime.CloseSlow, "write timed out: the client reads too slowly")
			} else {
				sess.Close(realtime.CloseShutdown, "connection lost")
			}
			break
		}
	}
	code, reason := sess.CloseStatus()
	if code == 0 { // ctx ended first
		sess.Close(realtime.CloseShutdown, "connection closed")
		code, reason = sess.CloseStatus()
	}
	_ = c.Close(websocket.StatusCode(code), reason)
	cancel()
	wg.Wait()
}

// announceRequest is the body of POST /admin/announcements.
type announceRequest struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// announcementJSON is an announcement that was sent.
type announcementJSON struct {
	ID      uuid.UUID `json:"id"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	SentAt  time.Time `json:"sent_at"`
}

// handleAnnounce serves POST /admin/announcements: an administrator's
// system.alert to every client connected to any instance (auth's
// PermAnnounce; checked, validated and audited by the Announcer). 202:
// sent to the broker, delivered as clients are reached.
func (s *server) handleAnnounce() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		req, err := decodeJSON[announceRequest](r)
		if err != nil {
			return err
		}
		an, err := s.cfg.Announcer.Announce(r.Context(), p, req.Kind, req.Message)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, announcementJSON{ID: an.ID, Kind: an.Kind, Message: an.Message, SentAt: an.SentAt})
		return nil
	})
}
