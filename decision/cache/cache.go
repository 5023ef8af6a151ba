package cache

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/tracing"
)

// Defaults and limits of Config.
const (
	// DefaultTTL is how long a pooled ad may wait to be handed out.
	DefaultTTL = 60 * time.Second
	// MaxTTL bounds Config.TTL and Config.NegativeTTL: pooled decisions go
	// stale for pacing and targeting long before their tracking URLs
	// expire (24 h at Kevel).
	MaxTTL = time.Hour
	// DefaultNegativeTTL is how long a no-fill answer is remembered.
	DefaultNegativeTTL = 5 * time.Second
	// DefaultStaleFor is how recent the last ad handed out for a key must
	// be for a non-billable copy of it to stand in when upstream fails.
	DefaultStaleFor = 5 * time.Minute
	// DefaultPrefetch is how many ads a refill asks for per placement.
	DefaultPrefetch = 5
	// DefaultMaxKeys bounds the keys held in memory.
	DefaultMaxKeys = 10_000
	// DefaultMaxAdsPerKey bounds the ads pooled under one key, in memory
	// and in the shared tier.
	DefaultMaxAdsPerKey = decision.MaxCount
	// DefaultUpstreamTimeout bounds one refill's upstream call.
	DefaultUpstreamTimeout = 2 * time.Second
	// DefaultSharedTimeout bounds one call to the shared tier.
	DefaultSharedTimeout = 100 * time.Millisecond
	// DefaultLockWait is how long a refill waits for another instance's
	// refill of the same key.
	DefaultLockWait = 200 * time.Millisecond
)

// trackingMargin is the time an ad's tracking URLs must still be valid
// after it leaves the pool (render, then fire).
const trackingMargin = 10 * time.Minute

// Config configures New. The zero value (or nil) means every default; see
// doc.go for what each choice trades.
type Config struct {
	// TTL is how long an ad may wait in a pool before it is discarded
	// unseen. Defaults to DefaultTTL; at most MaxTTL. An ad is never pooled
	// past its Tracking.ExpiresAt minus ten minutes either.
	TTL time.Duration
	// NegativeTTL is how long an upstream answer with no ad for a key is
	// remembered, answering no-fill without asking upstream. Defaults to
	// DefaultNegativeTTL; negative disables; at most MaxTTL.
	NegativeTTL time.Duration
	// StaleFor is how recent the last ad handed out for a key must be for
	// a non-billable copy of it to be served when upstream fails. Defaults
	// to DefaultStaleFor; negative disables serve-stale.
	StaleFor time.Duration
	// Prefetch is how many ads a refill asks upstream for, per placement
	// (a placement asking for more keeps its own count). Defaults to
	// DefaultPrefetch; 1 to decision.MaxCount. 1 turns pooling off and
	// keeps single-flight, negative caching and serve-stale.
	Prefetch int
	// MaxKeys bounds the keys held in memory (pools, negative answers and
	// the last ad handed out); the least recently used key goes first.
	// Defaults to DefaultMaxKeys.
	MaxKeys int
	// MaxAdsPerKey bounds the ads pooled under one key, in memory and in
	// the shared tier; the oldest go first. Defaults to DefaultMaxAdsPerKey.
	MaxAdsPerKey int
	// UpstreamTimeout bounds a refill's upstream call. The call outlives
	// the request that started it (others wait on it), so it is not bound
	// by that request's ctx. Defaults to DefaultUpstreamTimeout.
	UpstreamTimeout time.Duration

	// Shared, when set, adds the shared tier: every refill goes there, and
	// every instance pops from it. store/redis's (*Client).DecisionPools
	// is one; a host may bring its own (see Tier). Nil keeps everything in
	// memory. Use one shared tier (one Redis namespace) per upstream
	// Decider: its pools hold that upstream's ads.
	Shared Tier
	// SharedTimeout bounds each call to the shared tier; past it the
	// decorator goes on without it. Defaults to DefaultSharedTimeout.
	SharedTimeout time.Duration
	// LockWait is how long a refill waits while another instance refills
	// the same key, before answering from what the pool holds then.
	// Defaults to DefaultLockWait.
	LockWait time.Duration

	// Metrics is where the adshare_decision_cache_* metrics are
	// registered. Nil means none are exported.
	Metrics prometheus.Registerer
	// Logger receives warnings (shared tier failures) and errors (an
	// upstream panic, answered as ErrUnavailable). Defaults to discarding.
	Logger *slog.Logger
	// Now is the clock of TTLs and serve-stale. Defaults to time.Now.
	Now func() time.Time

	// TracerProvider, when set, gives every Decide a span
	// "decision.cache" saying where its ads came from (adshare.outcome:
	// "memory", "shared", "refill" or an error's code). A refill's
	// upstream call is its child even when it outlives it. Nil: no spans,
	// at no cost.
	TracerProvider trace.TracerProvider
}

