package privacy

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/jobs"
)

// Defaults of Config.
const (
	// DefaultExportTTL is how long a ready export may be downloaded.
	DefaultExportTTL = 24 * time.Hour
	// DefaultReauthWindow is how recent a sign-in must be to erase an
	// account that has no password.
	DefaultReauthWindow = 10 * time.Minute
	// StaleExportAfter is how long an export may stay pending before a new
	// request takes it to have failed (its job out of attempts) and starts
	// over.
	StaleExportAfter = 6 * time.Hour
	// DefaultRecordLimit caps each kind of raw record in an export.
	DefaultRecordLimit = 100000
)

// Job kinds.
const (
	// ExportJobKind produces an export's bundle.
	ExportJobKind = "privacy.export"
	// ErasureJobKind carries out an erasure's steps.
	ErasureJobKind = "privacy.erase"
)

// Audit actions.
const (
	AuditExportRequested  = "privacy.export_requested"
	AuditExportDownloaded = "privacy.export_downloaded"
	AuditErasureRequested = "privacy.erasure_requested"
	// AuditErasureCompleted names the erasure only (target "erasure"),
	// never the user: it is written after the user is gone.
	AuditErasureCompleted = "privacy.erasure_completed"
)

// Built-in erasure steps; Config.Steps run between StepSessions and
// StepStores.
const (
	StepSessions = "sessions"
	StepStores   = "stores"
)

// Accounts is what erasure needs of the user system (auth.Service has it).
type Accounts interface {
	// Authorize returns nil when p has perm, else auth.ErrForbidden.
	Authorize(ctx context.Context, p auth.Principal, perm auth.Permission) error
	// Reauthenticate returns nil when password is p's account's password,
	// or the account has none and p's session began within window;
	// otherwise auth.ErrInvalidCredentials (a wrong password) or auth.ErrReauthRequired.
	Reauthenticate(ctx context.Context, p auth.Principal, password string, window time.Duration) error
	// EndAllSessions revokes every session of user, in the store and in
	// the revocation list, and returns how many it ended.
	EndAllSessions(ctx context.Context, user uuid.UUID, reason string) (int, error)
	// UserByID returns the user, or auth.ErrUserNotFound.
	UserByID(ctx context.Context, id uuid.UUID) (auth.User, error)
}

// Payouts says whether a user has a payout on its way (billing.Service
// has it).
type Payouts interface {
	PayoutPending(ctx context.Context, user uuid.UUID) (bool, error)
}

// Section is one part of an export bundle: Collect returns a value that
// encodes as JSON, gathered about user.
type Section struct {
	Name    string
	Collect func(ctx context.Context, user uuid.UUID) (any, error)
}

// Step is one step of an erasure outside the stores (the ad server, the
// payments processor, caches). Run must be idempotent: a job that died
// after it may run it again.
type Step struct {
	Name string
	Run  func(ctx context.Context, user uuid.UUID) error
}

// Config configures NewService.
type Config struct {
	// Store keeps exports and erasures, and erases the store. Required.
	Store Store
	// Jobs runs the export and erasure jobs. Required.
	Jobs jobs.Queue
	// Accounts is the user system. Required.
	Accounts Accounts
	// Audit records requests and completions. Required.
	Audit auth.AuditLog
	// LinkKey (at least 32 bytes) signs download tokens. Required.
	LinkKey []byte
	// Sections make up an export, in order. The host appends its own
	// (consent history, say).
	Sections []Section
	// Steps are erasure's steps between ending sessions and erasing the
	// stores, in order.
	Steps []Step
	// Payouts, when set, refuses erasure while a payout is pending.
	Payouts Payouts
	// ExportTTL defaults to DefaultExportTTL.
	ExportTTL time.Duration
	// ReauthWindow defaults to DefaultReauthWindow.
	ReauthWindow time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Service carries out exports and erasures.
type Service struct {
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
}

// NewService checks cfg and registers the export and erasure jobs on
// cfg.Jobs (so call it before the queue starts).
func NewService(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("privacy: Config.Store is required (store/memory or store/postgres)")
	case cfg.Jobs == nil:
		return nil, errors.New("privacy: Config.Jobs is required")
	case cfg.Accounts == nil:
		return nil, errors.New("privacy: Config.Accounts is required (auth.Service)")
	case cfg.Audit == nil:
		return nil, errors.New("privacy: Config.Audit is required")
	case len(cfg.LinkKey) < 32:
		return nil, errors.New("privacy: Config.LinkKey must be at least 32 bytes")
	}
	cfg.ExportTTL = cmp.Or(cfg.ExportTTL, DefaultExportTTL)
	cfg.ReauthWindow = cmp.Or(cfg.ReauthWindow, DefaultReauthWindow)
	s := &Service{cfg: cfg, logger: cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)), now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if err := cfg.Jobs.Register(ExportJobKind, jobs.Typed(s.runExport), &jobs.KindOpts{Timeout: 10 * time.Minute, MaxAttempts: 10}); err != nil {
		return nil, fmt.Errorf("privacy: %w", err)
	}
	if err := cfg.Jobs.Register(ErasureJobKind, jobs.Typed(s.runErasure), &jobs.KindOpts{Timeout: 30 * time.Minute}); err != nil {
		return nil, fmt.Errorf("privacy: %w", err)
	}
	return s, nil
}

