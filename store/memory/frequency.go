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
