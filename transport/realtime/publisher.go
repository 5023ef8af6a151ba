package realtime

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
)

// Publisher turns what happens elsewhere in adshare into events on the
// broker: it is the analytics.Live that sends metrics.live, the
// billing.Alerter that sends system.alert, and what adspace tells of
// settings and content changes. Any instance may publish; every hub
// delivers.
type Publisher struct {
	broker Broker
	logger *slog.Logger
	now    func() time.Time
}

var (
	_ analytics.Live         = (*Publisher)(nil)
	_ billing.Alerter        = (*Publisher)(nil)
	_ adspace.ChangeNotifier = (*Publisher)(nil)
	_ auth.ConsentObserver   = (*Publisher)(nil)
)

// NewPublisher returns a publisher on broker; logger (nil: discard)
// receives publish failures.
func NewPublisher(broker Broker, logger *slog.Logger) *Publisher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{broker: broker, logger: logger, now: time.Now}
}

// Publish sends an event of type typ with payload v on topic, kept in the
// topic's history. It returns the broker's error.
func (p *Publisher) Publish(ctx context.Context, topic, typ string, v any) error {
	return p.publish(ctx, topic, typ, v, true)
}

func (p *Publisher) publish(ctx context.Context, topic, typ string, v any, history bool) error {
	data := encode(Envelope{Type: typ, ID: uuid.NewString(), Time: p.now().UTC(), Payload: payload(v)})
	_, err := p.broker.Publish(ctx, topic, data, PublishOptions{History: history})
	return err
}

// publishLogged publishes and logs a failure: producers go on regardless.
func (p *Publisher) publishLogged(ctx context.Context, topic, typ string, v any, history bool) {
	if err := p.publish(ctx, topic, typ, v, history); err != nil {
		p.logger.WarnContext(ctx, "realtime: event not published", slog.String("topic", topic), slog.String("type", typ), slog.Any("error", err))
	}
}

// Accepted implements analytics.Live: the events of one group commit are
// summed per owner and sent as one metrics.live per owner's space (not kept
// in history; sessions coalesce them further).
func (p *Publisher) Accepted(ctx context.Context, events []analytics.Event) {
	sums := map[uuid.UUID]*MetricsPayload{}
	var owners []uuid.UUID
	for _, e := range events {
		m := sums[e.Ad.Owner]
		if m == nil {
			m = &MetricsPayload{OwnerID: e.Ad.Owner.String()}
			sums[e.Ad.Owner] = m
			owners = append(owners, e.Ad.Owner)
		}
		switch e.Type {
		case analytics.Impression:
			m.Impressions++
			if e.Valid {
				m.ValidImpressions++
			}
		case analytics.Click:
			m.Clicks++
		}
		m.EarningsMicros += e.OwnerEarningsMicros
	}
	for _, o := range owners {
		p.publishLogged(ctx, SpaceTopic(o), TypeMetricsLive, sums[o], false)
	}
}

// Alert implements billing.Alerter: a system.alert on the user's topic.
func (p *Publisher) Alert(ctx context.Context, user uuid.UUID, kind, message string) {
	p.publishLogged(ctx, UserTopic(user), TypeSystemAlert, AlertPayload{Kind: kind, Message: message}, true)
}

// Broadcast sends a system.alert to everyone (the alerts topic). It
// returns the broker's error.
func (p *Publisher) Broadcast(ctx context.Context, kind, message string) error {
	return p.Publish(ctx, AlertsTopic, TypeSystemAlert, AlertPayload{Kind: kind, Message: message})
}

// SettingsChanged implements adspace.ChangeNotifier: ad.updated (kind
// "settings") on the owner's space.
func (p *Publisher) SettingsChanged(ctx context.Context, sp adspace.Space) {
	p.publishLogged(ctx, SpaceTopic(sp.OwnerID), TypeAdUpdated,
		AdUpdatedPayload{Kind: "settings", OwnerID: sp.OwnerID.String(), Version: sp.Version}, true)
}

// ContentChanged implements adspace.ChangeNotifier: ad.updated (kind
// "content") on the advertiser's ads topic and, for a rejection, a
// system.alert (content_rejected) for the advertiser.
func (p *Publisher) ContentChanged(ctx context.Context, c adspace.Content) {
	u := AdUpdatedPayload{Kind: "content", ContentID: c.ID.String(), Status: string(c.Status), Version: c.Version}
	if c.Status == adspace.StatusRejected {
		u.Reason = c.RejectReason
	}
	p.publishLogged(ctx, AdsTopic(c.AdvertiserID), TypeAdUpdated, u, true)
	if c.Status == adspace.StatusRejected {
		p.Alert(ctx, c.AdvertiserID, "content_rejected", "Your ad was rejected: "+c.RejectReason)
	}
}

// ConsentChanged implements auth.ConsentObserver: consent.updated on the
// user's own topic (kept in history, so a reconnecting device learns of
// it too). It carries the choices only, no personal data.
func (p *Publisher) ConsentChanged(ctx context.Context, r auth.ConsentRecord) {
	c := ConsentPayload{PolicyVersion: r.PolicyVersion, Purposes: map[string]bool{}, DoNotSell: r.DoNotSell, GPC: r.GPC}
	for _, purpose := range auth.Purposes {
		c.Purposes[string(purpose)] = r.Purposes[purpose]
	}
	p.publishLogged(ctx, UserTopic(r.UserID), TypeConsentUpdated, c, true)
}