func (c Config) withDefaults() Config {
	c.TTL = cmp.Or(c.TTL, DefaultTTL)
	c.NegativeTTL = cmp.Or(c.NegativeTTL, DefaultNegativeTTL)
	c.StaleFor = cmp.Or(c.StaleFor, DefaultStaleFor)
	c.Prefetch = cmp.Or(c.Prefetch, DefaultPrefetch)
	c.MaxKeys = cmp.Or(c.MaxKeys, DefaultMaxKeys)
	c.MaxAdsPerKey = cmp.Or(c.MaxAdsPerKey, DefaultMaxAdsPerKey)
	c.UpstreamTimeout = cmp.Or(c.UpstreamTimeout, DefaultUpstreamTimeout)
	c.SharedTimeout = cmp.Or(c.SharedTimeout, DefaultSharedTimeout)
	c.LockWait = cmp.Or(c.LockWait, DefaultLockWait)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.TTL < 0 || c.TTL > MaxTTL:
		return fmt.Errorf("decision/cache: Config.TTL is %v; it must be between 0 (meaning %v) and %v (MaxTTL): pooled decisions drift from pacing and targeting", c.TTL, DefaultTTL, MaxTTL)
	case c.NegativeTTL > MaxTTL:
		return fmt.Errorf("decision/cache: Config.NegativeTTL is %v; it must be at most %v (MaxTTL), or negative to disable negative caching", c.NegativeTTL, MaxTTL)
	case c.Prefetch < 0 || c.Prefetch > decision.MaxCount:
		return fmt.Errorf("decision/cache: Config.Prefetch is %d; it must be between 1 and %d (decision.MaxCount), or 0 for %d", c.Prefetch, decision.MaxCount, DefaultPrefetch)
	case c.MaxKeys < 0 || c.MaxAdsPerKey < 0:
		return errors.New("decision/cache: Config.MaxKeys and Config.MaxAdsPerKey must not be negative (0 means the default)")
	case c.UpstreamTimeout < 0 || c.SharedTimeout < 0 || c.LockWait < 0:
		return errors.New("decision/cache: Config.UpstreamTimeout, SharedTimeout and LockWait must not be negative (0 means the default)")
	}
	return nil
}

// Decider is a decision.Decider that pools the upstream Decider's ads and
// hands each out exactly once (see the package documentation). It is safe
// for concurrent use. The only goroutines it starts serve one refill each
// and end within UpstreamTimeout (plus SharedTimeout per call to the
// shared tier); Stop waits for them, and Start and Stop reach the upstream
// Decider too, so the decorator stands in for it in a lifecycle.
type Decider struct {
	upstream decision.Decider
	cfg      Config
	// The tiers: pops try mem, then shared; a refill goes to refills.
	// Concrete fields rather than a slice of interfaces, so that a hit
	// makes no interface call and its slots stay on the stack: only the
	// host's shared tier, behind guarded, is an interface.
	mem     *memTier
	shared  *guarded // nil without Config.Shared
	refills Tier     // shared when set, else mem
	stats   *metrics
	log     *slog.Logger
	now     func() time.Time
	tracer  tracing.Tracer

	mu      sync.Mutex
	flights map[Key]*flight
	// flying counts the refills' goroutines; once stopping, no refill
	// starts, and idle is closed when the last one has landed.
	flying   int
	stopping bool
	idle     chan struct{}

	hooks hooks
}

// hooks let tests observe moments they cannot otherwise wait for; all nil
// outside tests.
type hooks struct {
	joined     func() // a Decide joined a refill in progress
	remoteWait func() // a refill started waiting for another instance's
}

