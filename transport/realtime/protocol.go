package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// ProtocolVersion is the envelope's "v". A client sends the version it
// speaks; a message of another version is refused with an error.
const ProtocolVersion = 1

// Server → client message types.
const (
	// TypeWelcome answers a successful authentication (first or renewed).
	TypeWelcome = "welcome"
	// TypeSubscribed confirms a subscription and says whether missed events
	// were replayed.
	TypeSubscribed = "subscribed"
	// TypeUnsubscribed confirms an unsubscription.
	TypeUnsubscribed = "unsubscribed"
	// TypeReload tells the client that events of a topic were lost (history
	// too old, epoch changed): it reloads the topic's state over REST and
	// subscribes again without a position.
	TypeReload = "reload"
	// TypeAdUpdated says that an ad space's settings or an ad's content or
	// status changed.
	TypeAdUpdated = "ad.updated"
	// TypeMetricsLive carries live figures of an owner's ad space.
	TypeMetricsLive = "metrics.live"
	// TypeSystemAlert is an alert for one user or for everyone.
	TypeSystemAlert = "system.alert"
	// TypeConsentUpdated tells a user's devices that their consent changed
	// (on another device, or by a Sec-GPC signal), so that every app stops
	// what the user no longer allows at once.
	TypeConsentUpdated = "consent.updated"
	// TypeError answers a message that was refused; the connection stays
	// open (until repeated abuse closes it).
	TypeError = "error"
	// TypePong answers a ping.
	TypePong = "pong"
)

// Client → server message types.
const (
	// TypeAuth carries an access token: the first message of a browser
	// connection, or a fresh token before the current one expires.
	TypeAuth = "auth"
	// TypeSubscribe subscribes to topics, optionally resuming from a
	// position.
	TypeSubscribe = "subscribe"
	// TypeUnsubscribe ends subscriptions.
	TypeUnsubscribe = "unsubscribe"
	// TypePing asks for a pong (an application-level liveness check; the
	// server also pings at the WebSocket level).
	TypePing = "ping"
	// TypeAck acknowledges events up to a sequence of a topic.
	TypeAck = "ack"
)

// Close codes. Codes 4000–4499 mean "reconnect" (with backoff, after
// refreshing the access token where the code says so); codes 4500–4999
// mean "do not reconnect" without user action (sign in again, fix the
// client). 1009 (message too big) is the WebSocket standard's.
const (
	// CloseShutdown: the server is going away; reconnect.
	CloseShutdown = 4000
	// CloseTokenExpired: the access token expired without a renewal;
	// refresh it and reconnect.
	CloseTokenExpired = 4001
	// CloseSlow: the client did not read fast enough; reconnect and resume.
	CloseSlow = 4002
	// CloseNoPong: the client did not answer a ping in time; reconnect.
	CloseNoPong = 4003
	// CloseTooManyRequests: the client sent messages too fast; reconnect
	// after a backoff.
	CloseTooManyRequests = 4004
	// CloseUnavailable: the server could not keep the channel's state (the
	// broker failed); reconnect and resume.
	CloseUnavailable = 4005
	// ClosePermissionsChanged: the user's role changed; refresh the access
	// token (it carries the new role) and reconnect.
	ClosePermissionsChanged = 4006

	// CloseUnauthorized: the token is missing, malformed, forged or its
	// user is gone; sign in again.
	CloseUnauthorized = 4500
	// CloseSessionRevoked: the session was ended (logout, revoked by the
	// user or an administrator, refresh-token reuse); sign in again.
	CloseSessionRevoked = 4501
	// CloseBadRequest: repeated invalid messages; fix the client.
	CloseBadRequest = 4502
	// CloseConnectionLimit: the user has too many open connections.
	CloseConnectionLimit = 4503
	// CloseAuthTimeout: no auth message within the deadline.
	CloseAuthTimeout = 4504
)

// Reconnect reports whether a client should reconnect after a close with
// code: the 4000–4499 range, and the standard codes other than 1008 (policy
// violation) and 1009 (message too big), which a retry would repeat.
func Reconnect(code int) bool {
	switch {
	case code >= 4000 && code < 4500:
		return true
	case code >= 4500 && code < 5000:
		return false
	case code == 1008 || code == 1009:
		return false
	}
	return true
}

// Envelope is every message, both ways. Server events carry Topic, and,
// when kept in history, Seq and Epoch; ID is the event's id from the
// server, or the client's own request id, echoed in the answer.
type Envelope struct {
	V       int             `json:"v"`
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Topic   string          `json:"topic,omitempty"`
	Seq     uint64          `json:"seq,omitempty"`
	Epoch   string          `json:"epoch,omitempty"`
	Time    time.Time       `json:"time,omitzero"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Position is a place in a topic's stream: the last sequence a client
// received, and the epoch it belongs to.
type Position struct {
	Seq   uint64 `json:"seq"`
	Epoch string `json:"epoch"`
}

// AuthPayload is the payload of an auth message.
type AuthPayload struct {
	Token string `json:"token"`
}

// SubscribeTopic is one topic of a subscribe message; Since, when given,
// asks for the events after it.
type SubscribeTopic struct {
	Topic string    `json:"topic"`
	Since *Position `json:"since,omitempty"`
}

// SubscribePayload is the payload of a subscribe message.
type SubscribePayload struct {
	Topics []SubscribeTopic `json:"topics"`
}

// UnsubscribePayload is the payload of an unsubscribe message.
type UnsubscribePayload struct {
	Topics []string `json:"topics"`
}

// AckPayload is the payload of an ack message.
type AckPayload struct {
	Topic string `json:"topic"`
	Seq   uint64 `json:"seq"`
}

// WelcomePayload answers an authentication.
type WelcomePayload struct {
	UserID    string    `json:"user_id"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at"`
	// PingIntervalMS is how often the server pings; a client that hears
	// nothing for this plus 10 s may treat the connection as dead.
	PingIntervalMS int64 `json:"ping_interval_ms"`
	// MaxTopics is how many topics a connection may subscribe to.
	MaxTopics int `json:"max_topics"`
}

// SubscribedPayload confirms one topic's subscription. Position is the
// stream's position after any replay; Recovered is true when the missed
// events were replayed (their count in Replayed).
type SubscribedPayload struct {
	Topic     string   `json:"topic"`
	Position  Position `json:"position"`
	Recovered bool     `json:"recovered"`
	Replayed  int      `json:"replayed"`
}

// ReloadPayload names a topic whose events were lost and why: "too_old"
// (more missed than the history holds), "epoch_changed" (the history was
// lost), "overflow" (the connection fell behind while recovering).
type ReloadPayload struct {
	Topic  string `json:"topic"`
	Reason string `json:"reason"`
}

// ErrorPayload names what was wrong with a client message.
type ErrorPayload struct {
	// Code is machine-readable: bad_json, bad_version, unknown_type,
	// bad_payload, forbidden_topic, unknown_topic, too_many_topics,
	// rate_limited, binary_frame, unauthenticated, auth_failed.
	Code    string `json:"code"`
	Message string `json:"message"`
}

// AdUpdatedPayload says what changed: Kind is "settings" or "content";
// for content, ContentID and Status (approved, rejected, paused, …) and,
// for a rejection, Reason.
type AdUpdatedPayload struct {
	Kind      string `json:"kind"`
	OwnerID   string `json:"owner_id,omitempty"`
	ContentID string `json:"content_id,omitempty"`
	Status    string `json:"status,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Version   int64  `json:"version,omitempty"`
}

// MetricsPayload is the live figures accepted since the previous
// metrics.live message of the same space (deltas, summed while coalesced):
// the client adds them to the figures it loaded over REST.
type MetricsPayload struct {
	OwnerID          string `json:"owner_id"`
	Impressions      int64  `json:"impressions"`
	ValidImpressions int64  `json:"valid_impressions"`
	Clicks           int64  `json:"clicks"`
	EarningsMicros   int64  `json:"earnings_micros"`
}

// AlertPayload is a system alert: Kind names it (payout_failed,
// content_rejected, budget_exhausted, announcement, …).
type AlertPayload struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// ConsentPayload is a user's consent after a change (consent.updated).
type ConsentPayload struct {
	PolicyVersion string          `json:"policy_version"`
	Purposes      map[string]bool `json:"purposes"`
	DoNotSell     bool            `json:"do_not_sell"`
	GPC           bool            `json:"gpc"`
}

// ProtocolError is a client message refused with an error message; the
// connection stays open.
type ProtocolError struct {
	Code    string
	Message string
}

func (e *ProtocolError) Error() string { return "realtime: " + e.Code + ": " + e.Message }

func protoErr(code, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// DecodeClientMessage parses one client message strictly: valid UTF-8,
// one JSON object, no unknown fields, the current version, a known type.
// It returns a *ProtocolError naming the problem.
func DecodeClientMessage(data []byte) (Envelope, error) {
	if !utf8.Valid(data) {
		return Envelope{}, protoErr("bad_json", "the message is not valid UTF-8")
	}
	var env Envelope
	if err := decodeStrict(data, &env); err != nil {
		return Envelope{}, protoErr("bad_json", "the message is not a valid envelope: %v", err)
	}
	if env.V != ProtocolVersion {
		return Envelope{}, protoErr("bad_version", "v must be %d", ProtocolVersion)
	}
	if len(env.ID) > 64 {
		return Envelope{}, protoErr("bad_payload", "id must be at most 64 characters")
	}
	switch env.Type {
	case TypeAuth, TypeSubscribe, TypeUnsubscribe, TypePing, TypeAck:
	case "":
		return Envelope{}, protoErr("unknown_type", "type is required")
	default:
		return Envelope{}, protoErr("unknown_type", "unknown message type %q", env.Type)
	}
	return env, nil
}

// DecodePayload parses a message's payload strictly into v.
func DecodePayload(env Envelope, v any) error {
	if len(env.Payload) == 0 {
		return protoErr("bad_payload", "%s needs a payload", env.Type)
	}
	if err := decodeStrict(env.Payload, v); err != nil {
		return protoErr("bad_payload", "the %s payload is malformed: %v", env.Type, err)
	}
	return nil
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the object")
	}
	return nil
}

// encode marshals a server message; it cannot fail for the types above.
func encode(env Envelope) []byte {
	env.V = ProtocolVersion
	b, err := json.Marshal(env)
	if err != nil {
		panic("realtime: encode: " + err.Error())
	}
	return b
}

// payload marshals v for an envelope.
func payload(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("realtime: payload: " + err.Error())
	}
	return b
}
