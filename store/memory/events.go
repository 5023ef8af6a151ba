package memory

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/store/internal/rollup"
)

var _ analytics.Store = (*Store)(nil)

// eventState is the analytics part of the store. It keeps what reads and
// deduplication need, not the events themselves: every event key ever
// written (forever: memory grows with the number of distinct events, as
// deduplication must remember them all), each impression's time, and the
// rollup rows (which grow with hours × owners × ads). Nothing is evicted;
// a process that must run for long under heavy traffic wants
// store/postgres, which partitions events by day and drops old days.
type eventState struct {
	mu          sync.RWMutex
	keys        map[analytics.EventKey]analytics.Verdict
	impressions map[uuid.UUID]impression
	rows        map[rollup.Key]*analytics.Counts
	invalid     map[rollup.InvalidKey]int64
	ads         map[string]rollup.AdRow
}

// impression is when a token was issued and when its impression occurred.
type impression struct {
	issued, occurred time.Time
}

func newEventState() eventState {
	return eventState{
		keys:        map[analytics.EventKey]analytics.Verdict{},
		impressions: map[uuid.UUID]impression{},
		rows:        map[rollup.Key]*analytics.Counts{},
		invalid:     map[rollup.InvalidKey]int64{},
		ads:         map[string]rollup.AdRow{},
	}
}

// WriteEvents implements analytics.Store. A batch that breaks a storage
// rule (see store/postgres) is refused whole with
// analytics.ErrInvalidReport, as PostgreSQL refuses it.
func (s *Store) WriteEvents(ctx context.Context, events []analytics.Event) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	isNew := make([]bool, len(events))
	if len(events) == 0 {
		return isNew, nil
	}
	if err := rollup.CheckEvents(events); err != nil {
		return nil, err
	}
	unique := rollup.Unique(events)
	st := &s.events
	st.mu.Lock()
	defer st.mu.Unlock()
	fresh := make([]analytics.Event, 0, len(unique))
	for _, i := range unique {
		e := events[i]
		if _, dup := st.keys[e.Key()]; dup {
			continue
		}
		st.keys[e.Key()] = analytics.Verdict{Valid: e.Valid, Rule: e.Rule, SpendMicros: e.SpendMicros}
		isNew[i] = true
		if e.Type == analytics.Impression { // new, so the token's only one
			st.impressions[e.TrackingID] = impression{issued: rollup.Micro(e.Ad.IssuedAt), occurred: rollup.Micro(e.OccurredAt)}
		}
		fresh = append(fresh, e)
	}
	d := rollup.Fold(fresh)
	for _, r := range d.Rows {
		st.add(r)
	}
	for _, r := range d.Invalid {
		st.invalid[r.InvalidKey] += r.Count
	}
	for _, a := range d.Ads {
		if cur, ok := st.ads[a.AdID]; ok {
			a = cur.Merge(a)
		}
		st.ads[a.AdID] = a
	}
	return isNew, nil
}

func (st *eventState) add(r rollup.Row) {
	c := st.rows[r.Key]
	if c == nil {
		c = &analytics.Counts{}
		st.rows[r.Key] = c
	}
	c.Add(r.Counts)
}

// ImpressionTimes implements analytics.Store.
func (s *Store) ImpressionTimes(ctx context.Context, ads []analytics.ServedAd) (map[uuid.UUID]time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := &s.events
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make(map[uuid.UUID]time.Time, len(ads))
	for _, ad := range ads {
		if imp, ok := st.impressions[ad.TrackingID]; ok && imp.issued.Equal(rollup.Micro(ad.IssuedAt)) {
			out[ad.TrackingID] = imp.occurred
		}
	}
	return out, nil
}

// Verdicts implements analytics.Store.
func (s *Store) Verdicts(ctx context.Context, events []analytics.Event) (map[analytics.EventKey]analytics.Verdict, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := &s.events
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make(map[analytics.EventKey]analytics.Verdict, len(events))
	for _, e := range events {
		if v, ok := st.keys[e.Key()]; ok {
			out[e.Key()] = v
		}
	}
	return out, nil
}

// RecordFills implements analytics.Store. Negative counts, or more filled
// than requested, are refused with analytics.ErrInvalidReport.
func (s *Store) RecordFills(ctx context.Context, fills []analytics.FillCount) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rows, err := rollup.FillRows(fills)
	if err != nil {
		return err
	}
	st := &s.events
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, r := range rows {
		st.add(r)
	}
	return nil
}

// reportKey is one report row's bucket and group.
type reportKey struct {
	bucket     time.Time
	owner      uuid.UUID
	adKey      string
	advertiser string
}

// Report implements analytics.Store. It scans every rollup row, so its cost
// grows with the rollups kept.
func (s *Store) Report(ctx context.Context, q analytics.Query) ([]analytics.Row, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q, g, err := rollup.CheckQuery(q)
	if err != nil {
		return nil, err
	}
	out := []analytics.Row{}
	if !q.From.Before(q.To) {
		return out, nil
	}
	keyOf := func(k rollup.Key) (reportKey, bool) {
		if k.Hour.Before(q.From) || !k.Hour.Before(q.To) ||
			q.Owner != uuid.Nil && k.Owner != q.Owner ||
			q.Advertiser != "" && k.Advertiser != q.Advertiser {
			return reportKey{}, false
		}
		rk := reportKey{bucket: rollup.Bucket(k.Hour, q.Granularity, q.Location)}
		if g.Owner {
			rk.owner = k.Owner
		}
		if g.Ad {
			rk.adKey = k.AdKey
		}
		if g.Advertiser {
			rk.advertiser = k.Advertiser
		}
		return rk, true
	}

	st := &s.events
	st.mu.RLock()
	defer st.mu.RUnlock()
	groups := map[reportKey]*analytics.Row{}
	for k, c := range st.rows {
		rk, ok := keyOf(k)
		if !ok {
			continue
		}
		r := groups[rk]
		if r == nil {
			r = &analytics.Row{Bucket: rk.bucket, Owner: rk.owner, AdKey: rk.adKey, AdvertiserID: rk.advertiser}
			groups[rk] = r
		}
		r.Counts.Add(*c)
	}
	for k, n := range st.invalid {
		rk, ok := keyOf(k.Key)
		if !ok {
			continue
		}
		if r := groups[rk]; r != nil { // every invalid event has its row
			if r.InvalidByRule == nil {
				r.InvalidByRule = map[string]int64{}
			}
			r.InvalidByRule[k.Rule] += n
		}
	}
	for _, r := range groups {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b analytics.Row) int {
		return cmp.Or(a.Bucket.Compare(b.Bucket), bytes.Compare(a.Owner[:], b.Owner[:]),
			strings.Compare(a.AdKey, b.AdKey), strings.Compare(a.AdvertiserID, b.AdvertiserID))
	})
	return out, nil
}

// AdStats implements analytics.Store and decision.StatsSource from
// per-ad totals kept as events are written (never from the rollups). The
// spend of a day other than the latest day with spend reads as zero.
func (s *Store) AdStats(ctx context.Context, ids []string, day time.Time) (map[string]decision.AdStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	today := rollup.Day(day)
	st := &s.events
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make(map[string]decision.AdStats, len(ids))
	for _, id := range ids {
		a, ok := st.ads[id]
		if !ok {
			continue
		}
		stats := decision.AdStats{SpentTotalMicros: a.TotalSpend, Impressions: a.Impressions, Clicks: a.Clicks}
		if a.Day.Equal(today) {
			stats.SpentTodayMicros = a.DaySpend
		}
		out[id] = stats
	}
	return out, nil
}