var _ decision.Decider = (*Decider)(nil)

// New returns a Decider that pools upstream's ads. In memory it holds at
// most cfg.MaxKeys keys (default 10,000; least recently used evicted) with
// at most cfg.MaxAdsPerKey ads each (default 20; oldest dropped), every ad
// for at most cfg.TTL (default 60 s): at roughly 2 KB per ad, the defaults
// bound pooled ads to about 400 MB in the worst case, and to far less in
// practice, since a pool holds at most Prefetch ads minus the ones handed
// out. With cfg.Shared set, refills go to the shared tier (at most
// MaxAdsPerKey ads per key, expiring after TTL), and memory holds only ads
// put back, refills made while the shared tier fails, and the per-key
// bookkeeping.
func New(upstream decision.Decider, cfg *Config) (*Decider, error) {
	if upstream == nil {
		return nil, errors.New("decision/cache: New needs the upstream decision.Decider to wrap (for example the decision/kevel client)")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c = c.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	stats, err := newMetrics(c.Metrics)
	if err != nil {
		return nil, err
	}
	d := &Decider{
		upstream: upstream, cfg: c, stats: stats, log: c.Logger, now: c.Now, tracer: tracing.New(c.TracerProvider),
		mem:     newMemTier(c.MaxKeys, c.MaxAdsPerKey, stats),
		flights: make(map[Key]*flight),
		idle:    make(chan struct{}),
	}
	d.refills = d.mem
	if c.Shared != nil {
		d.shared = &guarded{tier: c.Shared, timeout: c.SharedTimeout, stats: stats, log: c.Logger}
		d.refills = d.shared
	}
	return d, nil
}

// Start starts the upstream Decider when it has a Start method (the
// decorator itself needs none).
func (d *Decider) Start(ctx context.Context) error {
	if s, ok := d.upstream.(interface{ Start(context.Context) error }); ok {
		return s.Start(ctx)
	}
	return nil
}

// Stop waits for the refills in flight to land (their ads go to the
// pools), within ctx, and then stops the upstream Decider when it has a
// Stop method. From Stop on no refill starts: a Decide is answered from the
// pools, or fails as upstream failures do (a stale copy may stand in).
// Call it after the last Decide. It is idempotent when the upstream's Stop
// is.
func (d *Decider) Stop(ctx context.Context) error {
	d.mu.Lock()
	if !d.stopping {
		d.stopping = true
		if d.flying == 0 {
			close(d.idle)
		}
	}
	d.mu.Unlock()
	select {
	case <-d.idle:
	case <-ctx.Done():
		return fmt.Errorf("decision/cache: stop: refills still in flight: %w", ctx.Err())
	}
	if s, ok := d.upstream.(interface{ Stop(context.Context) error }); ok {
		return s.Stop(ctx)
	}
	return nil
}

// landed counts a refill goroutine out.
func (d *Decider) landed() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flying--
	if d.flying == 0 && d.stopping {
		close(d.idle)
	}
}

// errStopped is a refill's error once Stop was called.
var errStopped = decision.ErrUnavailable.WithMessage("the decision cache is stopping")

// slot is one placement of a Decide call on its way to an answer.
type slot struct {
	key   Key
	need  int           // ads still wanted
	ads   []decision.Ad // ads for the placement, handed out to no one else
	exp   int64         // earliest expiry among ads (to put them back)
	neg   bool          // the key is negatively cached: no fill
	again bool          // pop the pools again once the refill is over
	stale bool          // ads[0] is a non-billable copy
	err   error         // the refill failed
}

func (s *slot) take(ad decision.Ad, exp int64) {
	if s.ads == nil {
		s.ads = make([]decision.Ad, 0, s.need)
	}
	s.ads = append(s.ads, ad)
	s.need--
	if s.exp == 0 || exp < s.exp {
		s.exp = exp
	}
}

func (s *slot) short() bool { return s.need > 0 && !s.neg }

func anyShort(slots []slot) bool {
	return slices.ContainsFunc(slots, func(s slot) bool { return s.short() })
}