type exportArgs struct {
	Export uuid.UUID `json:"export"`
}

type erasureArgs struct {
	Erasure uuid.UUID `json:"erasure"`
}

// RequestExport starts an export of p's own data, or returns the one
// pending; created says which.
func (s *Service) RequestExport(ctx context.Context, p auth.Principal) (Export, bool, error) {
	if err := s.cfg.Accounts.Authorize(ctx, p, auth.PermProfile); err != nil {
		return Export{}, false, err
	}
	return s.requestExport(ctx, p, p.UserID)
}

// RequestExportFor starts an export of user's data for an administrator
// (auth.PermUsersManage), or returns the one pending.
func (s *Service) RequestExportFor(ctx context.Context, p auth.Principal, user uuid.UUID) (Export, bool, error) {
	if err := s.cfg.Accounts.Authorize(ctx, p, auth.PermUsersManage); err != nil {
		return Export{}, false, err
	}
	if _, err := s.cfg.Accounts.UserByID(ctx, user); err != nil {
		return Export{}, false, err
	}
	return s.requestExport(ctx, p, user)
}

func (s *Service) requestExport(ctx context.Context, p auth.Principal, user uuid.UUID) (Export, bool, error) {
	e := Export{ID: uuid.Must(uuid.NewV7()), User: user, RequestedBy: p.UserID, Status: ExportPending, CreatedAt: s.now().UTC()}
	got, created, err := s.cfg.Store.CreateExport(ctx, e)
	if err == nil && !created && s.now().Sub(got.CreatedAt) > StaleExportAfter {
		// Its job failed for good (or was lost): a new request starts over.
		if err := s.cfg.Store.FailExport(ctx, got.ID, s.now()); err != nil {
			return Export{}, false, err
		}
		got, created, err = s.cfg.Store.CreateExport(ctx, e)
	}
	if err != nil || !created {
		return got, false, err
	}
	// The unique key makes a retried enqueue harmless; a job already
	// enqueued for this export is never doubled.
	if _, err := s.cfg.Jobs.Enqueue(ctx, ExportJobKind, exportArgs{Export: got.ID}, &jobs.EnqueueOpts{UniqueKey: "export:" + got.ID.String()}); err != nil {
		_ = s.cfg.Store.FailExport(context.WithoutCancel(ctx), got.ID, s.now())
		return Export{}, false, fmt.Errorf("privacy: enqueue export: %w", err)
	}
	s.record(ctx, auth.AuditEvent{ActorID: p.UserID, Action: AuditExportRequested, TargetType: "user", TargetID: user.String(),
		Details: map[string]string{"export": got.ID.String()}})
	return got, true, nil
}

// Export returns an export for its user, the administrator who asked or
// any holder of auth.PermUsersManage; anyone else gets ErrExportNotFound,
// as for an unknown id.
func (s *Service) Export(ctx context.Context, p auth.Principal, id uuid.UUID) (Export, error) {
	e, err := s.cfg.Store.Export(ctx, id)
	if err != nil {
		return Export{}, err
	}
	if e.User == p.UserID || e.RequestedBy == p.UserID {
		return e, nil
	}
	if s.cfg.Accounts.Authorize(ctx, p, auth.PermUsersManage) != nil {
		return Export{}, ErrExportNotFound
	}
	return e, nil
}

// DownloadToken returns the token of e's download link: the export's id
// and an HMAC of it, so that it cannot be guessed from the id alone.
func (s *Service) DownloadToken(e Export) string {
	return base64.RawURLEncoding.EncodeToString(append(e.ID[:], s.tokenMAC(e.ID)...))
}

func (s *Service) tokenMAC(id uuid.UUID) []byte {
	m := hmac.New(sha256.New, s.cfg.LinkKey)
	m.Write([]byte("adshare export link\x00"))
	m.Write(id[:])
	return m.Sum(nil)[:16]
}

