package memory

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/adshare/adshare/decision"
)

// FrequencyCounter counts showings per viewer and ad in fixed windows, in
// process: the embedded default of decision.FrequencyCounter. Entries whose
// window has passed are swept as the counter is used, so memory follows
// the number of active viewer-ad pairs. Counts are kept per viewer (a
// short list of their ads), so a fill costs one map lookup whatever the
// number of ads it asks about.
type FrequencyCounter struct {
	// Now is the clock; tests may replace it before first use.
	Now func() time.Time

	window    time.Duration
	mu        sync.Mutex
	viewers   map[string][]frequencyEntry
	lastSweep time.Time
}

// frequencyEntry counts one ad's showings to one viewer in the window
// that started at start.
type frequencyEntry struct {
	id    string
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
	return &FrequencyCounter{Now: time.Now, window: window, viewers: map[string][]frequencyEntry{}}
}

// Counts implements decision.FrequencyCounter.
func (f *FrequencyCounter) Counts(ctx context.Context, viewer string, ids []string) (map[string]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := f.Now()
	out := make(map[string]int, len(ids))
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.viewers[viewer] {
		if now.Sub(e.start) < f.window && slices.Contains(ids, e.id) {
			out[e.id] = e.count
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
	entries := f.viewers[viewer]
	for _, id := range ids {
		i := slices.IndexFunc(entries, func(e frequencyEntry) bool { return e.id == id })
		if i < 0 {
			entries = append(entries, frequencyEntry{id: id, start: now})
			i = len(entries) - 1
		} else if now.Sub(entries[i].start) >= f.window {
			entries[i] = frequencyEntry{id: id, start: now}
		}
		entries[i].count++
	}
	f.viewers[viewer] = entries
	if now.Sub(f.lastSweep) >= f.window {
		for v, entries := range f.viewers {
			entries = slices.DeleteFunc(entries, func(e frequencyEntry) bool { return now.Sub(e.start) >= f.window })
			if len(entries) == 0 {
				delete(f.viewers, v)
			} else {
				f.viewers[v] = entries
			}
		}
		f.lastSweep = now
	}
	return nil
}
