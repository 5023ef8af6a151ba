package adspace

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/tracing"
)

// Defaults of Config.
const (
	DefaultSpaceCacheTTL   = 30 * time.Second
	DefaultSpaceCacheSize  = 100_000
	DefaultDecisionTimeout = 300 * time.Millisecond
	DefaultTrackingTTL     = time.Hour
	// invalidationChannel carries owner ids whose cached space changed:
	// "<id>" (drop it) or "<id> <version>" (the settings reached version;
	// a copy at it or later is kept).
	invalidationChannel = "adspace:invalidate"
)

// Format is an ad shape that apps render: its name in settings and
// content, its size, and the ad server's ad type ids for it.
type Format struct {
	Name    string
	Width   int
	Height  int
	AdTypes []int
}

// DefaultFormats are the formats when the host configures none: a 320×50
// banner (Kevel ad type 4) and a native card (the app lays it out; ad type 5).
func DefaultFormats() []Format {
	return []Format{
		{Name: "banner", Width: 320, Height: 50, AdTypes: []int{4}},
		{Name: "native", AdTypes: []int{5}},
	}
}

// FillRecorder counts fills: how many ads a fill asked for and how many it
// got.
type FillRecorder interface {
	RecordFill(owner uuid.UUID, requested, filled int)
}

// Authorizer checks permissions (auth.Service implements it).
type Authorizer interface {
	Authorize(ctx context.Context, p auth.Principal, perm auth.Permission) error
}

// UserReader reads users (auth.UserStore implements it).
type UserReader interface {
	UserByID(ctx context.Context, id uuid.UUID) (auth.User, error)
}

// Config configures NewService.
type Config struct {
	// Spaces and Contents are the stores; Users reads owners and viewers.
	Spaces   Store
	Contents ContentStore
	Users    UserReader
	// Auth checks permissions and Audit records moderation.
	Auth  Authorizer
	Audit auth.AuditLog
	// Tiers is the tier table (limits on ads per view and content count).
	Tiers *auth.Tiers
	// Decider fills spaces (decision/local, or decision/cache over
	// decision/kevel). Required.
	Decider decision.Decider
	// Sealer seals tracking tokens. Required.
	Sealer *tracking.Sealer
	// ViewerKeySecret (≥ 32 bytes, the same on every instance) derives
	// viewers' pseudonymous keys, so no user id reaches the ad server.
	ViewerKeySecret []byte
	// Formats are the formats spaces may use. Defaults to DefaultFormats.
	Formats []Format
	// Rules validate ad content. Zero fields take DefaultRules' values;
	// Formats default to the names of Config.Formats.
	Rules Rules
	// AllowAnonymous lets viewers without an access token fill spaces.
	AllowAnonymous bool
	// Broadcaster carries cache invalidations between instances; nil
	// means a single instance.
	Broadcaster Broadcaster
	// Changes is told of settings and content changes for the realtime
	// channel; nil: none.
	Changes ChangeNotifier
	// Fills counts fills for the fill rate (analytics.Service implements
	// it); nil: not counted.
	Fills FillRecorder
	// Consents reads signed-in viewers' consent (auth.ConsentStore); nil:
	// their profile settings decide, and no viewer's events are kept
	// under their identity.
	Consents ConsentReader
	// UserDB, when set, is told of consent changes and opt-outs
	// (ConsentChanged); decision/kevel's UserDB when Kevel decides.
	UserDB UserDB
	// Funding, when set, keeps the ads of advertisers whose budget is spent
	// out of fills (billing.Service implements it); nil: every approved ad
	// runs (within its own budget caps).
	Funding Funding
	// SpaceCacheTTL bounds how long a cached space is used without news
	// (a safety net under the invalidations). Defaults to DefaultSpaceCacheTTL.
	SpaceCacheTTL time.Duration
	// SpaceCacheSize bounds the cached spaces. Defaults to DefaultSpaceCacheSize.
	SpaceCacheSize int
	// DecisionTimeout bounds one call to the Decider, unless the Decider
	// answers from memory (decision.Immediate: the local engine over an
	// in-process frequency counter), which needs no timer. Defaults to
	// DefaultDecisionTimeout.
	DecisionTimeout time.Duration
	// TrackingTTL is how long an ad's tracking token is accepted.
	// Defaults to DefaultTrackingTTL.
	TrackingTTL time.Duration
	// Logger defaults to discarding; Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time

	// TracerProvider, when set, traces fills: a span "adspace.fill" per
	// fill, with a child "decision.decide" around the Decider's call. Nil:
	// no spans, at no cost.
	TracerProvider trace.TracerProvider
}

// Service is the ad space system: settings, content, moderation and fill.
type Service struct {
	cfg     Config
	formats map[string]Format
	rules   Rules
	cache   *spaceCache
	viewers *consentCache
	funding *fundingCache // nil without Config.Funding
	logger  *slog.Logger
	now     func() time.Time
	tracer  tracing.Tracer
	macs    sync.Pool // *viewerMAC, keyed with ViewerKeySecret (viewerKey)

	mu          sync.Mutex
	unsubscribe func()
}

