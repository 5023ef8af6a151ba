package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/periodic"
	"github.com/adshare/adshare/internal/uuidv7"
)

// Defaults of Config.
const (
	DefaultRefreshInterval  = 5 * time.Second
	DefaultFrequencyCap     = 3
	DefaultPriorCTR         = 0.01
	DefaultPriorStrength    = 200
	DefaultPacingSlack      = 0.1
	maxKeywordBoostMatches  = 5
	keywordBoostPerMatch    = 0.1
	frequencyBackfillRounds = 3
)

// Config configures New.
type Config struct {
	// Inventory supplies candidates. Required.
	Inventory decision.Inventory
	// Stats supplies spend and delivery. Nil means none yet (every ad at
	// its prior, no spend).
	Stats decision.StatsSource
	// Frequency counts showings per viewer. Nil disables frequency caps.
	Frequency decision.FrequencyCounter
	// FrequencyCap is how often one viewer may be shown one ad within the
	// counter's window. Defaults to DefaultFrequencyCap.
	FrequencyCap int
	// RefreshInterval is how often inventory and stats are reread.
	// Defaults to DefaultRefreshInterval.
	RefreshInterval time.Duration
	// PriorCTR and PriorStrength shape the CTR prior (see the package doc).
	PriorCTR      float64
	PriorStrength float64
	// PacingSlack lets an ad run ahead of an even daily spend by this
	// fraction of its daily budget. Defaults to DefaultPacingSlack.
	PacingSlack float64
	// Logger defaults to discarding; Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

// Engine is the local Decider. Start it to refresh in the background, or
// call Refresh yourself; Decide refreshes synchronously if no snapshot
// exists yet.
type Engine struct {
	cfg  Config
	snap atomic.Pointer[snapshot]

	refreshMu sync.Mutex
	refresher *periodic.Task
}

var (
	_ decision.Decider   = (*Engine)(nil)
	_ decision.Immediate = (*Engine)(nil)
)

// New returns an engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Inventory == nil {
		return nil, errors.New("local: Config.Inventory is required (adspace.NewInventory over the content store)")
	}
	cfg.FrequencyCap = cmp.Or(cfg.FrequencyCap, DefaultFrequencyCap)
	cfg.RefreshInterval = cmp.Or(cfg.RefreshInterval, DefaultRefreshInterval)
	cfg.PriorCTR = cmp.Or(cfg.PriorCTR, DefaultPriorCTR)
	cfg.PriorStrength = cmp.Or(cfg.PriorStrength, DefaultPriorStrength)
	cfg.PacingSlack = cmp.Or(cfg.PacingSlack, DefaultPacingSlack)
	if cfg.PriorCTR <= 0 || cfg.PriorCTR >= 1 || cfg.PriorStrength <= 0 {
		return nil, errors.New("local: PriorCTR must be in (0, 1) and PriorStrength positive")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Engine{cfg: cfg}
	e.refresher = periodic.New(cfg.RefreshInterval, e.refreshInBackground)
	return e, nil
}

// Start refreshes the snapshot now and then every RefreshInterval until
// Stop. It returns the first refresh's error (the engine then keeps
// refreshing, and answers no fill until one succeeds), and an error after
// Stop.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.refresher.Start(ctx); err != nil {
		return fmt.Errorf("local: start: %w", err)
	}
	return e.Refresh(ctx)
}

// refreshInBackground is one refresh of the background loop.
func (e *Engine) refreshInBackground(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, e.cfg.RefreshInterval)
	defer cancel()
	if err := e.Refresh(rctx); err != nil {
		e.cfg.Logger.WarnContext(ctx, "local: refresh failed; keeping the previous snapshot", slog.Any("error", err))
	}
}

// Stop ends background refreshing. It is idempotent and safe before Start.
func (e *Engine) Stop(ctx context.Context) error { return e.refresher.Stop(ctx) }

// snapshot is an immutable view of inventory and stats.
type snapshot struct {
	at       time.Time
	byFormat map[string][]*candidate // each sorted by base eCPM, best first
}

type candidate struct {
	decision.Candidate
	stats    decision.AdStats
	base     float64 // eCPM micros without relevance
	keywords map[string]struct{}
}

// Refresh rereads inventory and stats into a new snapshot.
func (e *Engine) Refresh(ctx context.Context) error {
	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	now := e.cfg.Now()
	cands, err := e.cfg.Inventory.Candidates(ctx, now)
	if err != nil {
		return fmt.Errorf("local: inventory: %w", err)
	}
	var stats map[string]decision.AdStats
	if e.cfg.Stats != nil && len(cands) > 0 {
		ids := make([]string, len(cands))
		for i, c := range cands {
			ids[i] = c.ID
		}
		if stats, err = e.cfg.Stats.AdStats(ctx, ids, now); err != nil {
			return fmt.Errorf("local: stats: %w", err)
		}
	}
	s := &snapshot{at: now, byFormat: map[string][]*candidate{}}
	for _, c := range cands {
		cc := &candidate{Candidate: c, stats: stats[c.ID], keywords: make(map[string]struct{}, len(c.Keywords))}
		for _, k := range c.Keywords {
			cc.keywords[k] = struct{}{}
		}
		cc.base = e.ecpm(c.Bid, cc.stats)
		s.byFormat[c.Format] = append(s.byFormat[c.Format], cc)
	}
	for _, list := range s.byFormat {
		slices.SortFunc(list, func(a, b *candidate) int { return cmp.Compare(b.base, a.base) })
	}
	e.snap.Store(s)
	return nil
}