// Decide implements decision.Decider. Invalid requests are refused before
// anything else. It answers from the pools when they hold enough ads, and
// otherwise joins or starts a refill (at most one upstream call per
// Decide). It returns ErrTimeout when ctx ends first, and the upstream
// error unchanged when a refill failed and no stale copy may stand in.
func (d *Decider) Decide(ctx context.Context, req decision.Request) (decision.Response, error) {
	if !d.tracer.On() {
		return d.decide(ctx, req, nil)
	}
	ctx, span := d.tracer.Start(ctx, "decision.cache", trace.WithAttributes(tracing.AttrPlacements.Int(len(req.Placements))))
	var from string
	resp, err := d.decide(ctx, req, &from)
	if span.IsRecording() {
		if err != nil {
			from = tracing.Outcome(err)
		}
		n := 0
		for _, ads := range resp.Ads {
			n += len(ads)
		}
		span.SetAttributes(tracing.AttrAds.Int(n), tracing.AttrOutcome.String(from))
	}
	tracing.End(span, err)
	return resp, err
}

// decide is Decide, untraced; it says in *from (when not nil) where the
// ads came from.
func (d *Decider) decide(ctx context.Context, req decision.Request, from *string) (decision.Response, error) {
	if err := req.Validate(); err != nil {
		return decision.Response{}, err
	}
	if err := ctx.Err(); err != nil {
		return decision.Response{}, decision.ErrTimeout.WithCause(err)
	}
	var arr [decision.MaxPlacements]slot
	slots := arr[:len(req.Placements)]
	requestKeys(&req, slots)
	for i := range slots {
		slots[i].need = req.Placements[i].CountOrOne()
	}
	now := d.now().UnixNano()
	d.popMem(slots, now)
	if !anyShort(slots) {
		d.countLookups(slots)
		setFrom(from, "memory")
		return respond(&req, slots, ""), nil
	}
	d.popShared(ctx, slots, now)
	d.countLookups(slots)
	setFrom(from, "shared")
	var userKey string
	if anyShort(slots) {
		setFrom(from, "refill")
		var err error
		if userKey, err = d.refill(ctx, &req, slots); err != nil {
			d.putBack(slots)
			return decision.Response{}, err
		}
	}
	if err := d.serveStale(slots, now); err != nil {
		d.putBack(slots)
		return decision.Response{}, err
	}
	d.mem.recordLast(slots, now)
	return respond(&req, slots, userKey), nil
}

func setFrom(from *string, v string) {
	if from != nil {
		*from = v
	}
}

// popMem pops the slots from memory, counting the expired ads dropped.
func (d *Decider) popMem(slots []slot, now int64) {
	if n := d.mem.pop(slots, now); n > 0 {
		d.stats.evictedExpired.Add(float64(n))
	}
}

// popShared pops what memory did not have from the shared tier, mirroring
// the negative marks it learns into memory. On failure the slots keep what
// they have.
func (d *Decider) popShared(ctx context.Context, slots []slot, now int64) {
	if d.shared == nil || !anyShort(slots) {
		return
	}
	var arr [decision.MaxPlacements]Pop
	var idx [decision.MaxPlacements]int
	pops := arr[:0]
	for i := range slots {
		if s := &slots[i]; s.short() {
			idx[len(pops)] = i
			pops = append(pops, Pop{Key: s.key, N: s.need})
		}
	}
	if d.shared.Pop(ctx, time.Unix(0, now), pops) != nil {
		return
	}
	for j := range pops {
		p, s := &pops[j], &slots[idx[j]]
		d.countDropped(ctx, p.Expired, p.Dropped, "decision/cache: dropping pooled ads the shared tier could not read")
		if !p.NegativeUntil.IsZero() {
			s.neg = true
			d.mem.setNegative(s.key, p.NegativeUntil.UnixNano())
		}
		ads := p.Ads[:min(len(p.Ads), s.need)]
		if len(ads) == 0 {
			continue
		}
		exp := p.Expires.UnixNano()
		if s.ads == nil {
			// Adopt the tier's slice: no copy, no allocation.
			s.ads, s.need = ads, s.need-len(ads)
			s.exp = exp
			continue
		}
		for _, ad := range ads {
			s.take(ad, exp)
		}
	}
}

