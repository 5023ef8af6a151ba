package privacy

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// ExportStatus is where an export is.
type ExportStatus string

// Export statuses.
const (
	// ExportPending: the job has not finished the bundle yet.
	ExportPending ExportStatus = "pending"
	// ExportReady: the bundle may be downloaded, once, until ExpiresAt.
	ExportReady ExportStatus = "ready"
	// ExportDownloaded: the bundle was downloaded and deleted.
	ExportDownloaded ExportStatus = "downloaded"
	// ExportFailed: the job failed for good; request a new export.
	ExportFailed ExportStatus = "failed"
)

// Export is one export of a user's data.
type Export struct {
	ID uuid.UUID
	// User is whose data it holds.
	User uuid.UUID
	// RequestedBy is who asked: the user, or an administrator.
	RequestedBy uuid.UUID
	Status      ExportStatus
	CreatedAt   time.Time
	// ReadyAt and ExpiresAt are set when the bundle is ready.
	ReadyAt   time.Time
	ExpiresAt time.Time
	// DownloadedAt is set by the one download.
	DownloadedAt time.Time
	// Size is the bundle's length in bytes, once ready.
	Size int64
}

// ErasureStatus is where an erasure is.
type ErasureStatus string

// Erasure statuses.
const (
	// ErasurePending: the job has steps left.
	ErasurePending ErasureStatus = "pending"
	// ErasureDone: every step finished; the record names the user no more.
	ErasureDone ErasureStatus = "done"
)

// Erasure is one erasure of a user. Once done, User is uuid.Nil: the
// record keeps no personal data, only that an erasure happened.
type Erasure struct {
	ID uuid.UUID
	// User is who is erased; uuid.Nil once done.
	User uuid.UUID
	// Pseudonym replaces the user's id in what is kept (ledger entries,
	// payouts, rollups, the audit log): random, linked to nothing.
	Pseudonym uuid.UUID
	// ByAdmin says an administrator asked (not the user).
	ByAdmin bool
	Status  ErasureStatus
	// Steps are the steps finished so far, in order.
	Steps      []string
	CreatedAt  time.Time
	FinishedAt time.Time
}

// Done reports whether step finished already.
func (e Erasure) Done(step string) bool {
	for _, s := range e.Steps {
		if s == step {
			return true
		}
	}
	return false
}

// Store keeps exports and erasures, and erases a user from the store's
// own data. store/memory and store/postgres implement it.
type Store interface {
	// CreateExport stores e, unless the user has an export pending: then
	// it stores nothing and returns that one with created=false.
	CreateExport(ctx context.Context, e Export) (got Export, created bool, err error)
	// Export returns the export of that id, or ErrExportNotFound.
	Export(ctx context.Context, id uuid.UUID) (Export, error)
	// LatestExport returns the user's newest export, or ErrExportNotFound.
	LatestExport(ctx context.Context, user uuid.UUID) (Export, error)
	// CompleteExport keeps the bundle of a pending export and makes it
	// ready until expires. On an export that is not pending it changes
	// nothing and returns nil (a job run twice). ErrExportNotFound when
	// there is none.
	CompleteExport(ctx context.Context, id uuid.UUID, bundle []byte, now, expires time.Time) error
	// FailExport marks a pending export failed.
	FailExport(ctx context.Context, id uuid.UUID, now time.Time) error
	// TakeExportBundle returns a ready export's bundle and, in the same
	// write, marks it downloaded and deletes the bundle: a second call
	// gets ErrExportGone, as does a call at or after ExpiresAt (which
	// deletes the bundle too). ErrExportNotReady while pending or failed,
	// ErrExportNotFound when there is none.
	TakeExportBundle(ctx context.Context, id uuid.UUID, now time.Time) (Export, []byte, error)

	// CreateErasure stores e, unless the user has an erasure pending:
	// then it stores nothing and returns that one with created=false.
	CreateErasure(ctx context.Context, e Erasure) (got Erasure, created bool, err error)
	// Erasure returns the erasure of that id, or ErrErasureNotFound.
	Erasure(ctx context.Context, id uuid.UUID) (Erasure, error)
	// ErasureStepDone records that step of a pending erasure finished.
	ErasureStepDone(ctx context.Context, id uuid.UUID, step string) error
	// FinishErasure marks the erasure done, forgetting its user.
	FinishErasure(ctx context.Context, id uuid.UUID, now time.Time) error

	// UserRecords returns, as JSON values, the store's raw records about
	// the user that no other interface lists: analytics events about the
	// user's space or with the user as the viewer, and ledger entries of
	// the user's accounts; at most limit of each kind, newest first.
	UserRecords(ctx context.Context, user uuid.UUID, limit int) (map[string][]json.RawMessage, error)
	// EraseUser removes the user from everything the store keeps: the
	// account and everything only about it (profile, password, sessions,
	// refresh tokens, identities, tier history, ad space, ad content,
	// payee record, exports, consent history) is deleted; events where the user was the
	// viewer lose the viewer; what must be kept (events about the user's
	// space, rollups, ledger accounts and entries, top-ups, payouts, holds,
	// audit entries) names pseudonym instead of the user, and audit
	// entries about the user lose their client address, user agent and
	// details. It is idempotent: erasing an erased user changes nothing.
	EraseUser(ctx context.Context, user, pseudonym uuid.UUID) error
}
