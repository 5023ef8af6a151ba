package analytics

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"
)

// BurstCounter keeps the counts behind the burst rules: how many accepted
// events each viewer and each client network made, per type and per
// minute in which they occurred. store/redis shares them between
// instances; store/memory keeps them in the process.
type BurstCounter interface {
	// Counts returns the count of each key (0 for a key never added or
	// expired).
	Counts(ctx context.Context, keys []BurstKey) ([]int64, error)
	// Add adds one to each key (a key listed twice gets two) and keeps
	// each for at least ttl.
	Add(ctx context.Context, keys []BurstKey, ttl time.Duration) error
}

// BurstKey names one count: Window is the span and population counted
// together (viewers' or networks' events of one type in one minute),
// Member whose count it is within it. A store may keep a window's counts
// together (store/redis keeps each window in a few hashes rather than a
// key per viewer, so the key space stays small however many viewers
// there are).
type BurstKey struct {
	Window string
	Member string
}

// burstWindow is the span the burst limits count in, by when events
// occurred on the device: an app that sends a morning's events in one
// batch is judged by the minutes they happened in, not by the one moment
// they arrived.
const burstWindow = time.Minute

// burstKeyTTL is how long a window's count is kept: events reported later
// than that (long-offline apps) start a fresh count for their window.
const burstKeyTTL = 15 * time.Minute

// burstKeys are the counter keys of an event: its viewer's and its client
// network's, for its type and the minute it occurred in. Either is the
// zero key when the event has no viewer key (no consent) or no network.
func burstKeys(e *Event) (viewer, network BurstKey) {
	window := string(e.Type) + ":" + strconv.FormatInt(e.OccurredAt.UTC().Truncate(burstWindow).Unix(), 10)
	if e.Ad.ViewerKey != "" {
		viewer = BurstKey{Window: "v:" + window, Member: e.Ad.ViewerKey}
	}
	if e.ClientPrefix != "" {
		network = BurstKey{Window: "n:" + window, Member: e.ClientPrefix}
	}
	return viewer, network
}

// judgeBursts applies the burst rules, last of all rules, to the events
// of one group commit still valid, in place: one is flagged when its
// viewer (RuleViewerBurst) or its network (RuleIPBurst) already has its
// limit's worth of events in the event's minute, counting those accepted
// before (from the counter) and the earlier ones of this group that pass.
// A flagged event costs nothing. Only events that pass count, and they are
// added to the counter after commit, only when new (see countBursts): a
// retry never spends an allowance twice.
//
// Judging a whole group at once costs one counter round trip per commit
// rather than per request, and catches a burst a viewer spreads over
// concurrent requests within the group; only groups committed side by
// side (when the queue backs up, see internal/batch) see the counts from
// before each other, so such a burst is caught up to a group late. A
// counter that fails or is slow (withinBudget) lets the events pass:
// bursts are a heuristic, and failing closed would cost every owner their
// earnings while Redis is down.
func (s *Service) judgeBursts(ctx context.Context, pending []*pendingWrite) {
	if s.cfg.Bursts == nil {
		return
	}
	var keys []BurstKey
	for _, p := range pending {
		keys = appendBurstKeys(keys, p.events, nil)
	}
	if len(keys) == 0 {
		return
	}
	counts := make(map[BurstKey]int64, len(keys))
	unique := keys[:0] // a network's key is listed once per event
	for _, k := range keys {
		if _, ok := counts[k]; !ok {
			counts[k] = 0
			unique = append(unique, k)
		}
	}
	stored, err := withinBudget(ctx, func(ctx context.Context) ([]int64, error) { return s.cfg.Bursts.Counts(ctx, unique) })
	if err != nil || len(stored) != len(unique) {
		s.logger.WarnContext(ctx, "analytics: burst counts unavailable; judging this group on its own", slog.Any("error", err))
		stored = nil
	}
	for i, n := range stored {
		counts[unique[i]] = n
	}
	limits := s.cfg.Filters
	for _, p := range pending {
		for i := range p.events {
			e := &p.events[i]
			if !e.Valid {
				continue
			}
			v, n := burstKeys(e)
			switch {
			case v != (BurstKey{}) && counts[v] >= int64(limits.ViewerPerMinute):
				e.flag(RuleViewerBurst)
			case n != (BurstKey{}) && counts[n] >= int64(limits.NetworkPerMinute):
				e.flag(RuleIPBurst)
			default:
				counts[v]++
				counts[n]++
			}
		}
	}
}

// countBursts adds the group's new events that passed the burst rules to
// the counter, in one call. A failure is logged: the counts run low for a
// minute, nothing else.
func (s *Service) countBursts(ctx context.Context, pending []*pendingWrite) {
	if s.cfg.Bursts == nil {
		return
	}
	var keys []BurstKey
	for _, p := range pending {
		keys = appendBurstKeys(keys, p.events, p.isNew)
	}
	if len(keys) == 0 {
		return
	}
	if _, err := withinBudget(ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.cfg.Bursts.Add(ctx, keys, burstKeyTTL)
	}); err != nil {
		s.logger.WarnContext(ctx, "analytics: burst counts not added", slog.Any("error", err))
	}
}

// appendBurstKeys appends the burst keys of the valid events to keys and
// returns the extended slice; with isNew, only of the events it marks new.
func appendBurstKeys(keys []BurstKey, events []Event, isNew []bool) []BurstKey {
	for i := range events {
		if !events[i].Valid || isNew != nil && !isNew[i] {
			continue
		}
		v, n := burstKeys(&events[i])
		if v != (BurstKey{}) {
			keys = append(keys, v)
		}
		if n != (BurstKey{}) {
			keys = append(keys, n)
		}
	}
	return keys
}

// sideCallBudget bounds each call a group commit makes to the burst
// counter and to Live. They run inside the flush that every waiting
// request depends on, so a store that hangs (a Redis partitioned away
// answers nothing until its client's timeouts and retries run out, which
// is seconds) must cost a flush this much at most; the rules fail open.
const sideCallBudget = 100 * time.Millisecond

// errOverBudget reports a side call that did not answer within
// sideCallBudget.
var errOverBudget = errors.New("analytics: no answer within the budget")

// withinBudget runs call and waits for its answer at most sideCallBudget.
// A call still running then carries on in the background, its context
// cancelled, until its client gives up, and its answer is dropped; the
// caller goes on without it.
func withinBudget[T any](ctx context.Context, call func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, sideCallBudget)
	defer cancel()
	type answer struct {
		v   T
		err error
	}
	done := make(chan answer, 1) // buffered: an abandoned call never blocks
	go func() {
		v, err := call(ctx)
		done <- answer{v, err}
	}()
	select {
	case a := <-done:
		return a.v, a.err
	case <-ctx.Done():
		var zero T
		return zero, errOverBudget
	}
}
