package adspace

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/decision"
)

// Funding says which advertisers' budgets still cover more spend;
// billing.Service implements it. A fill serves no user-created ad of an
// advertiser who is not funded.
type Funding interface {
	// Funded reports, per advertiser, whether their budget covers more
	// spend. An error makes the fill serve the ads anyway (fail open: the
	// overshoot is bounded, and settlement books it as unfunded).
	Funded(ctx context.Context, advertisers []uuid.UUID) (map[uuid.UUID]bool, error)
}

// fundingTTL is how long an advertiser's funding is believed: an
// advertiser whose budget runs out is served at most this much longer.
const fundingTTL = 15 * time.Second

// fundingCache keeps advertisers' funding for fundingTTL, so that a fill
// costs no lookup when warm.
type fundingCache struct {
	source Funding
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	entries map[uuid.UUID]fundingEntry
}

type fundingEntry struct {
	funded  bool
	fetched time.Time
}

// filter drops the user-created ads of advertisers that are not funded.
func (c *fundingCache) filter(ctx context.Context, ads []decision.Ad) []decision.Ad {
	if c == nil || len(ads) == 0 {
		return ads
	}
	now := c.now()
	want := map[uuid.UUID]bool{}
	var missing []uuid.UUID
	c.mu.Lock()
	for _, ad := range ads {
		adv, ok := localAdvertiser(ad)
		if !ok {
			continue
		}
		e, ok := c.entries[adv]
		if ok && now.Sub(e.fetched) < fundingTTL {
			want[adv] = e.funded
		} else if _, seen := want[adv]; !seen {
			want[adv] = true // until answered
			missing = append(missing, adv)
		}
	}
	c.mu.Unlock()
	if len(missing) > 0 {
		got, err := c.source.Funded(ctx, missing)
		if err != nil {
			c.logger.WarnContext(ctx, "adspace: funding unknown; serving the ads", slog.Any("error", err))
		} else {
			c.mu.Lock()
			if len(c.entries) > 100_000 {
				clear(c.entries)
			}
			for _, adv := range missing {
				want[adv] = got[adv]
				c.entries[adv] = fundingEntry{funded: got[adv], fetched: now}
			}
			c.mu.Unlock()
		}
	}
	out := ads[:0]
	for _, ad := range ads {
		if adv, ok := localAdvertiser(ad); ok && !want[adv] {
			continue
		}
		out = append(out, ad)
	}
	return out
}

// localAdvertiser is the advertiser of a user-created ad.
func localAdvertiser(ad decision.Ad) (uuid.UUID, bool) {
	if ad.Source != "local" {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(ad.AdvertiserID)
	return id, err == nil
}
