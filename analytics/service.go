package analytics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/batch"
	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/internal/periodic"
	"github.com/adshare/adshare/internal/tracing"
)

// Defaults of Config.
const (
	DefaultMaxBatch      = 100
	DefaultClockSkew     = time.Minute
	DefaultFillFlush     = 10 * time.Second
	DefaultTierCacheTTL  = time.Minute
	maxConversionNameLen = 64
	// maxConversionValue bounds a conversion's value_micros: 10^10, ten
	// thousand units of the currency. The value is the reporting app's
	// word, checked by no one, so the bound is what a real conversion
	// (a sign-up, an order) comes to with room to spare, not what an
	// int64 can hold: it keeps one forged report from swamping an
	// advertiser's conversion value (10^12, the old bound, was a million
	// units), and keeps sums safe, since 900 million conversions at the
	// bound still fit in an int64 where 9 million did before.
	maxConversionValue = 10_000_000_000 // micros
	maxUserAgentLen    = 256
	// Group commit of events (see batch): a flush carries up to
	// writeBatchEvents events; a second flush runs beside the first only
	// once writeParallelAt events wait, so that under load batches grow
	// rather than split.
	writeBatchEvents = 2000
	writeFlushers    = 2
	writeParallelAt  = 500
	// writeFlushTimeout bounds one group commit: a store that stops
	// answering fails the waiting writes (their requests answer 503 and
	// retry; what did commit answers duplicate) instead of stalling
	// ingest until the connection dies.
	writeFlushTimeout      = 10 * time.Second
	conversionNameAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789_-."
)

// TierSource tells which tier (and so which revenue share) an owner was on
// at a moment; auth.Service implements it.
type TierSource interface {
	TierAt(ctx context.Context, user uuid.UUID, at time.Time) (auth.Tier, error)
}

// Pixels fires the ad server's own tracking URLs; decision/kevel's Firer,
// adapted, implements it.
type Pixels interface {
	// Fire queues url to be fired once, without blocking; it returns an
	// error when the URL is refused or the queue is full.
	Fire(url string) error
	// FireClick fires a click URL now without following its redirect and
	// returns where the redirect points.
	FireClick(ctx context.Context, url string) (string, error)
}

// Live receives what was just accepted, for live counters and the
// realtime channel. A nil Live in Config means none.
type Live interface {
	Accepted(ctx context.Context, events []Event)
}

// Config configures NewService.
type Config struct {
	// Store keeps events and rollups; Sealer opens tracking tokens. Required.
	Store  Store
	Sealer *tracking.Sealer
	// Tiers gives owners' revenue shares. Required.
	Tiers TierSource
	// Bursts counts events for the burst rules (store/redis shares the
	// counts between instances, store/memory keeps them per process); nil
	// turns the burst rules off.
	Bursts BurstCounter
	// Filters configures the invalid-traffic rules.
	Filters FilterConfig
	// Pixels fires upstream (Kevel) pixels after commit; nil: none.
	Pixels Pixels
	// Live is told about accepted events after commit; nil: none.
	Live Live
	// Auth scopes reports to the caller (auth.Service implements it); nil:
	// no reports.
	Auth Authorizer
	// Users answers the users report; nil: that report is unavailable.
	Users UserStats
	// Settled supplies final and paid-out figures; nil: revenue reports
	// show estimates only.
	Settled Settled
	// MaxBatch caps the events of one request. Defaults to DefaultMaxBatch.
	MaxBatch int
	// ClockSkew bounds how far in the future a reported time may be.
	// Defaults to DefaultClockSkew.
	ClockSkew time.Duration
	// FillFlush is how often fill counts are written. Defaults to DefaultFillFlush.
	FillFlush time.Duration
	// Metrics is where the ingest, report and business metrics
	// (adshare_ingest_*, adshare_analytics_*, adshare_business_*) are
	// registered; nil: none.
	Metrics prometheus.Registerer
	// BusinessEvery bounds how often a scrape reads the rollups for the
	// business gauges. Defaults to DefaultBusinessEvery.
	BusinessEvery time.Duration
	// Logger defaults to discarding; Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time

	// TracerProvider, when set, traces ingest: a span "analytics.ingest"
	// per Ingest, and a span "analytics.commit" per group commit, linked
	// to the ingest spans whose events it writes (a commit serves many
	// requests, so it is the child of none). Pixels with a FireContext
	// method (decision/kevel's Firer) get the commit's context, so that
	// their spans link to it. Nil: no spans, at no cost.
	TracerProvider trace.TracerProvider
}

