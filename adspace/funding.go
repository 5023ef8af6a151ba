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
	// spend. An error makes the fill go on with the last answer, and serve
	// the ads of an advertiser never answered (fail open: the overshoot is
	// bounded, and settlement books it as unfunded).
	Funded(ctx context.Context, advertisers []uuid.UUID) (map[uuid.UUID]bool, error)
}

// fundingTTL is how long an advertiser's funding is believed: an
// advertiser whose budget runs out is served at most this much longer.
// fundingLookupTimeout bounds a lookup made for a fill, and fundingRetry
// is how long the last answer (for an advertiser never answered: funded)
// holds after a lookup failed, so that a failing ledger is asked again
// each second, not by every fill.
const (
	fundingTTL           = 15 * time.Second
	fundingLookupTimeout = 500 * time.Millisecond
	fundingRetry         = time.Second
	maxFundingEntries    = 100_000
)

// fundingCache keeps advertisers' funding for fundingTTL, so that a fill
// costs no lookup when warm. Fills read it under a shared lock; the one
// fill that finds an entry due claims its refresh, and the others go on
// with the value at hand meanwhile (stale while revalidating). A failed
// lookup leaves the last answer in place: an advertiser known to be out
// of budget stays unserved while the ledger cannot answer.
type fundingCache struct {
	source Funding
	logger *slog.Logger
	now    func() time.Time

	mu      sync.RWMutex
	entries map[uuid.UUID]fundingEntry
}

type fundingEntry struct {
	funded  bool
	expires time.Time // when it is next looked up
}

// verdict is one advertiser's funding as a fill sees it.
type verdict struct {
	advertiser uuid.UUID
	funded     bool
}

// verdictOf finds adv in vs (a fill has a handful of advertisers).
func verdictOf(vs []verdict, adv uuid.UUID) int {
	for i := range vs {
		if vs[i].advertiser == adv {
			return i
		}
	}
	return -1
}

// filter drops the user-created ads of advertisers that are not funded,
// without writing ads (see keepAds).
func (c *fundingCache) filter(ctx context.Context, ads []decision.Ad) []decision.Ad {
	if c == nil || len(ads) == 0 {
		return ads
	}
	now := c.now()
	var stack [16]verdict
	vs, due := stack[:0], false
	c.mu.RLock()
	for i := range ads {
		adv, ok := localAdvertiser(&ads[i])
		if !ok || verdictOf(vs, adv) >= 0 {
			continue
		}
		e, ok := c.entries[adv]
		vs = append(vs, verdict{advertiser: adv, funded: !ok || e.funded}) // unknown: funded until answered
		due = due || !ok || !now.Before(e.expires)
	}
	c.mu.RUnlock()
	if due {
		c.refresh(ctx, now, vs)
	}
	return keepAds(ads, func(ad *decision.Ad) bool {
		adv, ok := localAdvertiser(ad)
		return !ok || vs[verdictOf(vs, adv)].funded
	})
}

// refresh looks up the advertisers of vs whose entries are due and no
// other fill is refreshing, and writes the answers into vs and the cache.
func (c *fundingCache) refresh(ctx context.Context, now time.Time, vs []verdict) {
	var claimed []uuid.UUID
	c.mu.Lock()
	if len(c.entries) > maxFundingEntries {
		clear(c.entries)
	}
	for _, v := range vs {
		if e, ok := c.entries[v.advertiser]; !ok || !now.Before(e.expires) {
			// Claimed: fills meanwhile use the value at hand.
			c.entries[v.advertiser] = fundingEntry{funded: v.funded, expires: now.Add(fundingLookupTimeout)}
			claimed = append(claimed, v.advertiser)
		}
	}
	c.mu.Unlock()
	if len(claimed) == 0 {
		return
	}
	lookupCtx, cancel := context.WithTimeout(ctx, fundingLookupTimeout)
	got, err := c.source.Funded(lookupCtx, claimed)
	cancel()
	c.mu.Lock()
	for _, adv := range claimed {
		i := verdictOf(vs, adv)
		if err == nil {
			vs[i].funded = got[adv]
			c.entries[adv] = fundingEntry{funded: got[adv], expires: now.Add(fundingTTL)}
		} else {
			c.entries[adv] = fundingEntry{funded: vs[i].funded, expires: now.Add(fundingRetry)}
		}
	}
	c.mu.Unlock()
	if err != nil {
		c.logger.WarnContext(ctx, "adspace: funding lookup failed; serving on the last answer (unknown: funded)",
			slog.Int("advertisers", len(claimed)), slog.Any("error", err))
	}
}

// localAdvertiser is the advertiser of a user-created ad.
func localAdvertiser(ad *decision.Ad) (uuid.UUID, bool) {
	if ad.Source != "local" {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(ad.AdvertiserID)
	return id, err == nil
}
