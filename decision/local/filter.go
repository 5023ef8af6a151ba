package local

import (
	"time"

	"github.com/adshare/adshare/decision"
)

// filter holds one request's exclusions as sets, and the pacing state.
type filter struct {
	now            time.Time
	dayFraction    float64
	slack          float64
	advertisers    map[string]struct{}
	creatives      map[string]struct{}
	categories     map[string]struct{}
	blockedWords   map[string]struct{}
	keywords       map[string]struct{}
	requestKeyword []string
	// maxBoost is the largest relevance boost this request can give.
	maxBoost float64
}

func set(ss []string) map[string]struct{} {
	m := make(map[string]struct{}, len(ss))
	for _, s := range ss {
		m[s] = struct{}{}
	}
	return m
}

func newFilter(req decision.Request, now time.Time, slack float64) *filter {
	midnight := now.UTC().Truncate(24 * time.Hour)
	return &filter{
		now:            now,
		dayFraction:    float64(now.UTC().Sub(midnight)) / float64(24*time.Hour),
		slack:          slack,
		advertisers:    set(req.Exclude.Advertisers),
		creatives:      set(req.Exclude.Creatives),
		categories:     set(req.Exclude.Categories),
		blockedWords:   set(req.Exclude.Keywords),
		keywords:       set(req.Keywords),
		requestKeyword: req.Keywords,
		maxBoost:       1 + float64(min(len(req.Keywords), maxKeywordBoostMatches))*keywordBoostPerMatch,
	}
}

// allows applies the schedule, the owner's exclusions and the budgets.
func (f *filter) allows(c *candidate) bool {
	if f.now.Before(c.Start) || (!c.End.IsZero() && !f.now.Before(c.End)) {
		return false
	}
	if _, ok := f.advertisers[c.AdvertiserID]; ok {
		return false
	}
	if _, ok := f.creatives[c.ID]; ok {
		return false
	}
	for _, cat := range c.Categories {
		if _, ok := f.categories[cat]; ok {
			return false
		}
	}
	for _, k := range c.Keywords {
		if _, ok := f.blockedWords[k]; ok {
			return false
		}
	}
	// One more event must fit the remaining budget.
	unit := c.Bid.Micros
	if c.Bid.Model == decision.CPM {
		unit = (c.Bid.Micros + 999) / 1000
	}
	if c.stats.SpentTotalMicros+unit > c.TotalBudgetMicros {
		return false
	}
	if c.DailyBudgetMicros > 0 {
		if c.stats.SpentTodayMicros+unit > c.DailyBudgetMicros {
			return false
		}
		// Even pacing: by this time of day, spend at most this share.
		allowed := float64(c.DailyBudgetMicros) * min(1, f.dayFraction+f.slack)
		if float64(c.stats.SpentTodayMicros) >= allowed {
			return false
		}
	}
	return true
}

// boost raises the score of ads that share keywords with the request.
func (f *filter) boost(c *candidate) float64 {
	if len(f.requestKeyword) == 0 || len(c.keywords) == 0 {
		return 1
	}
	matches := 0
	for _, k := range f.requestKeyword {
		if _, ok := c.keywords[k]; ok {
			matches++
			if matches == maxKeywordBoostMatches {
				break
			}
		}
	}
	return 1 + float64(matches)*keywordBoostPerMatch
}