// Download returns the bundle of the export the token names, once: the
// link then answers ErrExportGone, as it does after ExpiresAt. A token
// this deployment did not issue is ErrExportNotFound.
func (s *Service) Download(ctx context.Context, token string) (Export, []byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 32 {
		return Export{}, nil, ErrExportNotFound
	}
	id := uuid.UUID(raw[:16])
	if !hmac.Equal(raw[16:], s.tokenMAC(id)) {
		return Export{}, nil, ErrExportNotFound
	}
	e, bundle, err := s.cfg.Store.TakeExportBundle(ctx, id, s.now())
	if err != nil {
		return Export{}, nil, err
	}
	s.record(ctx, auth.AuditEvent{ActorID: e.RequestedBy, Action: AuditExportDownloaded, TargetType: "user", TargetID: e.User.String(),
		Details: map[string]string{"export": e.ID.String()}})
	return e, bundle, nil
}

// Bundle is the document an export holds.
type Bundle struct {
	// Format names the bundle's shape and version.
	Format      string                     `json:"format"`
	User        uuid.UUID                  `json:"user_id"`
	GeneratedAt time.Time                  `json:"generated_at"`
	Sections    map[string]json.RawMessage `json:"sections"`
}

// BundleFormat is Bundle.Format.
const BundleFormat = "adshare.export/v1"

func (s *Service) runExport(ctx context.Context, a exportArgs) error {
	e, err := s.cfg.Store.Export(ctx, a.Export)
	if errors.Is(err, ErrExportNotFound) {
		return jobs.Permanent(err)
	}
	if err != nil {
		return err
	}
	if e.Status != ExportPending {
		return nil // done by an earlier run
	}
	b, err := s.Collect(ctx, e.User)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return jobs.Permanent(err)
	}
	now := s.now().UTC()
	return s.cfg.Store.CompleteExport(ctx, e.ID, raw, now, now.Add(s.cfg.ExportTTL))
}

// Collect gathers the export bundle of user from every section.
func (s *Service) Collect(ctx context.Context, user uuid.UUID) (Bundle, error) {
	b := Bundle{Format: BundleFormat, User: user, GeneratedAt: s.now().UTC(), Sections: map[string]json.RawMessage{}}
	for _, sec := range s.cfg.Sections {
		v, err := sec.Collect(ctx, user)
		if err != nil {
			return Bundle{}, fmt.Errorf("privacy: export section %s: %w", sec.Name, err)
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return Bundle{}, fmt.Errorf("privacy: export section %s: %w", sec.Name, err)
		}
		b.Sections[sec.Name] = raw
	}
	records, err := s.cfg.Store.UserRecords(ctx, user, DefaultRecordLimit)
	if err != nil {
		return Bundle{}, fmt.Errorf("privacy: export records: %w", err)
	}
	for name, rows := range records {
		if rows == nil {
			rows = []json.RawMessage{}
		}
		raw, _ := json.Marshal(rows)
		b.Sections[name] = raw
	}
	return b, nil
}

// RequestErasure erases p's own account, after re-authentication:
// password must be the account's password, or for an account without one
// p's session must have begun within Config.ReauthWindow. It refuses with
// ErrPayoutPending while a payout is on its way. A second request while
// one is pending returns the pending one (created=false).
func (s *Service) RequestErasure(ctx context.Context, p auth.Principal, password string) (Erasure, bool, error) {
	if err := s.cfg.Accounts.Authorize(ctx, p, auth.PermProfile); err != nil {
		return Erasure{}, false, err
	}
	if err := s.cfg.Accounts.Reauthenticate(ctx, p, password, s.cfg.ReauthWindow); err != nil {
		return Erasure{}, false, err
	}
	return s.requestErasure(ctx, p, p.UserID, false)
}

// RequestErasureFor erases user's account for an administrator
// (auth.PermUsersManage), under the same rules but re-authentication.
func (s *Service) RequestErasureFor(ctx context.Context, p auth.Principal, user uuid.UUID) (Erasure, bool, error) {
	if err := s.cfg.Accounts.Authorize(ctx, p, auth.PermUsersManage); err != nil {
		return Erasure{}, false, err
	}
	if _, err := s.cfg.Accounts.UserByID(ctx, user); err != nil {
		return Erasure{}, false, err
	}
	return s.requestErasure(ctx, p, user, true)
}

