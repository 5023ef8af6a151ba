package auth

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config.
const (
	// DefaultSessionIdleTimeout ends a session not refreshed for this long.
	DefaultSessionIdleTimeout = 30 * 24 * time.Hour
	// DefaultSessionMaxLifetime ends every session this long after sign-in.
	DefaultSessionMaxLifetime = 90 * 24 * time.Hour
	// DefaultRefreshGrace is how long after a rotation a second use of the
	// same refresh token gets the same successor instead of revoking the
	// session (see Service.Refresh).
	DefaultRefreshGrace = 10 * time.Second
	// DefaultAdvertiserTerms is the version of the advertiser terms when
	// the host sets none.
	DefaultAdvertiserTerms = "2026-12-01"
	// maxRefreshGrace bounds the grace window: it is a window for theft too.
	maxRefreshGrace = time.Minute
)

// Default rate limits of sign-in.
var (
	// DefaultLoginLimitPerAccount: 5 attempts at once, then one every 3 minutes.
	DefaultLoginLimitPerAccount = Limit{Rate: 5, Period: 15 * time.Minute, Burst: 5}
	// DefaultLoginLimitPerClient: 20 attempts at once, then one every 6 seconds,
	// per client IP (per /64 for IPv6).
	DefaultLoginLimitPerClient = Limit{Rate: 10, Period: time.Minute, Burst: 20}
	// DefaultRegisterLimitPerClient: 5 sign-ups at once, then one every 12 minutes.
	DefaultRegisterLimitPerClient = Limit{Rate: 5, Period: time.Hour, Burst: 5}
	// DefaultRefreshLimitPerClient: generous; refresh is cheap but a flood is not.
	DefaultRefreshLimitPerClient = Limit{Rate: 120, Period: time.Minute, Burst: 60}
)

