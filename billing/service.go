package billing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/jobs"
)

// Defaults of Config.
const (
	// DefaultSettleLag is how long after a day ends its settlement waits:
	// past the tracking tokens' life and the reports' clock skew, so that
	// no event of the day can still arrive.
	DefaultSettleLag = 2 * time.Hour
	// DefaultHoldWindow is how long settled earnings stay held for
	// invalid-traffic review before they may be paid out.
	DefaultHoldWindow = 7 * 24 * time.Hour
	// DefaultMinTopUp and DefaultMaxTopUp bound one top-up, in micros.
	DefaultMinTopUp = 5 * MicrosPerUnit
	DefaultMaxTopUp = 10_000 * MicrosPerUnit
	// DefaultMaxTopUpsPerDay and DefaultMaxTopUpPerDay bound an
	// advertiser's top-ups in 24 hours, in number and in micros.
	DefaultMaxTopUpsPerDay = 5
	DefaultMaxTopUpPerDay  = 20_000 * MicrosPerUnit
	// DefaultNewPayeeHold is how long after onboarding an owner's first
	// payout waits; DefaultTierChangeHold how long after a tier change.
	DefaultNewPayeeHold   = 7 * 24 * time.Hour
	DefaultTierChangeHold = 7 * 24 * time.Hour
	// DefaultInvalidShareHold is the share of an owner's events in a day,
	// in basis points, beyond which settlement holds their payouts for
	// review (with at least DefaultInvalidShareMinEvents events).
	DefaultInvalidShareHold      = 2_000
	DefaultInvalidShareMinEvents = 100
	// DefaultMaxPayoutsPerWeek bounds the payouts of one owner in seven
	// days (requested and scheduled together).
	DefaultMaxPayoutsPerWeek = 3
	// DefaultPayoutInterval is how often the schedule pays out every
	// eligible owner.
	DefaultPayoutInterval = 24 * time.Hour
	// DefaultSweepInterval is how often settlement, releases and
	// unfinished work are looked at.
	DefaultSweepInterval = 15 * time.Minute
	// DefaultReconcileInterval is how often the ledger is held against the
	// processor's books.
	DefaultReconcileInterval = 24 * time.Hour
	// DefaultSettleWorkers is how many owners' settlements (and releases)
	// are posted at once: postings are group-committed by the store, so
	// more at once share commits (a day of 100,000 owners settled in 39 s
	// with 32 on the benchmark machine, against 25 s with 256).
	DefaultSettleWorkers = 32
	// settlePageSize is how many owners one settlement read takes.
	settlePageSize = 1000
)

// Default rate limits of top-ups (card-testing defence).
var (
	// DefaultTopUpLimitPerUser: 3 at once, then one every 20 minutes.
	DefaultTopUpLimitPerUser = auth.Limit{Rate: 3, Period: time.Hour, Burst: 3}
	// DefaultTopUpLimitPerClient: 5 at once, then one every 12 minutes
	// per client address.
	DefaultTopUpLimitPerClient = auth.Limit{Rate: 5, Period: time.Hour, Burst: 5}
)

// Authorizer checks permissions; auth.Authorizer implements it.
type Authorizer interface {
	Authorize(ctx context.Context, p auth.Principal, perm auth.Permission) error
}

// TierSource says which tier a user was on at a moment; auth.TierHistory
// implements it.
type TierSource interface {
	TierAt(ctx context.Context, user uuid.UUID, at time.Time) (auth.Tier, error)
}

// Alerter tells a user of something that needs their attention (a payout
// that failed, a budget that ran out): the realtime channel implements it.
// Nil: no alerts.
type Alerter interface {
	Alert(ctx context.Context, user uuid.UUID, kind, message string)
}