// ecpm is the expected revenue per thousand impressions, in micros.
func (e *Engine) ecpm(bid decision.Price, st decision.AdStats) float64 {
	switch bid.Model {
	case decision.CPM:
		return float64(bid.Micros)
	case decision.CPC:
		a := e.cfg.PriorCTR * e.cfg.PriorStrength
		b := (1 - e.cfg.PriorCTR) * e.cfg.PriorStrength
		clicks := float64(min(st.Clicks, st.Impressions))
		ctr := (clicks + a) / (float64(st.Impressions) + a + b)
		return float64(bid.Micros) * ctr * 1000
	}
	return 0
}

// Decide implements decision.Decider.
func (e *Engine) Decide(ctx context.Context, req decision.Request) (decision.Response, error) {
	if err := req.Validate(); err != nil {
		return decision.Response{}, err
	}
	if err := ctx.Err(); err != nil {
		return decision.Response{}, decision.ErrTimeout.WithCause(err)
	}
	snap := e.snap.Load()
	if snap == nil {
		if err := e.Refresh(ctx); err != nil {
			return decision.Response{}, decision.ErrUnavailable.WithCause(err)
		}
		snap = e.snap.Load()
	}
	now := req.Time
	if now.IsZero() {
		now = e.cfg.Now()
	}
	f := newFilter(req, now, e.cfg.PacingSlack)
	resp := decision.Response{UserKey: req.UserKey, Ads: make(map[string][]decision.Ad, len(req.Placements))}
	viewer := req.UserKey
	if e.cfg.Frequency == nil || !req.Consent.MayTrack() {
		viewer = ""
	}
	used := map[string]struct{}{} // ads already chosen for another placement
	for _, p := range req.Placements {
		picks, err := e.pick(ctx, snap, f, p, viewer, used)
		if err != nil {
			return decision.Response{}, err
		}
		ads := make([]decision.Ad, 0, len(picks))
		for _, c := range picks {
			used[c.ID] = struct{}{}
			ads = append(ads, decision.Ad{
				ID: uuidv7.New().String(), Source: "local",
				AdID: c.ID, CreativeID: c.ID, AdvertiserID: c.AdvertiserID,
				Creative: c.Creative, Categories: slices.Clone(c.Categories), Price: c.Bid,
			})
		}
		resp.Ads[p.ID] = ads
	}
	return resp, nil
}

// Immediate implements decision.Immediate: the engine answers from its
// snapshot in memory once it has one, without waiting, when its frequency
// counter does too (or it has none).
func (e *Engine) Immediate() bool {
	return e.snap.Load() != nil && (e.cfg.Frequency == nil || decision.IsImmediate(e.cfg.Frequency))
}

// pick chooses up to the placement's count, honouring frequency caps.
func (e *Engine) pick(ctx context.Context, snap *snapshot, f *filter, p decision.Placement, viewer string, used map[string]struct{}) ([]*candidate, error) {
	want := p.CountOrOne()
	capped := map[string]struct{}{}
	for range frequencyBackfillRounds {
		picks := e.rank(snap, f, p, want, used, capped)
		if viewer == "" || len(picks) == 0 {
			return picks, nil
		}
		ids := make([]string, len(picks))
		for i, c := range picks {
			ids[i] = c.ID
		}
		counts, err := e.cfg.Frequency.Counts(ctx, viewer, ids)
		if err != nil {
			// Fail open on the cap, not on the ad: log and serve.
			e.cfg.Logger.WarnContext(ctx, "local: frequency counter unavailable", slog.Any("error", err))
			return picks, nil
		}
		over := false
		for _, c := range picks {
			if counts[c.ID] >= e.cfg.FrequencyCap {
				capped[c.ID] = struct{}{}
				over = true
			}
		}
		if !over {
			if err := e.cfg.Frequency.Record(ctx, viewer, ids); err != nil {
				e.cfg.Logger.WarnContext(ctx, "local: frequency record failed", slog.Any("error", err))
			}
			return picks, nil
		}
	}
	return nil, nil
}

// rank returns the best `want` candidates for p, one per advertiser,
// scanning each format's list in base-score order and stopping as soon as
// no later candidate can beat the current picks even with the largest
// relevance boost.
func (e *Engine) rank(snap *snapshot, f *filter, p decision.Placement, want int, used, capped map[string]struct{}) []*candidate {
	type scored struct {
		c     *candidate
		score float64
	}
	best := make([]scored, 0, want+1)
	byAdvertiser := map[string]int{} // advertiser → index in best
	worst := func() float64 {
		if len(best) < want {
			return -1
		}
		return best[len(best)-1].score
	}
	for _, format := range p.Formats {
		for _, c := range snap.byFormat[format] {
			if c.base*f.maxBoost <= worst() {
				break // nothing further down this list can make the cut
			}
			if _, ok := used[c.ID]; ok {
				continue
			}
			if _, ok := capped[c.ID]; ok {
				continue
			}
			if !f.allows(c) {
				continue
			}
			score := c.base * f.boost(c)
			if i, ok := byAdvertiser[c.AdvertiserID]; ok {
				if best[i].score >= score {
					continue
				}
				best = slices.Delete(best, i, i+1)
			} else if len(best) == want && score <= worst() {
				continue
			}
			at, _ := slices.BinarySearchFunc(best, score, func(s scored, t float64) int { return cmp.Compare(t, s.score) })
			best = slices.Insert(best, at, scored{c, score})
			if len(best) > want {
				best = best[:want]
			}
			clear(byAdvertiser)
			for i, s := range best {
				byAdvertiser[s.c.AdvertiserID] = i
			}
		}
	}
	out := make([]*candidate, len(best))
	for i, s := range best {
		out[i] = s.c
	}
	return out
}
