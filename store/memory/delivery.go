package memory

import (
	"context"
	"sync"
	"time"

	"github.com/adshare/adshare/decision"
)

// FrequencyCounter counts showings per viewer and ad in fixed windows, in
// process: the embedded default of decision.FrequencyCounter. Entries whose
// window has passed are swept as the counter is used, so memory follows
// the number of active viewer-ad pairs.
type FrequencyCounter struct {
	// Now is the clock; tests may replace it before first use.
	Now func() time.Time

	window    time.Duration
	mu        sync.Mutex
	counts    map[string]frequencyEntry
	lastSweep time.Time
}

type frequencyEntry struct {
	count int
	start time.Time
}

var _ decision.FrequencyCounter = (*FrequencyCounter)(nil)

// NewFrequencyCounter counts within windows of the given length (an hour
// when zero).
func NewFrequencyCounter(window time.Duration) *FrequencyCounter {
	if window <= 0 {
		window = time.Hour
	}
	return &FrequencyCounter{Now: time.Now, window: window, counts: map[string]frequencyEntry{}}
}

func frequencyKey(viewer, id string) string { return viewer + "\x00" + id }

// Counts implements decision.FrequencyCounter.
func (f *FrequencyCounter) Counts(ctx context.Context, viewer string, ids []string) (map[string]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := f.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(ids))
	for _, id := range ids {
		if e, ok := f.counts[frequencyKey(viewer, id)]; ok && now.Sub(e.start) < f.window {
			out[id] = e.count
		}
	}
	return out, nil
}

// Record implements decision.FrequencyCounter.
func (f *FrequencyCounter) Record(ctx context.Context, viewer string, ids []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := f.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		k := frequencyKey(viewer, id)
		e := f.counts[k]
		if now.Sub(e.start) >= f.window {
			e = frequencyEntry{start: now}
		}
		e.count++
		f.counts[k] = e
	}
	if now.Sub(f.lastSweep) >= f.window {
		for k, e := range f.counts {
			if now.Sub(e.start) >= f.window {
				delete(f.counts, k)
			}
		}
		f.lastSweep = now
	}
	return nil
}

// AdStats keeps delivery per ad in process: spend by UTC day and in total,
// impressions and clicks. It is the embedded default of
// decision.StatsSource; the analytics pipeline records into it.
type AdStats struct {
	mu  sync.RWMutex
	ads map[string]*adDelivery
}

type adDelivery struct {
	day         time.Time // UTC midnight of SpentToday
	spentToday  int64
	spentTotal  int64
	impressions int64
	clicks      int64
}

var _ decision.StatsSource = (*AdStats)(nil)

// NewAdStats returns empty stats.
func NewAdStats() *AdStats { return &AdStats{ads: map[string]*adDelivery{}} }

// Record adds an event's delivery: impressions, clicks and spend at time at.
func (s *AdStats) Record(id string, impressions, clicks, spendMicros int64, at time.Time) {
	day := at.UTC().Truncate(24 * time.Hour)
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.ads[id]
	if d == nil {
		d = &adDelivery{day: day}
		s.ads[id] = d
	}
	if day.After(d.day) {
		d.day, d.spentToday = day, 0
	}
	if day.Equal(d.day) {
		d.spentToday += spendMicros
	}
	d.spentTotal += spendMicros
	d.impressions += impressions
	d.clicks += clicks
}

// AdStats implements decision.StatsSource.
func (s *AdStats) AdStats(ctx context.Context, ids []string, day time.Time) (map[string]decision.AdStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	today := day.UTC().Truncate(24 * time.Hour)
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]decision.AdStats, len(ids))
	for _, id := range ids {
		d, ok := s.ads[id]
		if !ok {
			continue
		}
		st := decision.AdStats{SpentTotalMicros: d.spentTotal, Impressions: d.impressions, Clicks: d.clicks}
		if d.day.Equal(today) {
			st.SpentTodayMicros = d.spentToday
		}
		out[id] = st
	}
	return out, nil
}