// Config configures NewService.
type Config struct {
	// Store is billing's storage. Required.
	Store Store
	// Jobs runs settlement, releases, payouts, events and
	// reconciliation. Required.
	Jobs jobs.Queue
	// Processor moves the money: billing/stripe, or nil for manual mode
	// (top-ups confirmed and payouts recorded by an admin, through the
	// same ledger paths).
	Processor Processor
	// Events verifies the processor's webhooks (billing/stripe's
	// Webhooks); nil: no webhooks are taken.
	Events EventVerifier
	// Auth checks permissions and Tiers gives owners' tiers (minimum
	// payouts, tier-change holds). Required.
	Auth  Authorizer
	Tiers TierSource
	// Audit records holds, releases and admin actions. Required.
	Audit auth.AuditLog
	// Limiter rate-limits top-ups; nil: no rate limits (velocity limits
	// still apply).
	Limiter auth.Limiter
	// Alerts, when set, is told of payouts that failed (payout_failed) and
	// of budgets a settlement emptied (budget_exhausted).
	Alerts Alerter
	// LiveMode says the processor's keys are live: events not in live mode
	// are stored and ignored (a live Connect endpoint also receives
	// connected accounts' test events). False: only test-mode events act.
	LiveMode bool
	// Currency is the currency of budgets and earnings. Defaults to USD.
	Currency Currency
	// OnboardingReturnURL and OnboardingRefreshURL are where the
	// processor's onboarding sends an owner back (the app's deep links).
	OnboardingReturnURL  string
	OnboardingRefreshURL string

	// Timings and limits; zero means the default above.
	SettleLag             time.Duration
	SettleWorkers         int
	HoldWindow            time.Duration
	NewPayeeHold          time.Duration
	TierChangeHold        time.Duration
	MinTopUp, MaxTopUp    int64
	MaxTopUpsPerDay       int
	MaxTopUpPerDay        int64
	TopUpLimitPerUser     auth.Limit
	TopUpLimitPerClient   auth.Limit
	InvalidShareHold      int
	InvalidShareMinEvents int64
	MaxPayoutsPerWeek     int
	PayoutInterval        time.Duration
	SweepInterval         time.Duration
	ReconcileInterval     time.Duration

	// Metrics is where the adshare_billing_* collectors are registered.
	// Nil: none are exported.
	Metrics prometheus.Registerer
	// Logger defaults to discarding; Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

func (c Config) withDefaults() Config {
	c.Currency = cmp.Or(c.Currency, USD)
	c.SettleLag = cmp.Or(c.SettleLag, DefaultSettleLag)
	c.SettleWorkers = cmp.Or(c.SettleWorkers, DefaultSettleWorkers)
	c.HoldWindow = cmp.Or(c.HoldWindow, DefaultHoldWindow)
	c.NewPayeeHold = cmp.Or(c.NewPayeeHold, DefaultNewPayeeHold)
	c.TierChangeHold = cmp.Or(c.TierChangeHold, DefaultTierChangeHold)
	c.MinTopUp = cmp.Or(c.MinTopUp, DefaultMinTopUp)
	c.MaxTopUp = cmp.Or(c.MaxTopUp, DefaultMaxTopUp)
	c.MaxTopUpsPerDay = cmp.Or(c.MaxTopUpsPerDay, DefaultMaxTopUpsPerDay)
	c.MaxTopUpPerDay = cmp.Or(c.MaxTopUpPerDay, DefaultMaxTopUpPerDay)
	if c.TopUpLimitPerUser == (auth.Limit{}) {
		c.TopUpLimitPerUser = DefaultTopUpLimitPerUser
	}
	if c.TopUpLimitPerClient == (auth.Limit{}) {
		c.TopUpLimitPerClient = DefaultTopUpLimitPerClient
	}
	c.InvalidShareHold = cmp.Or(c.InvalidShareHold, DefaultInvalidShareHold)
	c.InvalidShareMinEvents = cmp.Or(c.InvalidShareMinEvents, DefaultInvalidShareMinEvents)
	c.MaxPayoutsPerWeek = cmp.Or(c.MaxPayoutsPerWeek, DefaultMaxPayoutsPerWeek)
	c.PayoutInterval = cmp.Or(c.PayoutInterval, DefaultPayoutInterval)
	c.SweepInterval = cmp.Or(c.SweepInterval, DefaultSweepInterval)
	c.ReconcileInterval = cmp.Or(c.ReconcileInterval, DefaultReconcileInterval)
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
	case c.Store == nil || c.Jobs == nil:
		return errors.New("billing: Config needs a Store (store/memory or store/postgres) and Jobs (the store's job queue)")
	case c.Auth == nil || c.Tiers == nil || c.Audit == nil:
		return errors.New("billing: Config needs Auth, Tiers and Audit (auth.Authorizer, auth.TierHistory and the store's audit log)")
	case !c.Currency.Valid():
		return fmt.Errorf("billing: Config.Currency %q is not supported", c.Currency)
	case c.MinTopUp <= 0 || c.MaxTopUp < c.MinTopUp || c.MaxTopUpPerDay < c.MaxTopUp:
		return errors.New("billing: top-up bounds must satisfy 0 < MinTopUp <= MaxTopUp <= MaxTopUpPerDay")
	case c.InvalidShareHold > 10_000:
		return errors.New("billing: Config.InvalidShareHold is in basis points: at most 10000")
	case c.Events != nil && c.Processor == nil:
		return errors.New("billing: Config.Events (webhooks) needs a Processor")
	case c.Processor != nil && ValidateOnboardingLink("acct", c.OnboardingRefreshURL, c.OnboardingReturnURL) != nil:
		return errors.New("billing: with a Processor, Config.OnboardingReturnURL and OnboardingRefreshURL must be absolute https URLs (where onboarding sends owners back)")
	}
	return nil
}

// Service is adshare's money: top-ups, settlement, releases, payouts,
// processor events, reconciliation and the views of balances. It is safe
// for concurrent use.
type Service struct {
	cfg     Config
	store   Store // cfg.Store, counting postings
	metrics *metrics
	logger  *slog.Logger
	now     func() time.Time

	recMu   sync.Mutex
	lastRec *Reconciliation

	// settledThrough is the newest day (Unix seconds) known settled: a
	// settled day stays settled, so reads of the unsettled spend ask the
	// store only about the days after it.
	settledThrough atomic.Int64
}

