package local

import (
	"slices"
	"time"

	"github.com/adshare/adshare/decision"
)

// filter holds one request's exclusions as sets, and the pacing state.
type filter struct {
	now            time.Time
	dayFraction    float64
	slack          float64
	advertisers    stringSet
	creatives      stringSet
	categories     stringSet
	blockedWords   stringSet
	requestKeyword []string
	// maxBoost is the largest relevance boost this request can give.
	maxBoost float64
}

// stringSet answers whether a string is in a list: by scanning the list
// while it is as short as a request's usually are (none, or the owner's
// own id), which costs a fill no allocation, and through a map past
// smallSet entries.
type stringSet struct {
	list []string
	m    map[string]struct{}
}

// smallSet is the longest list a stringSet scans.
const smallSet = 8

func newStringSet(ss []string) stringSet {
	if len(ss) <= smallSet {
		return stringSet{list: ss}
	}
	m := make(map[string]struct{}, len(ss))
	for _, s := range ss {
		m[s] = struct{}{}
	}
	return stringSet{m: m}
}

func (s stringSet) has(x string) bool {
	if s.m != nil {
		_, ok := s.m[x]
		return ok
	}
	return slices.Contains(s.list, x)
}

func newFilter(req decision.Request, now time.Time, slack float64) *filter {
	midnight := now.UTC().Truncate(24 * time.Hour)
	return &filter{
		now:            now,
		dayFraction:    float64(now.UTC().Sub(midnight)) / float64(24*time.Hour),
		slack:          slack,
		advertisers:    newStringSet(req.Exclude.Advertisers),
		creatives:      newStringSet(req.Exclude.Creatives),
		categories:     newStringSet(req.Exclude.Categories),
		blockedWords:   newStringSet(req.Exclude.Keywords),
		requestKeyword: req.Keywords,
		maxBoost:       1 + float64(min(len(req.Keywords), maxKeywordBoostMatches))*keywordBoostPerMatch,
	}
}

// allows applies the schedule, the owner's exclusions and the budgets.
func (f *filter) allows(c *candidate) bool {
	if f.now.Before(c.Start) || (!c.End.IsZero() && !f.now.Before(c.End)) {
		return false
	}
	if f.advertisers.has(c.AdvertiserID) || f.creatives.has(c.ID) ||
		slices.ContainsFunc(c.Categories, f.categories.has) || slices.ContainsFunc(c.Keywords, f.blockedWords.has) {
		return false
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
