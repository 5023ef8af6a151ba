package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/adshare/adshare/analytics"
)

// LiveCounters keeps today's running figures per ad space owner in Redis,
// bumped as events are accepted (analytics.Live), for dashboards and the
// realtime channel: impressions, valid impressions, clicks and estimated
// earnings per owner per UTC day. Each day's hash expires after two days.
type LiveCounters struct {
	rdb    goredis.UniversalClient
	prefix string
	logger *slog.Logger
}

var _ analytics.Live = (*LiveCounters)(nil)

// LiveCounters returns the live counters on this client; logger may be nil.
func (c *Client) LiveCounters(logger *slog.Logger) *LiveCounters {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &LiveCounters{rdb: c.rdb, prefix: c.prefix + "live:", logger: logger}
}

func (l *LiveCounters) key(owner uuid.UUID, day time.Time) string {
	return l.prefix + owner.String() + ":" + day.UTC().Format("20060102")
}

// Accepted implements analytics.Live: the events' figures are summed per
// owner and day first, so a group commit costs one pipeline of a few
// commands per owner, however many events it holds. A failure is logged:
// the events are stored regardless, and reports read the rollups.
func (l *LiveCounters) Accepted(ctx context.Context, events []analytics.Event) {
	sums := map[string]*LiveFigures{}
	var keys []string // in first-seen order
	for _, e := range events {
		k := l.key(e.Ad.Owner, e.OccurredAt)
		f := sums[k]
		if f == nil {
			f = &LiveFigures{}
			sums[k] = f
			keys = append(keys, k)
		}
		switch e.Type {
		case analytics.Impression:
			f.Impressions++
			if e.Valid {
				f.ValidImpressions++
			}
		case analytics.Click:
			f.Clicks++
		}
		f.EarningsMicros += e.OwnerEarningsMicros
	}
	_, err := l.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range keys {
			f := sums[k]
			for _, field := range []struct {
				name string
				n    int64
			}{{"impressions", f.Impressions}, {"valid_impressions", f.ValidImpressions}, {"clicks", f.Clicks}, {"earnings_micros", f.EarningsMicros}} {
				if field.n > 0 {
					p.HIncrBy(ctx, k, field.name, field.n)
				}
			}
			p.Expire(ctx, k, 48*time.Hour)
		}
		return nil
	})
	if err != nil {
		l.logger.WarnContext(ctx, "redis: live counters not bumped", slog.Any("error", err))
	}
}

// LiveFigures are an owner's running figures for one day.
type LiveFigures struct {
	Impressions      int64
	ValidImpressions int64
	Clicks           int64
	EarningsMicros   int64
}

// Today returns the owner's figures for the UTC day containing day.
func (l *LiveCounters) Today(ctx context.Context, owner uuid.UUID, day time.Time) (LiveFigures, error) {
	m, err := l.rdb.HGetAll(ctx, l.key(owner, day)).Result()
	if err != nil {
		return LiveFigures{}, fmt.Errorf("redis: live counters: %w", err)
	}
	n := func(f string) int64 {
		v, _ := strconv.ParseInt(m[f], 10, 64)
		return v
	}
	return LiveFigures{Impressions: n("impressions"), ValidImpressions: n("valid_impressions"), Clicks: n("clicks"), EarningsMicros: n("earnings_micros")}, nil
}