// countDropped counts ads a tier dropped: expired ones, and unreadable or
// unstorable ones, which it also logs (with msg) since they should not
// happen.
func (d *Decider) countDropped(ctx context.Context, expired, dropped int, msg string) {
	if expired > 0 {
		d.stats.evictedExpired.Add(float64(expired))
	}
	if dropped > 0 {
		d.stats.evictedDropped.Add(float64(dropped))
		d.log.WarnContext(ctx, msg, slog.Int("ads", dropped))
	}
}

func (d *Decider) countLookups(slots []slot) {
	for i := range slots {
		switch s := &slots[i]; {
		case s.neg:
			d.stats.negative.Inc()
		case s.need == 0:
			d.stats.hit.Inc()
		default:
			d.stats.miss.Inc()
		}
	}
}

func respond(req *decision.Request, slots []slot, userKey string) decision.Response {
	resp := decision.Response{UserKey: cmp.Or(req.UserKey, userKey), Ads: make(map[string][]decision.Ad, len(slots))}
	for i := range slots {
		ads := slots[i].ads
		if ads == nil {
			ads = []decision.Ad{}
		}
		resp.Ads[req.Placements[i].ID] = ads
	}
	return resp
}

// putBack returns the ads of a Decide that fails to the memory pools: no one
// saw them, so they may still go to someone else.
func (d *Decider) putBack(slots []slot) {
	for i := range slots {
		if s := &slots[i]; len(s.ads) > 0 && !s.stale {
			d.countTrimmed(d.mem.putBack(s.key, s.ads, s.exp))
			s.ads = nil
		}
	}
}

// countTrimmed counts ads dropped to keep a pool within MaxAdsPerKey.
func (d *Decider) countTrimmed(n int) {
	if n > 0 {
		d.stats.evictedPoolFull.Add(float64(n))
	}
}

// serveStale settles the slots whose refill failed: a slot that has some
// ads keeps them; one with none gets a non-billable copy of the last ad
// handed out for its key within StaleFor. When one cannot, the Decide fails
// with that slot's upstream error, unchanged.
func (d *Decider) serveStale(slots []slot, now int64) error {
	var stale [decision.MaxPlacements]decision.Ad
	failed := false
	for i := range slots {
		s := &slots[i]
		if s.err == nil || len(s.ads) > 0 {
			continue
		}
		if errors.Is(s.err, decision.ErrInvalidRequest) || d.cfg.StaleFor < 0 {
			return s.err
		}
		last, ok := d.mem.lastSince(s.key, now-int64(d.cfg.StaleFor))
		if !ok || embedsTracking(&last) {
			return s.err
		}
		stale[i] = last
		failed = true
	}
	if !failed {
		return nil
	}
	for i := range slots {
		if s := &slots[i]; s.err != nil && len(s.ads) == 0 {
			s.ads, s.stale = []decision.Ad{nonBillable(stale[i])}, true
			d.stats.stale.Inc()
		}
	}
	return nil
}

// nonBillable returns a copy of ad that cannot be billed: a fresh ID (not
// the upstream decision's), no tracking URLs (nothing can be fired twice),
// and a price of zero (no one pays for it). The advertiser gets a free
// impression; the owner's slot stays filled.
func nonBillable(ad decision.Ad) decision.Ad {
	ad.ID = "stale-" + rand.Text()
	ad.Tracking = decision.Tracking{}
	ad.Price.Micros = 0
	ad.Categories = slices.Clone(ad.Categories)
	ad.Creative.Data = maps.Clone(ad.Creative.Data)
	return ad
}

// embedsTracking reports whether one of the ad's tracking URLs appears in
// its creative (an HTML creative may carry its click URL): such an ad is
// never copied, since emptying Tracking would not stop the copy from
// firing.
func embedsTracking(ad *decision.Ad) bool {
	urls := []string{ad.Tracking.ImpressionURL, ad.Tracking.ClickURL}
	for _, u := range ad.Tracking.Events {
		urls = append(urls, u)
	}
	c := &ad.Creative
	fields := []string{c.HTML, c.Body, c.Title, c.ImageURL, c.LandingURL, c.CallToAction}
	for _, v := range c.Data {
		if s, ok := v.(string); ok {
			fields = append(fields, s)
		}
	}
	for _, u := range urls {
		if u == "" {
			continue
		}
		for _, f := range fields {
			if strings.Contains(f, u) {
				return true
			}
		}
	}
	return false
}