// Config configures NewService. Stores and Tokens are required; every
// other field has a documented default.
type Config struct {
	// Users, Sessions, Identities and Audit are the stores.
	Users      UserStore
	Sessions   SessionStore
	Identities IdentityStore
	Audit      AuditLog
	// Limiter counts sign-in attempts. Sign-in fails closed (503) when it
	// cannot answer.
	Limiter Limiter
	// Revocations refuses access tokens of ended sessions on every instance.
	Revocations RevocationList
	// OneTime keeps OIDC transactions and nonces.
	OneTime OneTimeStore
	// Tokens issues and verifies access tokens.
	Tokens *Tokens
	// RefreshKey (at least 32 bytes, secret, the same on every instance)
	// derives refresh-token successors and keys audit hashes of unknown
	// emails.
	RefreshKey []byte

	// Hasher hashes passwords. Defaults to NewHasher with its defaults.
	Hasher *Hasher
	// Tiers is the tier table. Defaults to DefaultTiers.
	Tiers *Tiers
	// RBAC maps roles to permissions. Defaults to DefaultRolePermissions.
	RBAC *RBAC
	// Providers are the OpenID Connect providers users may sign in with.
	Providers []IdentityProvider

	// SessionIdleTimeout defaults to DefaultSessionIdleTimeout.
	SessionIdleTimeout time.Duration
	// SessionMaxLifetime defaults to DefaultSessionMaxLifetime.
	SessionMaxLifetime time.Duration
	// RefreshGrace defaults to DefaultRefreshGrace; negative disables it
	// (then every second use of a refresh token revokes its session, and
	// clients must never refresh twice concurrently). At most a minute.
	RefreshGrace time.Duration

	// Limits; zero values mean the defaults above.
	LoginLimitPerAccount      Limit
	LoginLimitPerClient       Limit
	RegisterLimitPerClient    Limit
	RefreshLimitPerClient     Limit
	OIDCTransactionTTL        time.Duration // default 10 minutes
	AllowOIDCSignUp           *bool         // default true: first sign-in through a provider creates an account
	AllowPasswordRegistration *bool         // default true

	// AdvertiserTerms is the version of the advertiser terms a user must
	// accept to become an advertiser (BecomeAdvertiser). Defaults to
	// DefaultAdvertiserTerms; change it when the terms change, so that
	// everyone accepts the new ones.
	AdvertiserTerms string

	// Consents keeps consent histories (store/memory and store/postgres
	// implement it). Nil: consent cannot be set through SetConsent (it
	// answers ErrConsentUnavailable) and fills follow the profile settings.
	Consents ConsentStore
	// ConsentPolicies are the privacy policy versions consent may be given
	// against, oldest first; the last is current and is what records made
	// from profile changes carry. Defaults to [DefaultConsentPolicy]. Keep
	// old versions listed only while their consent is still valid.
	ConsentPolicies []string
	// ConsentObservers are told of every consent change, in order.
	ConsentObservers []ConsentObserver

	// AccountObservers are told of every account created (by password
	// sign-up or a first provider sign-in), in order: adspace.Service
	// creates the user's ad space. An observer's error is logged, not
	// returned: the account exists either way, so an observer must be
	// idempotent and ensure its work again later where it matters.
	AccountObservers []AccountObserver

	// Metrics is where sign-in, refresh and token metrics (adshare_auth_*)
	// are registered; nil: none.
	Metrics prometheus.Registerer

	// Logger defaults to discarding. Now defaults to time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

// AccountObserver is told of new accounts. adspace.Service implements it;
// so will whatever else keeps something per user.
type AccountObserver interface {
	// AccountCreated runs after u was created. It must be idempotent.
	AccountCreated(ctx context.Context, u User) error
}

// Service is adshare's user system: accounts, sign-in, sessions, tokens,
// profiles, tiers, roles and the audit log. It is safe for concurrent use.
type Service struct {
	cfg       Config
	users     UserStore
	sessions  SessionStore
	idents    IdentityStore
	audit     AuditLog
	limiter   Limiter
	revoked   RevocationList
	onetime   OneTimeStore
	tokens    *Tokens
	hasher    *Hasher
	tiers     *Tiers
	rbac      *RBAC
	authz     *Authorizer
	history   TierHistory
	auditor   auditor
	providers map[string]IdentityProvider
	logger    *slog.Logger
	now       func() time.Time
	metrics   *metrics
}

// NewService validates cfg and returns the service.
func NewService(cfg Config) (*Service, error) {
	switch {
	case cfg.Users == nil || cfg.Sessions == nil || cfg.Identities == nil || cfg.Audit == nil:
		return nil, errors.New("auth: Config needs Users, Sessions, Identities and Audit stores (store/memory.New() implements all four)")
	case cfg.Limiter == nil || cfg.Revocations == nil || cfg.OneTime == nil:
		return nil, errors.New("auth: Config needs a Limiter, a RevocationList and a OneTimeStore (store/memory or store/redis)")
	case cfg.Tokens == nil:
		return nil, errors.New("auth: Config.Tokens is required (see NewTokens)")
	case len(cfg.RefreshKey) < 32:
		return nil, errors.New("auth: Config.RefreshKey must be at least 32 random bytes, the same on every instance")
	}
	s := &Service{
		cfg: cfg, users: cfg.Users, sessions: cfg.Sessions, idents: cfg.Identities, audit: cfg.Audit,
		limiter: cfg.Limiter, revoked: cfg.Revocations, onetime: cfg.OneTime, tokens: cfg.Tokens,
		hasher: cfg.Hasher, tiers: cfg.Tiers, rbac: cfg.RBAC, logger: cfg.Logger, now: cfg.Now,
		providers: map[string]IdentityProvider{},
	}
	var err error
	if s.metrics, err = newMetrics(cfg.Metrics); err != nil {
		return nil, err
	}
	if s.hasher == nil {
		if s.hasher, err = NewHasher(HasherConfig{}); err != nil {
			return nil, err
		}
	}
	if s.tiers == nil {
		if s.tiers, err = NewTiers(DefaultTiers()); err != nil {
			return nil, err
		}
	}
	if s.rbac == nil {
		if s.rbac, err = NewRBAC(DefaultRolePermissions()); err != nil {
			return nil, err
		}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.auditor = newAuditor(s.audit, s.logger, s.now)
	s.authz = &Authorizer{rbac: s.rbac, audit: s.auditor}
	s.history = TierHistory{Users: s.users, Tiers: s.tiers}
	for _, p := range cfg.Providers {
		if _, dup := s.providers[p.Name()]; dup {
			return nil, fmt.Errorf("auth: two identity providers are named %q", p.Name())
		}
		s.providers[p.Name()] = p
	}
	c := &s.cfg
	c.SessionIdleTimeout = cmp.Or(c.SessionIdleTimeout, DefaultSessionIdleTimeout)
	c.SessionMaxLifetime = cmp.Or(c.SessionMaxLifetime, DefaultSessionMaxLifetime)
	c.RefreshGrace = cmp.Or(c.RefreshGrace, DefaultRefreshGrace)
	if c.RefreshGrace > maxRefreshGrace {
		return nil, errors.New("auth: Config.RefreshGrace must be at most a minute")
	}
	if c.SessionIdleTimeout > c.SessionMaxLifetime {
		return nil, errors.New("auth: Config.SessionIdleTimeout must not exceed SessionMaxLifetime")
	}
	c.LoginLimitPerAccount = orLimit(c.LoginLimitPerAccount, DefaultLoginLimitPerAccount)
	c.LoginLimitPerClient = orLimit(c.LoginLimitPerClient, DefaultLoginLimitPerClient)
	c.RegisterLimitPerClient = orLimit(c.RegisterLimitPerClient, DefaultRegisterLimitPerClient)
	c.RefreshLimitPerClient = orLimit(c.RefreshLimitPerClient, DefaultRefreshLimitPerClient)
	c.OIDCTransactionTTL = cmp.Or(c.OIDCTransactionTTL, 10*time.Minute)
	c.AdvertiserTerms = cmp.Or(c.AdvertiserTerms, DefaultAdvertiserTerms)
	if len(c.ConsentPolicies) == 0 {
		c.ConsentPolicies = []string{DefaultConsentPolicy}
	}
	return s, nil
}

func orLimit(l, def Limit) Limit {
	if l == (Limit{}) {
		return def
	}
	return l
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// Tokens returns the token issuer, for the JWKS endpoint.
func (s *Service) Tokens() *Tokens { return s.tokens }

// Tiers returns the tier table.
func (s *Service) Tiers() *Tiers { return s.tiers }

// AdvertiserTerms returns the version of the advertiser terms in force.
func (s *Service) AdvertiserTerms() string { return s.cfg.AdvertiserTerms }

// RBAC returns the role table.
func (s *Service) RBAC() *RBAC { return s.rbac }

// ProviderNames lists the configured identity providers.
func (s *Service) ProviderNames() []string {
	names := make([]string, 0, len(s.providers))
	for n := range s.providers {
		names = append(names, n)
	}
	return names
}

// TokenPair is what a successful sign-in or refresh returns.
type TokenPair struct {
	AccessToken string
	// ExpiresIn is the access token's lifetime.
	ExpiresIn time.Duration
	// RefreshToken is opaque; it is shown once and stored only hashed.
	RefreshToken string
	// RefreshExpiresAt is when the session ends if not refreshed before
	// (the earlier of its idle and absolute expiry).
	RefreshExpiresAt time.Time
	SessionID        uuid.UUID
	UserID           uuid.UUID
}

// startSession creates a session for u and returns its first tokens.
func (s *Service) startSession(ctx context.Context, u User, method string) (TokenPair, Session, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	c := ClientFromContext(ctx)
	sess := Session{
		ID:                uuid.Must(uuid.NewV7()),
		UserID:            u.ID,
		Method:            method,
		UserAgent:         c.UserAgent,
		IP:                c.IP,
		CreatedAt:         now,
		LastUsedAt:        now,
		IdleExpiresAt:     now.Add(s.cfg.SessionIdleTimeout),
		AbsoluteExpiresAt: now.Add(s.cfg.SessionMaxLifetime),
		Generation:        1,
	}
	refresh := newRefreshToken()
	if err := s.sessions.CreateSession(ctx, sess, hashRefreshToken(refresh)); err != nil {
		return TokenPair{}, Session{}, fmt.Errorf("auth: create session: %w", err)
	}
	pair, err := s.tokenPair(u.ID, u.Role, sess, refresh)
	return pair, sess, err
}

func (s *Service) tokenPair(user uuid.UUID, role Role, sess Session, refresh string) (TokenPair, error) {
	access, _, err := s.tokens.Issue(user, sess.ID, role)
	if err != nil {
		return TokenPair{}, err
	}
	expires := sess.IdleExpiresAt
	if sess.AbsoluteExpiresAt.Before(expires) {
		expires = sess.AbsoluteExpiresAt
	}
	return TokenPair{
		AccessToken: access, ExpiresIn: s.tokens.TTL(), RefreshToken: refresh,
		RefreshExpiresAt: expires, SessionID: sess.ID, UserID: user,
	}, nil
}

// accountCreated tells the observers of u.
func (s *Service) accountCreated(ctx context.Context, u User) {
	for _, o := range s.cfg.AccountObservers {
		if err := o.AccountCreated(ctx, u); err != nil {
			s.logger.ErrorContext(ctx, "auth: an account observer failed", slog.String("user", u.ID.String()), slog.Any("error", err))
		}
	}
}

// record appends an audit event, filling in the time and client.
func (s *Service) record(ctx context.Context, e AuditEvent) { s.auditor.record(ctx, e) }

// auditor appends audit events for the auth Service and the Authorizer.
type auditor struct {
	log    AuditLog
	logger *slog.Logger
	now    func() time.Time
}

func newAuditor(log AuditLog, logger *slog.Logger, now func() time.Time) auditor {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return auditor{log: log, logger: logger, now: now}
}

// record appends an audit event, filling in the time and client. A failure
// to audit is logged, not returned: the action itself already happened.
func (a auditor) record(ctx context.Context, e AuditEvent) {
	c := ClientFromContext(ctx)
	e.At = a.now().UTC()
	e.IP, e.UserAgent = c.IP, c.UserAgent
	if e.Outcome == "" {
		e.Outcome = OutcomeSuccess
	}
	if err := a.log.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		a.logger.ErrorContext(ctx, "auth: audit append failed", slog.String("action", e.Action), slog.Any("error", err))
	}
}

// emailKey is a keyed hash of an email, so that rate-limit keys and audit
// entries about unknown accounts hold no address.
func (s *Service) emailKey(email string) string {
	m := hmac.New(sha256.New, s.cfg.RefreshKey)
	m.Write([]byte("adshare email\x00"))
	m.Write([]byte(email))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// clientBucket buckets a client address for rate limits: the address for
// IPv4, its /64 for IPv6 (one subscriber usually holds a whole /64).
func clientBucket(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return "unknown"
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// allow checks one rate limit, failing closed: when the limiter cannot
// answer the action is refused with ErrLimiterUnavailable.
func (s *Service) allow(ctx context.Context, key string, l Limit) error {
	res, err := s.limiter.Allow(ctx, key, l)
	if err != nil {
		s.logger.ErrorContext(ctx, "auth: rate limiter unavailable", slog.Any("error", err))
		return ErrLimiterUnavailable.WithRetryAfter(5 * time.Second).WithCause(err)
	}
	if !res.Allowed {
		return ErrTooManyAttempts.WithRetryAfter(res.RetryAfter)
	}
	return nil
}