// NewService validates cfg and returns the service. Call Start to receive
// invalidations from other instances.
func NewService(cfg Config) (*Service, error) {
	switch {
	case cfg.Spaces == nil || cfg.Contents == nil || cfg.Users == nil:
		return nil, errors.New("adspace: Config needs Spaces, Contents and Users (store/memory.New() implements all three)")
	case cfg.Auth == nil || cfg.Audit == nil || cfg.Tiers == nil:
		return nil, errors.New("adspace: Config needs Auth, Audit and Tiers (from the auth.Service)")
	case cfg.Decider == nil:
		return nil, errors.New("adspace: Config.Decider is required (decision/local.New for the embedded engine)")
	case cfg.Sealer == nil:
		return nil, errors.New("adspace: Config.Sealer is required (tracking.NewSealer)")
	case len(cfg.ViewerKeySecret) < 32:
		return nil, errors.New("adspace: Config.ViewerKeySecret must be at least 32 random bytes, the same on every instance")
	}
	if len(cfg.Formats) == 0 {
		cfg.Formats = DefaultFormats()
	}
	s := &Service{cfg: cfg, formats: map[string]Format{}, logger: cfg.Logger, now: cfg.Now, tracer: tracing.New(cfg.TracerProvider)}
	for _, f := range cfg.Formats {
		if f.Name == "" || NormalizeTerm(f.Name) != f.Name {
			return nil, fmt.Errorf("adspace: format name %q must be lower-case and trimmed", f.Name)
		}
		s.formats[f.Name] = f
	}
	if len(cfg.Rules.Formats) == 0 {
		cfg.Rules.Formats = slices.Sorted(maps.Keys(s.formats))
	}
	s.rules = cfg.Rules.withDefaults()
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.cfg.SpaceCacheTTL = cmp.Or(cfg.SpaceCacheTTL, DefaultSpaceCacheTTL)
	s.cfg.DecisionTimeout = cmp.Or(cfg.DecisionTimeout, DefaultDecisionTimeout)
	s.cfg.TrackingTTL = cmp.Or(cfg.TrackingTTL, DefaultTrackingTTL)
	s.cache = newSpaceCache(cmp.Or(cfg.SpaceCacheSize, DefaultSpaceCacheSize), s.cfg.SpaceCacheTTL)
	if cfg.Funding != nil {
		s.funding = &fundingCache{source: cfg.Funding, logger: s.logger, now: s.now, entries: map[uuid.UUID]fundingEntry{}}
	}
	secret := slices.Clone(cfg.ViewerKeySecret)
	s.macs.New = func() any { return &viewerMAC{h: hmac.New(sha256.New, secret)} }
	s.viewers = &consentCache{max: cmp.Or(cfg.SpaceCacheSize, DefaultSpaceCacheSize), entries: map[uuid.UUID]consentEntry{}}
	return s, nil
}

// Start subscribes to invalidations from other instances. It is a no-op
// without a Broadcaster.
func (s *Service) Start(ctx context.Context) error {
	if s.cfg.Broadcaster == nil {
		return nil
	}
	stop, err := s.cfg.Broadcaster.Subscribe(ctx, invalidationChannel, func(msg string) {
		if msg == "" {
			s.cache.clear()
			return
		}
		s.invalidated(msg)
	})
	if err != nil {
		return fmt.Errorf("adspace: subscribe to invalidations: %w", err)
	}
	s.mu.Lock()
	s.unsubscribe = stop
	s.mu.Unlock()
	return nil
}

// invalidated applies one invalidation message (see invalidationChannel);
// what it cannot read is ignored.
func (s *Service) invalidated(msg string) {
	idPart, versionPart, versioned := strings.Cut(msg, " ")
	id, err := uuid.Parse(idPart)
	if err != nil {
		return
	}
	if !versioned {
		s.cache.drop(id)
		return
	}
	if v, err := strconv.ParseInt(versionPart, 10, 64); err == nil && v > 0 {
		s.cache.dropBefore(id, v)
	} else {
		s.cache.drop(id)
	}
}

// Stop ends the subscription and waits for its goroutine. It is
// idempotent and safe before Start.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	stop := s.unsubscribe
	s.unsubscribe = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	return nil
}

// Formats returns the configured formats.
func (s *Service) Formats() []Format {
	out := make([]Format, 0, len(s.formats))
	for _, name := range slices.Sorted(maps.Keys(s.formats)) {
		out = append(out, s.formats[name])
	}
	return out
}

// viewerKey is the viewer's pseudonymous key: an HMAC of their identity
// under the service's secret, so the ad server can cap frequency without
// learning who anyone is.
func (s *Service) viewerKey(identity string) string {
	m := s.macs.Get().(*viewerMAC) // keyed once, not per fill
	defer s.macs.Put(m)
	m.h.Reset()
	m.in = append(append(m.in[:0], "adshare viewer\x00"...), identity...)
	m.h.Write(m.in)
	if cap(m.in) > 1<<10 {
		m.in = nil // a rare long identity is not kept in the pool
	}
	var out [32]byte
	hex.Encode(out[:], m.h.Sum(m.sum[:0])[:16])
	return string(out[:])
}

// viewerMAC is a keyed HMAC with the buffers viewerKey reuses, so a
// fill's viewer key costs one allocation, its string.
type viewerMAC struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
}

// ViewerKey is the pseudonymous key a signed-in user has as a viewer: the
// key the ad server knows them by (Kevel UserDB's userKey), which their
// erasure asks it to forget.
func (s *Service) ViewerKey(user uuid.UUID) string { return s.viewerKey("user:" + user.String()) }

// ForgetUser drops the user from the service's in-process caches (their
// space, their consent as a viewer), here and, through the Broadcaster,
// on every instance: a step of the user's erasure.
func (s *Service) ForgetUser(ctx context.Context, user uuid.UUID) error {
	s.cache.drop(user)
	s.viewers.mu.Lock()
	delete(s.viewers.entries, user)
	s.viewers.mu.Unlock()
	if s.cfg.Broadcaster != nil {
		if err := s.cfg.Broadcaster.Publish(ctx, invalidationChannel, user.String()); err != nil {
			return fmt.Errorf("adspace: publish invalidation: %w", err)
		}
	}
	return nil
}