func (s *Service) requestErasure(ctx context.Context, p auth.Principal, user uuid.UUID, byAdmin bool) (Erasure, bool, error) {
	if s.cfg.Payouts != nil {
		pending, err := s.cfg.Payouts.PayoutPending(ctx, user)
		if err != nil {
			return Erasure{}, false, err
		}
		if pending {
			return Erasure{}, false, ErrPayoutPending
		}
	}
	e := Erasure{ID: uuid.Must(uuid.NewV7()), User: user, Pseudonym: uuid.New(), ByAdmin: byAdmin, Status: ErasurePending, CreatedAt: s.now().UTC()}
	got, created, err := s.cfg.Store.CreateErasure(ctx, e)
	if err != nil {
		return got, false, err
	}
	if created {
		// Recorded before the job can run: the erasure rewrites the
		// user's id in this record with the rest. Recorded after, it
		// could land once the job had passed and name the user.
		s.record(ctx, auth.AuditEvent{ActorID: p.UserID, Action: AuditErasureRequested, TargetType: "user", TargetID: user.String(),
			Details: map[string]string{"erasure": got.ID.String()}})
	}
	// A repeated request enqueues the pending erasure again: the unique
	// key makes that a no-op while its job waits or runs, and starts it
	// when the first request's enqueue failed after the record was made.
	if _, err := s.cfg.Jobs.Enqueue(ctx, ErasureJobKind, erasureArgs{Erasure: got.ID}, &jobs.EnqueueOpts{UniqueKey: "erasure:" + got.ID.String()}); err != nil {
		return Erasure{}, false, fmt.Errorf("privacy: enqueue erasure: %w", err)
	}
	return got, created, nil
}

// Erasure returns an erasure's record for an administrator
// (auth.PermUsersManage), or for the user while it is pending.
func (s *Service) Erasure(ctx context.Context, p auth.Principal, id uuid.UUID) (Erasure, error) {
	e, err := s.cfg.Store.Erasure(ctx, id)
	if err != nil {
		return Erasure{}, err
	}
	if e.User == p.UserID && e.User != uuid.Nil {
		return e, nil
	}
	if s.cfg.Accounts.Authorize(ctx, p, auth.PermUsersManage) != nil {
		return Erasure{}, ErrErasureNotFound
	}
	return e, nil
}

// payoutWait is how long an erasure whose user got a pending payout after
// the request waits before looking again.
const payoutWait = time.Minute

func (s *Service) runErasure(ctx context.Context, a erasureArgs) error {
	e, err := s.cfg.Store.Erasure(ctx, a.Erasure)
	if errors.Is(err, ErrErasureNotFound) {
		return jobs.Permanent(err)
	}
	if err != nil {
		return err
	}
	if e.Status == ErasureDone {
		return nil
	}
	if s.cfg.Payouts != nil && !e.Done(StepStores) {
		// A payout requested between the request and now: wait for it,
		// rather than lose the money's record.
		pending, err := s.cfg.Payouts.PayoutPending(ctx, e.User)
		if err != nil {
			return err
		}
		if pending {
			return jobs.Snooze(payoutWait)
		}
	}
	steps := append([]Step{{Name: StepSessions, Run: func(ctx context.Context, user uuid.UUID) error {
		_, err := s.cfg.Accounts.EndAllSessions(ctx, user, "erased")
		return err
	}}}, s.cfg.Steps...)
	steps = append(steps, Step{Name: StepStores, Run: func(ctx context.Context, user uuid.UUID) error {
		// Sessions begun since the first step (a sign-in meanwhile) end
		// too, just before the account goes.
		if _, err := s.cfg.Accounts.EndAllSessions(ctx, user, "erased"); err != nil {
			return err
		}
		return s.cfg.Store.EraseUser(ctx, user, e.Pseudonym)
	}})
	for _, st := range steps {
		if e.Done(st.Name) {
			continue
		}
		if err := st.Run(ctx, e.User); err != nil {
			return fmt.Errorf("privacy: erasure step %s: %w", st.Name, err)
		}
		if err := s.cfg.Store.ErasureStepDone(ctx, e.ID, st.Name); err != nil {
			return err
		}
	}
	if err := s.cfg.Store.FinishErasure(ctx, e.ID, s.now().UTC()); err != nil {
		return err
	}
	// Names the erasure and how many steps ran: nothing about the person.
	s.record(ctx, auth.AuditEvent{Action: AuditErasureCompleted, TargetType: "erasure", TargetID: e.ID.String(),
		Details: map[string]string{"steps": fmt.Sprint(len(steps)), "by_admin": fmt.Sprint(e.ByAdmin)}})
	s.logger.InfoContext(ctx, "privacy: erasure completed", slog.String("erasure", e.ID.String()))
	return nil
}

func (s *Service) record(ctx context.Context, e auth.AuditEvent) {
	if e.At.IsZero() {
		e.At = s.now().UTC()
	}
	if e.Outcome == "" {
		e.Outcome = auth.OutcomeSuccess
	}
	if err := s.cfg.Audit.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.logger.ErrorContext(ctx, "privacy: audit event not recorded", slog.String("action", e.Action), slog.Any("error", err))
	}
}