// contextPixels is Pixels that can link what it fires to the caller's
// span.
type contextPixels interface {
	FireContext(ctx context.Context, url string) error
}

// Service ingests events and answers reports.
type Service struct {
	cfg     Config
	filters *filters
	writer  *batch.Batcher[*pendingWrite]
	logger  *slog.Logger
	now     func() time.Time
	metrics *metrics
	tracer  tracing.Tracer

	tiersMu sync.Mutex
	tiers   map[uuid.UUID]cachedTier

	fillsMu   sync.Mutex
	fills     map[fillKey]*FillCount
	fillFlush *periodic.Task

	destsMu sync.Mutex
	dests   map[destKey]string // where an ad server's ads' clicks lead (see Click)
}

type cachedTier struct {
	shareBP int
	fetched time.Time
}

type fillKey struct {
	owner uuid.UUID
	hour  time.Time
}

// pendingWrite is one request's events on their way to the store; the
// batcher fills isNew.
type pendingWrite struct {
	events []Event
	isNew  []bool
	// provisional maps the index of a conversion judged valid on the
	// strength of an impression in the same request alone to that
	// impression's index: if the burst rules flag the impression, the
	// conversion has no valid impression after all (revalidate).
	provisional map[int]int
	// span is the ingest span of the request, when traced.
	span trace.SpanContext
}

// revalidate flags the provisional conversions whose impression the burst
// rules flagged.
func (p *pendingWrite) revalidate() {
	for conv, imp := range p.provisional {
		if !p.events[imp].Valid && p.events[conv].Valid {
			p.events[conv].flag(RuleConversionNoImp)
		}
	}
}

// NewService validates cfg and returns the service; it starts nothing.
// Events are written from the first report on; call Start to write fill
// counts every FillFlush, and Stop to drain and stop.
func NewService(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil || cfg.Sealer == nil:
		return nil, errors.New("analytics: Config needs a Store (store/memory or store/postgres) and a Sealer (tracking.NewSealer)")
	case cfg.Tiers == nil:
		return nil, errors.New("analytics: Config.Tiers is required (auth.Service implements it)")
	}
	cfg.MaxBatch = cmp.Or(cfg.MaxBatch, DefaultMaxBatch)
	cfg.ClockSkew = cmp.Or(cfg.ClockSkew, DefaultClockSkew)
	cfg.FillFlush = cmp.Or(cfg.FillFlush, DefaultFillFlush)
	cfg.Filters = cfg.Filters.withDefaults()
	cfg.BusinessEvery = cmp.Or(cfg.BusinessEvery, DefaultBusinessEvery)
	s := &Service{
		cfg: cfg, filters: &filters{cfg: cfg.Filters}, logger: cfg.Logger, now: cfg.Now,
		tiers: map[uuid.UUID]cachedTier{}, fills: map[fillKey]*FillCount{}, dests: map[destKey]string{}, tracer: tracing.New(cfg.TracerProvider),
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.writer = batch.NewWeighted(s.flushEvents, func(p *pendingWrite) int { return len(p.events) },
		batch.Config{MaxBatch: writeBatchEvents, Flushers: writeFlushers, ParallelAt: writeParallelAt, FlushTimeout: writeFlushTimeout})
	s.fillFlush = periodic.New(cfg.FillFlush, s.flushFills)
	var err error
	if s.metrics, err = newMetrics(cfg.Metrics, s); err != nil {
		return nil, err
	}
	return s, nil
}

// flushEvents is a group commit: it judges the burst rules over the
// events of many requests, writes them in one store call, hands each
// request its share of the answer, and then does once for the group what
// follows a commit (burst counts, pixels, live figures). Nothing after the
// write fails the flush: the events are committed.
func (s *Service) flushEvents(ctx context.Context, pending []*pendingWrite) error {
	if !s.tracer.On() {
		return s.commit(ctx, pending)
	}
	links := make([]trace.Link, 0, len(pending))
	events := 0
	for _, p := range pending {
		if p.span.IsValid() {
			links = append(links, trace.Link{SpanContext: p.span})
		}
		events += len(p.events)
	}
	ctx, span := s.tracer.Start(ctx, "analytics.commit", trace.WithNewRoot(), trace.WithLinks(links...),
		trace.WithAttributes(tracing.AttrRequests.Int(len(pending)), tracing.AttrEvents.Int(events)))
	err := s.commit(ctx, pending)
	tracing.End(span, err)
	return err
}

// commit is flushEvents, untraced.
func (s *Service) commit(ctx context.Context, pending []*pendingWrite) error {
	s.judgeBursts(ctx, pending)
	n := 0
	for _, p := range pending {
		p.revalidate()
		n += len(p.events)
	}
	all := make([]Event, 0, n) // events are large: copy each once, no growing
	for _, p := range pending {
		for i := range p.events {
			p.events[i].forgetViewer()
		}
		all = append(all, p.events...)
	}
	start := time.Now()
	isNew, err := s.cfg.Store.WriteEvents(ctx, all)
	if err != nil {
		s.metrics.commitErrors.Inc()
		return err
	}
	s.metrics.committed(all, isNew, time.Since(start))
	fresh := make([]Event, 0, n)
	for _, p := range pending {
		p.isNew, isNew = isNew[:len(p.events)], isNew[len(p.events):]
		for i, e := range p.events {
			if p.isNew[i] {
				fresh = append(fresh, e)
			}
		}
	}
	s.countBursts(ctx, pending)
	s.afterCommit(ctx, fresh)
	return nil
}

// Start writes fill counts every FillFlush until Stop. It returns nil when
// already started, and an error after Stop.
func (s *Service) Start(ctx context.Context) error {
	if err := s.fillFlush.Start(ctx); err != nil {
		return fmt.Errorf("analytics: start: %w", err)
	}
	return nil
}

// Stop stops accepting reports (Ingest then fails with ErrStopped),
// writes the events already queued and the fill counts gathered, and
// returns once they are written or ctx ends (then with ctx's error; what
// was not written by then is lost, except events, which are never
// acknowledged before their commit). Call it before stopping the store. It
// is idempotent and safe before Start.
func (s *Service) Stop(ctx context.Context) error {
	err := errors.Join(s.writer.Stop(ctx), s.fillFlush.Stop(ctx))
	s.flushFills(ctx)
	if err != nil {
		return fmt.Errorf("analytics: stop: %w", err)
	}
	return nil
}

// Report is what an app sends about one served ad.
type Report struct {
	Type  EventType
	Token string
	// OccurredAt is when it happened on the device; zero means now.
	OccurredAt time.Time
	// Name and ValueMicros describe a conversion.
	Name        string
	ValueMicros int64
	// Unreadable says, by field, what an adapter could not decode of this
	// report (e.g. "occurred_at": "must be an RFC 3339 date-time"): the
	// report is rejected with these messages, in its own place in the
	// batch, so that one bad field costs its event and not its batch.
	Unreadable map[string]string

	// redirect marks the click of our redirect link (Click), which fires
	// the ad server's click itself, synchronously, to learn where it
	// leads: the commit must not queue the same URL too (the firer's
	// once-only guard would then refuse the redirect's fire).
	redirect bool
}

// Status of one reported event.
type Status string

// Statuses.
const (
	// Accepted: stored now (valid or flagged as invalid traffic).
	Accepted Status = "accepted"
	// Duplicate: stored before (a retry); nothing changed.
	Duplicate Status = "duplicate"
	// Rejected: not stored; Error says why.
	Rejected Status = "rejected"
)

// Result is the outcome of one reported event.
type Result struct {
	TrackingID uuid.UUID
	Status     Status
	// Valid and Rule say what the filters decided: for a Duplicate, when
	// the event was first stored.
	Valid bool
	Rule  string
	// Billable is true when the event earns (for a Duplicate, when it
	// was first stored).
	Billable bool
	// Error says why a report was rejected.
	Error *errs.Error
}

// Ingest verifies, filters and stores a batch of reports and answers per
// report, after the accepted ones are committed (every accepted event is
// durable before the answer says so). Reports are independent: a bad one
// is rejected without failing the others. The whole call fails only for a
// batch over the limit, or when the store cannot write.
//
// With Config.TracerProvider, each call is a span "analytics.ingest".
func (s *Service) Ingest(ctx context.Context, reports []Report) ([]Result, error) {
	if !s.tracer.On() {
		return s.ingest(ctx, reports)
	}
	ctx, span := s.tracer.Start(ctx, "analytics.ingest", trace.WithAttributes(tracing.AttrEvents.Int(len(reports))))
	results, err := s.ingest(ctx, reports)
	if span.IsRecording() && err == nil {
		accepted := 0
		for _, r := range results {
			if r.Status == Accepted {
				accepted++
			}
		}
		span.SetAttributes(tracing.AttrAccepted.Int(accepted))
	}
	tracing.End(span, err)
	return results, err
}

