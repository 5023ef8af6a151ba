package realtime

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

// Topic prefixes and names.
const (
	spacePrefix = "space:"
	adsPrefix   = "ads:"
	userPrefix  = "user:"
	// AlertsTopic carries administrators' broadcasts to everyone.
	AlertsTopic = "alerts"
	// controlTopic carries the hub's own messages between instances
	// (revocations); clients cannot subscribe to it.
	controlTopic = "_control"
)

// SpaceTopic is the topic of owner's ad space: ad.updated (settings) and
// metrics.live.
func SpaceTopic(owner uuid.UUID) string { return spacePrefix + owner.String() }

// AdsTopic is the topic of an advertiser's ad content: ad.updated.
func AdsTopic(advertiser uuid.UUID) string { return adsPrefix + advertiser.String() }

// UserTopic is the topic of one user's alerts: system.alert.
func UserTopic(user uuid.UUID) string { return userPrefix + user.String() }

// Authorizer answers whether a principal holds a permission, auditing a
// denial (auth.Service implements it). It returns auth.ErrForbidden (or
// another error) when not.
type Authorizer interface {
	Authorize(ctx context.Context, p auth.Principal, perm auth.Permission) error
}

// authorizeTopic checks that p may subscribe to topic, like the REST
// routes: owners their space, advertisers their ads, each user their own
// alerts, and staff (by permission) anyone's. It returns a *ProtocolError.
func authorizeTopic(ctx context.Context, az Authorizer, p auth.Principal, topic string) error {
	if topic == AlertsTopic {
		return nil
	}
	var own, other auth.Permission
	var rest string
	switch {
	case strings.HasPrefix(topic, spacePrefix):
		rest, own, other = topic[len(spacePrefix):], auth.PermAdSpace, auth.PermAnalyticsAll
	case strings.HasPrefix(topic, adsPrefix):
		rest, own, other = topic[len(adsPrefix):], auth.PermContentCreate, auth.PermContentModerate
	case strings.HasPrefix(topic, userPrefix):
		rest, own, other = topic[len(userPrefix):], auth.PermProfile, auth.PermUsersManage
	default:
		return protoErr("unknown_topic", "unknown topic %q: use space:<id>, ads:<id>, user:<id> or alerts", clip(topic))
	}
	id, err := uuid.Parse(rest)
	if err != nil || id.String() != rest {
		return protoErr("unknown_topic", "topic %q needs a lower-case UUID after the prefix", clip(topic))
	}
	perm := other
	if id == p.UserID {
		perm = own
	}
	if az == nil {
		return protoErr("forbidden_topic", "you may not subscribe to %q", topic)
	}
	if err := az.Authorize(ctx, p, perm); err != nil {
		return protoErr("forbidden_topic", "you may not subscribe to %q", topic)
	}
	return nil
}

// clip shortens client text quoted back in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
