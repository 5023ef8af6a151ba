package memory

import (
	"context"
	"hash/maphash"
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
// number of ads it asks about. Viewers are spread over shards with a lock
// each, so that concurrent fills of different viewers do not wait on one
// another.
type FrequencyCounter struct {
	// Now is the clock; tests may replace it before first use.
	Now func() time.Time

	window time.Duration
	seed   maphash.Seed
	shards [frequencyShards]frequencyShard
}

// frequencyShards is how many locks a FrequencyCounter spreads its
// viewers over: enough that the fills of two cores rarely meet.
const frequencyShards = 64

// frequencyShard is the counts of the viewers that hash to it.
type frequencyShard struct {
	mu        sync.Mutex
	viewers   map[string][]frequencyEntry
	lastSweep time.Time
	_         [40]byte // a cache line of its own
}

// frequencyEntry counts one ad's showings to one viewer in the window
// that started at start.
type frequencyEntry struct {
	id    string
	count int
	start time.Time
}

var (
	_ decision.FrequencyCounter = (*FrequencyCounter)(nil)
	_ decision.Immediate        = (*FrequencyCounter)(nil)
)

// Immediate implements decision.Immediate: counts are in process.
func (f *FrequencyCounter) Immediate() bool { return true }

// NewFrequencyCounter counts within windows of the given length (an hour
// when zero).
func NewFrequencyCounter(window time.Duration) *FrequencyCounter {
	if window <= 0 {
		window = time.Hour
	}
	f := &FrequencyCounter{Now: time.Now, window: window, seed: maphash.MakeSeed()}
	for i := range f.shards {
		f.shards[i].viewers = map[string][]frequencyEntry{}
	}
	return f
}

// shard returns the shard viewer's counts are in.
func (f *FrequencyCounter) shard(viewer string) *frequencyShard {
	return &f.shards[maphash.String(f.seed, viewer)%frequencyShards]
}

// Counts implements decision.FrequencyCounter.
func (f *FrequencyCounter) Counts(ctx context.Context, viewer string, ids []string) (map[string]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := f.Now()
	out := make(map[string]int, len(ids))
	sh := f.shard(viewer)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, e := range sh.viewers[viewer] {
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
	sh := f.shard(viewer)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	entries := sh.viewers[viewer]
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
	sh.viewers[viewer] = entries
	if now.Sub(sh.lastSweep) >= f.window {
		for v, entries := range sh.viewers {
			entries = slices.DeleteFunc(entries, func(e frequencyEntry) bool { return now.Sub(e.start) >= f.window })
			if len(entries) == 0 {
				delete(sh.viewers, v)
			} else {
				sh.viewers[v] = entries
			}
		}
		sh.lastSweep = now
	}
	return nil
}