// ingest is Ingest, untraced.
func (s *Service) ingest(ctx context.Context, reports []Report) ([]Result, error) {
	if len(reports) == 0 || len(reports) > s.cfg.MaxBatch {
		return nil, ErrTooManyEvents.WithMessage(fmt.Sprintf("a batch holds 1 to %d events", s.cfg.MaxBatch))
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	client := auth.ClientFromContext(ctx)
	ip, _ := netip.ParseAddr(client.IP)
	results := make([]Result, len(reports))
	events := make([]Event, 0, len(reports))
	index := make([]int, 0, len(reports)) // events[i] answers reports[index[i]]
	seen := map[EventKey]int{}            // the same event twice in one batch
	repeats := map[int]int{}              // reports[i] repeats events[repeats[i]]
	for i, r := range reports {
		e, err := s.event(ctx, r, now, client)
		if err != nil {
			results[i] = Result{TrackingID: e.TrackingID, Status: Rejected, Error: errs.As(err)}
			s.metrics.rejected(r.Type)
			continue
		}
		if j, dup := seen[e.Key()]; dup {
			repeats[i] = j // answered once the filters have judged events[j]
			continue
		}
		seen[e.Key()] = len(events)
		events = append(events, e)
		index = append(index, i)
	}
	if len(events) > 0 {
		provisional, err := s.classify(ctx, events, ip)
		if err != nil {
			return nil, err
		}
		p := &pendingWrite{events: events, provisional: provisional, span: trace.SpanContextFromContext(ctx)}
		if err := s.writer.Do(ctx, p); err != nil {
			if errors.Is(err, batch.ErrClosed) {
				return nil, ErrStopped
			}
			return nil, fmt.Errorf("analytics: write events: %w", err)
		}
		var retried []Event
		for j, e := range events {
			if !p.isNew[j] {
				retried = append(retried, e)
			}
		}
		stored := s.storedVerdicts(ctx, retried)
		for j, e := range events {
			r := Result{TrackingID: e.TrackingID, Status: Accepted, Valid: e.Valid, Rule: e.Rule, Billable: e.SpendMicros > 0}
			if !p.isNew[j] {
				r.Status = Duplicate
				if v, ok := stored[e.Key()]; ok {
					r.Valid, r.Rule, r.Billable = v.Valid, v.Rule, v.SpendMicros > 0
				}
			}
			results[index[j]] = r
		}
		for i, j := range repeats {
			r := results[index[j]]
			r.Status = Duplicate
			results[i] = r
			s.metrics.events.WithLabelValues(string(events[j].Type), "duplicate").Inc()
		}
	}
	return results, nil
}

// storedVerdicts returns how the retried events were judged when they were
// new, for their answers. It fails soft: without them a retry is answered
// with this attempt's judgement, and nothing stored changes either way.
func (s *Service) storedVerdicts(ctx context.Context, retried []Event) map[EventKey]Verdict {
	if len(retried) == 0 {
		return nil
	}
	stored, err := s.cfg.Store.Verdicts(ctx, retried)
	if err != nil {
		s.logger.WarnContext(ctx, "analytics: stored verdicts of retried events unavailable", slog.Any("error", err))
	}
	return stored
}

// event checks a report and builds its event from the token.
func (s *Service) event(ctx context.Context, r Report, now time.Time, client auth.Client) (Event, error) {
	f := errs.Fields(maps.Clone(r.Unreadable))
	f.Check(r.Type.Valid(), "type", "must be impression, click or conversion")
	f.Check(r.Token != "", "token", "is required")
	if r.Type == Conversion {
		name := strings.ToLower(r.Name)
		f.Check(name != "" && len(name) <= maxConversionNameLen && strings.Trim(name, conversionNameAlphabet) == "",
			"name", "a conversion needs a name of letters, digits, '_', '-' or '.'")
		f.Check(r.ValueMicros >= 0 && r.ValueMicros <= maxConversionValue, "value_micros",
			"must be from 0 to "+strconv.FormatInt(maxConversionValue, 10)+" (10,000 units of the currency)")
		r.Name = name
	} else {
		f.Check(r.Name == "" && r.ValueMicros == 0, "name", "only conversions have a name and a value")
	}
	if err := f.Err(ErrInvalidReport); err != nil {
		return Event{}, err
	}
	t, err := s.cfg.Sealer.Open(r.Token)
	if err != nil {
		return Event{TrackingID: t.ID}, err
	}
	if p, ok := auth.PrincipalFromContext(ctx); ok && t.Viewer != uuid.Nil && p.UserID != t.Viewer {
		// A signed-in reporter may only report what was served to them.
		return Event{TrackingID: t.ID}, ErrForeignToken
	}
	occurred := r.OccurredAt.UTC().Truncate(time.Microsecond)
	if occurred.IsZero() {
		occurred = now
	}
	switch {
	case occurred.After(now.Add(s.cfg.ClockSkew)):
		return Event{TrackingID: t.ID}, ErrInvalidReport.WithFields(errs.Fields{"occurred_at": "is in the future"})
	case occurred.Before(t.IssuedAt.Add(-s.cfg.ClockSkew)):
		return Event{TrackingID: t.ID}, ErrInvalidReport.WithFields(errs.Fields{"occurred_at": "is before the ad was served"})
	}
	ua := strings.ToValidUTF8(client.UserAgent, "")
	if len(ua) > maxUserAgentLen {
		ua = ua[:maxUserAgentLen]
		for !utf8.ValidString(ua) {
			ua = ua[:len(ua)-1]
		}
	}
	prefix := ""
	if ip, err := netip.ParseAddr(client.IP); err == nil {
		prefix = networkOf(ip)
	}
	ad := t.Ad
	ad.IssuedAt = ad.IssuedAt.UTC().Truncate(time.Microsecond)
	upstream := t.Upstream
	if r.redirect {
		upstream.ClickURL = ""
	}
	return Event{
		TrackingID: t.ID, Type: r.Type, Name: r.Name, Ad: ad,
		OccurredAt: occurred, ReceivedAt: now, Valid: true, ValueMicros: r.ValueMicros,
		ClientPrefix: prefix, UserAgent: ua, upstream: upstream, unprofiled: t.NoViewerAnalytics,
	}, nil
}

// classify runs the invalid-traffic rules and prices the events. It
// returns the conversions whose validity rests on an impression of the
// same batch that the burst rules have yet to judge (see pendingWrite).
func (s *Service) classify(ctx context.Context, events []Event, ip netip.Addr) (map[int]int, error) {
	var clicked []ServedAd // a click needs its impression's time
	var converted []Event  // a conversion its impression's verdict
	for _, e := range events {
		switch e.Type {
		case Click:
			clicked = append(clicked, ServedAd{TrackingID: e.TrackingID, IssuedAt: e.Ad.IssuedAt})
		case Conversion:
			converted = append(converted, Event{TrackingID: e.TrackingID, Type: Impression, Ad: tracking.Ad{IssuedAt: e.Ad.IssuedAt}})
		}
	}
	impressed := map[uuid.UUID]time.Time{}
	if len(clicked) > 0 {
		var err error
		if impressed, err = s.cfg.Store.ImpressionTimes(ctx, clicked); err != nil {
			return nil, fmt.Errorf("analytics: impressions: %w", err)
		}
	}
	var stored map[EventKey]Verdict
	if len(converted) > 0 {
		var err error
		if stored, err = s.cfg.Store.Verdicts(ctx, converted); err != nil {
			return nil, fmt.Errorf("analytics: impressions' verdicts: %w", err)
		}
	}
	// The events of one request share its client. Impressions are judged
	// first, for the clicks and conversions of their tokens in the batch.
	request := signals{bot: isBotUserAgent(events[0].UserAgent), dataCenter: s.filters.inDataCenter(ip)}
	inBatch := map[uuid.UUID]int{} // the batch's impression of a token, by index (one at most: Ingest dedups)
	for i := range events {
		if e := &events[i]; e.Type == Impression {
			if rule := s.filters.classify(e, request); rule != "" {
				e.flag(rule)
			}
			inBatch[e.TrackingID] = i
			if _, ok := impressed[e.TrackingID]; !ok {
				impressed[e.TrackingID] = e.OccurredAt // it counts for its click, whatever its verdict
			}
		}
	}
	var provisional map[int]int
	for i := range events {
		e := &events[i]
		if e.Type == Impression {
			continue
		}
		sig := request
		sig.impressedAt = impressed[e.TrackingID]
		if e.Type == Conversion {
			// A stored impression's verdict stands; only a token with none
			// may rest on the batch's own (which, if the store has one, is
			// a retry and will not be stored).
			v, ok := stored[EventKey{TrackingID: e.TrackingID, Type: Impression}]
			j, here := inBatch[e.TrackingID]
			switch {
			case ok:
				sig.validImpression = v.Valid
			case here && events[j].Valid:
				sig.validImpression = true
				if provisional == nil {
					provisional = map[int]int{}
				}
				provisional[i] = j
			}
		}
		if rule := s.filters.classify(e, sig); rule != "" {
			e.flag(rule)
			delete(provisional, i)
		}
	}
	for i := range events {
		if err := s.price(ctx, &events[i]); err != nil {
			return nil, err
		}
	}
	return provisional, nil
}

// price sets what a valid, billable event costs the advertiser and the
// owner's estimated share. CPM prices are per thousand: one impression
// costs price/1000, rounded down (the advertiser keeps the fraction); the
// owner's share is rounded down too, its remainder goes to the platform.
// Final figures come from settlement.
func (s *Service) price(ctx context.Context, e *Event) error {
	if !e.Valid || !e.Ad.Billable {
		return nil
	}
	switch {
	case e.Type == Impression && e.Ad.PriceModel == "cpm":
		e.SpendMicros = e.Ad.PriceMicros / 1000
	case e.Type == Click && e.Ad.PriceModel == "cpc":
		e.SpendMicros = e.Ad.PriceMicros
	default:
		return nil
	}
	share, err := s.ownerShare(ctx, e.Ad.Owner, e.OccurredAt)
	if err != nil {
		return err
	}
	e.OwnerShareBP = share
	e.OwnerEarningsMicros = e.SpendMicros * int64(share) / 10_000
	return nil
}

// ownerShare returns the owner's revenue share, cached for a minute: an
// estimate may lag a tier change by that much; settlement uses the exact
// tier in force at each event.
func (s *Service) ownerShare(ctx context.Context, owner uuid.UUID, at time.Time) (int, error) {
	s.tiersMu.Lock()
	c, ok := s.tiers[owner]
	s.tiersMu.Unlock()
	if ok && time.Since(c.fetched) < DefaultTierCacheTTL {
		return c.shareBP, nil
	}
	tier, err := s.cfg.Tiers.TierAt(ctx, owner, at)
	if err != nil {
		return 0, fmt.Errorf("analytics: owner's tier: %w", err)
	}
	s.tiersMu.Lock()
	s.tiers[owner] = cachedTier{shareBP: tier.RevenueShareBP, fetched: time.Now()}
	s.tiersMu.Unlock()
	return tier.RevenueShareBP, nil
}

// afterCommit fires upstream pixels once for the new, valid, billable
// events of a group commit and tells Live, once per group (the flush
// counted them for the burst rules). It runs before the group's requests
// are answered, so an answer follows its side effects.
// Failures are logged: the events are stored regardless.
func (s *Service) afterCommit(ctx context.Context, fresh []Event) {
	if len(fresh) == 0 {
		return
	}
	if s.cfg.Pixels != nil {
		fire := s.cfg.Pixels.Fire
		if cp, ok := s.cfg.Pixels.(contextPixels); ok && s.tracer.On() {
			fire = func(url string) error { return cp.FireContext(ctx, url) }
		}
		for _, e := range fresh {
			if !e.Valid || !e.Ad.Billable {
				continue
			}
			if url := s.upstreamURL(e); url != "" {
				if err := fire(url); err != nil {
					s.logger.WarnContext(ctx, "analytics: upstream pixel not queued", slog.String("event", string(e.Type)), slog.Any("error", err))
				}
			}
		}
	}
	if s.cfg.Live != nil {
		if _, err := withinBudget(ctx, func(ctx context.Context) (struct{}, error) {
			s.cfg.Live.Accepted(ctx, fresh)
			return struct{}{}, nil
		}); err != nil {
			s.logger.WarnContext(ctx, "analytics: live figures not told in time", slog.Any("error", err))
		}
	}
}

// upstreamURL is the ad server pixel an event fires: the impression URL
// for impressions, the click URL for clicks reported by the app (the click
// redirect fires its own synchronously).
func (s *Service) upstreamURL(e Event) string {
	switch e.Type {
	case Impression:
		return e.upstream.ImpressionURL
	case Click:
		return e.upstream.ClickURL
	}
	return ""
}