// Job kinds billing registers on Config.Jobs.
const (
	jobSettle    = "billing.settle"
	jobRelease   = "billing.release"
	jobPayout    = "billing.payout"
	jobEvent     = "billing.event"
	jobSweep     = "billing.sweep"
	jobSchedule  = "billing.payout_schedule"
	jobReconcile = "billing.reconcile"
)

// NewService validates cfg and registers billing's jobs on cfg.Jobs (so it
// is built before the queue starts). It starts nothing.
func NewService(cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, store: countingStore{cfg.Store, m}, metrics: m, logger: cfg.Logger, now: cfg.Now}
	if err := s.registerJobs(); err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	return s, nil
}

// Manual reports whether no processor moves the money (admins confirm
// top-ups and record payouts).
func (s *Service) Manual() bool { return s.cfg.Processor == nil }

// Currency is the currency of budgets and earnings.
func (s *Service) Currency() Currency { return s.cfg.Currency }

func (s *Service) registerJobs() error {
	q := s.cfg.Jobs
	quick := &jobs.KindOpts{Timeout: time.Minute}
	long := &jobs.KindOpts{Timeout: 30 * time.Minute, MaxAttempts: 50}
	for _, k := range []struct {
		kind string
		h    jobs.Handler
		opts *jobs.KindOpts
	}{
		{jobSettle, jobs.Typed(func(ctx context.Context, a dayArgs) error { return s.Settle(ctx, a.Day) }), long},
		{jobRelease, jobs.Typed(func(ctx context.Context, a dayArgs) error { return s.Release(ctx, a.Day) }), long},
		{jobPayout, jobs.Typed(func(ctx context.Context, a payoutArgs) error { return s.runPayout(ctx, a.Payout) }), quick},
		{jobEvent, jobs.Typed(func(ctx context.Context, a eventArgs) error { return s.applyEvent(ctx, a.Event) }), quick},
		{jobSweep, jobs.Typed(func(ctx context.Context, _ struct{}) error { return s.sweep(ctx) }), long},
		{jobSchedule, jobs.Typed(func(ctx context.Context, _ struct{}) error { return s.payoutSchedule(ctx) }), long},
		{jobReconcile, jobs.Typed(func(ctx context.Context, _ struct{}) error {
			_, err := s.Reconcile(ctx, s.now().Add(-2*s.cfg.ReconcileInterval))
			return err
		}), long},
	} {
		if err := q.Register(k.kind, s.metrics.timed(k.kind, k.h), k.opts); err != nil {
			return err
		}
	}
	for _, p := range []struct {
		kind  string
		every time.Duration
	}{{jobSweep, s.cfg.SweepInterval}, {jobSchedule, s.cfg.PayoutInterval}, {jobReconcile, s.cfg.ReconcileInterval}} {
		if p.kind == jobReconcile && s.cfg.Processor == nil {
			continue // nothing to reconcile against
		}
		if err := q.Every(p.kind, p.every, struct{}{}); err != nil {
			return err
		}
	}
	return nil
}

type dayArgs struct {
	Day time.Time `json:"day"`
}

type payoutArgs struct {
	Payout uuid.UUID `json:"payout"`
}

type eventArgs struct {
	Event string `json:"event"`
}

// enqueue adds a job, logging (not returning) a failure: every job billing
// enqueues is found again by the sweep.
func (s *Service) enqueue(ctx context.Context, kind string, args any, key string) {
	if _, err := s.cfg.Jobs.Enqueue(context.WithoutCancel(ctx), kind, args, &jobs.EnqueueOpts{UniqueKey: key}); err != nil {
		s.logger.WarnContext(ctx, "billing: job not enqueued; the sweep will find it", slog.String("kind", kind), slog.Any("error", err))
	}
}

// record appends an audit event; a failure is logged.
func (s *Service) record(ctx context.Context, e auth.AuditEvent) {
	c := auth.ClientFromContext(ctx)
	e.At = s.now().UTC()
	e.IP, e.UserAgent = c.IP, c.UserAgent
	if e.Outcome == "" {
		e.Outcome = auth.OutcomeSuccess
	}
	if err := s.cfg.Audit.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.logger.ErrorContext(ctx, "billing: audit append failed", slog.String("action", e.Action), slog.Any("error", err))
	}
}

// account is the id of user's account of kind k in the service's currency.
func (s *Service) account(k AccountKind, user uuid.UUID) AccountID {
	return UserAccount(k, user, s.cfg.Currency)
}

// platform is the id of the platform's account of kind k.
func (s *Service) platform(k AccountKind) AccountID {
	return PlatformAccount(k, s.cfg.Currency)
}

// dayOf is the UTC day containing t.
func dayOf(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }
