package stripe

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/adshare/adshare/billing"
)

// Defaults of WebhooksConfig.
const (
	// DefaultTolerance is how old a signature may be: Stripe's own default
	// (webhook.DefaultTolerance). Stripe signs each delivery attempt
	// afresh, so a retried event is never too old.
	DefaultTolerance = 300 * time.Second
	// DefaultFutureSkew is how far ahead of now a signature may be.
	// stripe-go checks only age; a timestamp far ahead would stay valid
	// for a replay until it became old.
	DefaultFutureSkew = 300 * time.Second
	// DefaultMaxBody is the largest payload read: 1 MiB. Stripe's events
	// are a few KiB; a connected account or a dispute with its balance
	// transactions stays well under.
	DefaultMaxBody int64 = 1 << 20
)

// WebhooksConfig configures NewWebhooks. One Webhooks verifies one endpoint:
// the platform's and the Connect endpoint have secrets of their own, so
// each gets its own Webhooks.
type WebhooksConfig struct {
	// Secrets are the endpoint's signing secrets (whsec_…), from the host's
	// configuration. A payload signed with any of them is accepted: while
	// a secret is rolled, Stripe signs with the old and the new one, and
	// both are listed here until the old one expires. At least one is
	// required; they never appear in logs or errors.
	Secrets []Secret
	// Tolerance is how old a signature may be. Defaults to
	// DefaultTolerance.
	Tolerance time.Duration
	// FutureSkew is how far ahead of now a signature may be. Defaults to
	// DefaultFutureSkew.
	FutureSkew time.Duration
	// MaxBody is the largest payload accepted. Defaults to
	// DefaultMaxBody. A handler should read the body through
	// http.MaxBytesReader with [Webhooks.MaxBody].
	MaxBody int64
}

// Webhooks is billing.EventVerifier for Stripe's webhook endpoints, on
// stripe-go's webhook package (the raw-body HMAC check). It accepts only
// events of API version 2023-10-16 (stripego.APIVersion), the one this
// build's stripe-go reads: an endpoint must be created on that version.
// Safe for concurrent use.
type Webhooks struct {
	cfg     WebhooksConfig // Secrets cleared: they live behind secrets only
	secrets *[]Secret
}

var _ billing.EventVerifier = (*Webhooks)(nil)

// NewWebhooks returns a Webhooks for one endpoint.
func NewWebhooks(cfg WebhooksConfig) (*Webhooks, error) {
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("stripe: WebhooksConfig.Secrets needs the endpoint's signing secret (whsec_…, shown on the endpoint's page in the dashboard)")
	}
	for _, s := range cfg.Secrets {
		if !strings.HasPrefix(string(s), "whsec_") || strings.ContainsAny(string(s), " \t\r\n") {
			return nil, errors.New("stripe: WebhooksConfig.Secrets must be signing secrets (whsec_…, one word): not an API key")
		}
	}
	if cfg.Tolerance < 0 || cfg.FutureSkew < 0 || cfg.MaxBody < 0 {
		return nil, errors.New("stripe: WebhooksConfig.Tolerance, FutureSkew and MaxBody must not be negative (0 means the default)")
	}
	cfg.Tolerance = cmp.Or(cfg.Tolerance, DefaultTolerance)
	cfg.FutureSkew = cmp.Or(cfg.FutureSkew, DefaultFutureSkew)
	cfg.MaxBody = cmp.Or(cfg.MaxBody, DefaultMaxBody)
	secrets := append([]Secret(nil), cfg.Secrets...)
	cfg.Secrets = nil
	return &Webhooks{cfg: cfg, secrets: &secrets}, nil
}

// MaxBody is the largest payload VerifyEvent accepts.
func (w *Webhooks) MaxBody() int64 { return w.cfg.MaxBody }

// VerifyEvent checks payload's signature (stripe-go's
// webhook.ConstructEventWithOptions, with each secret in turn), then that
// the signature's time is at most Tolerance before now and at most
// FutureSkew after it (stripe-go compares with the process's clock, and
// only the age: its own check is off so that one clock, now, decides
// both), then the event's API version (never ignored), and maps the event.
//
// The events adshare acts on become billing.Event values with their
// object (see the package doc for what each carries); any other type
// gives an Event with only the envelope (ID, Type, Account, Created,
// Livemode): the caller stores and acknowledges it, and it changes
// nothing.
//
// Errors: billing.ErrWebhookSignature, billing.ErrWebhookVersion,
// billing.ErrInvalidEvent (also for a payload over MaxBody), as
// billing.EventVerifier says. No error shows a secret.
func (w *Webhooks) VerifyEvent(payload []byte, header string, now time.Time) (billing.Event, error) {
	if int64(len(payload)) > w.cfg.MaxBody {
		return billing.Event{}, billing.ErrInvalidEvent.WithCause(fmt.Errorf("stripe: webhook payload of %d bytes is over WebhooksConfig.MaxBody (%d)", len(payload), w.cfg.MaxBody))
	}
	ev, err := w.construct(payload, header)
	if errors.Is(err, errUnsigned) {
		return billing.Event{}, billing.ErrWebhookSignature.WithCause(err)
	}
	// The signature holds: the header's time is the one it signed.
	at, terr := signedAt(header)
	switch {
	case terr != nil:
		return billing.Event{}, billing.ErrWebhookSignature.WithCause(terr)
	case now.Sub(at) > w.cfg.Tolerance:
		return billing.Event{}, billing.ErrWebhookSignature.WithCause(fmt.Errorf("stripe: webhook signed %s ago, more than the tolerance (%s)", now.Sub(at), w.cfg.Tolerance))
	case at.Sub(now) > w.cfg.FutureSkew:
		return billing.Event{}, billing.ErrWebhookSignature.WithCause(fmt.Errorf("stripe: webhook signed %s in the future, more than the allowed skew (%s)", at.Sub(now), w.cfg.FutureSkew))
	}
	if err != nil {
		return billing.Event{}, unreadable(payload, err)
	}
	return eventOf(ev)
}

// errUnsigned marks a payload no secret signs.
var errUnsigned = errors.New("stripe: webhook not signed by any of the endpoint's secrets")

// construct runs stripe-go's check with each secret. It returns an error
// wrapping errUnsigned when none signs the payload (or the header is
// missing or malformed), and stripe-go's error when one does but the event
// is not readable or of another API version.
func (w *Webhooks) construct(payload []byte, header string) (stripego.Event, error) {
	var last error
	for _, s := range *w.secrets {
		ev, err := webhook.ConstructEventWithOptions(payload, header, string(s), webhook.ConstructEventOptions{IgnoreTolerance: true})
		switch {
		case err == nil:
			return ev, nil
		case errors.Is(err, webhook.ErrNoValidSignature):
			last = err
			continue
		case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader):
			return ev, fmt.Errorf("%w: %w", errUnsigned, err)
		default:
			return ev, err
		}
	}
	return stripego.Event{}, fmt.Errorf("%w: %w", errUnsigned, last)
}

// signedAt reads the time of a Stripe-Signature header (t=…,v1=…). A
// header with several times is refused: stripe-go verifies against the
// last one, and a check of any other would let a replayed payload through
// with a fresh time in front.
func signedAt(header string) (time.Time, error) {
	var at time.Time
	n := 0
	for part := range strings.SplitSeq(header, ",") {
		v, ok := strings.CutPrefix(part, "t=")
		if !ok {
			continue
		}
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, errors.New("stripe: webhook signature time is not a number")
		}
		at, n = time.Unix(sec, 0), n+1
	}
	if n != 1 {
		return time.Time{}, fmt.Errorf("stripe: webhook signature header has %d times, not one", n)
	}
	return at, nil
}

// unreadable classifies a signed payload stripe-go could not construct:
// another API version (ErrWebhookVersion), or not an event at all.
func unreadable(payload []byte, err error) error {
	var v struct {
		APIVersion string `json:"api_version"`
	}
	if json.Unmarshal(payload, &v) == nil && v.APIVersion != stripego.APIVersion {
		return billing.ErrWebhookVersion.WithCause(fmt.Errorf(
			"stripe: webhook event of API version %q, but this build reads only %s: create the endpoint on API version %s", v.APIVersion, stripego.APIVersion, stripego.APIVersion))
	}
	return billing.ErrInvalidEvent.WithCause(err)
}

// eventOf maps a verified event (pure). An event adshare acts on whose
// object is missing or of another kind is ErrInvalidEvent.
func eventOf(e stripego.Event) (billing.Event, error) {
	if e.ID == "" || e.Type == "" {
		return billing.Event{}, billing.ErrInvalidEvent.WithCause(errors.New("stripe: webhook event without id or type"))
	}
	out := billing.Event{
		ID:       e.ID,
		Type:     billing.EventType(e.Type),
		Account:  e.Account,
		Created:  unix(e.Created),
		Livemode: e.Livemode,
	}
	var err error
	switch out.Type {
	case billing.EventPaymentSucceeded, billing.EventPaymentFailed:
		out.Payment, err = decode(e, "payment_intent", paymentOf)
	case billing.EventChargeRefunded:
		out.Refund, err = decode(e, "charge", refundOf)
	case billing.EventDisputeCreated, billing.EventDisputeClosed:
		out.Dispute, err = decode(e, "dispute", disputeOf)
	case billing.EventAccountUpdated:
		out.Connect, err = decode(e, "account", accountOf)
	case billing.EventTransferReversed:
		out.Transfer, err = decode(e, "transfer", transferOf)
	case billing.EventPayoutFailed:
		out.Payout, err = decode(e, "payout", payoutOf)
	}
	if err != nil {
		return billing.Event{}, billing.ErrInvalidEvent.WithCause(fmt.Errorf("stripe: %s event: %w", out.Type, err))
	}
	return out, nil
}

// decode reads an event's object, which must be of kind object, into S
// and maps it.
func decode[S, T any](e stripego.Event, object string, conv func(*S) T) (*T, error) {
	if e.Data == nil || e.Data.Object["object"] != object {
		return nil, fmt.Errorf("no %s object", object)
	}
	var s S
	if err := json.Unmarshal(e.Data.Raw, &s); err != nil {
		return nil, err
	}
	t := conv(&s)
	return &t, nil
}
