package privacy

import "github.com/adshare/adshare/internal/errs"

// Errors returned by this package and by Store implementations. Compare
// with errors.Is.
var (
	// ErrExportNotFound: no export has this id, or it is not the caller's;
	// also a download token that was not issued by this deployment.
	ErrExportNotFound = errs.New(errs.NotFound, "export_not_found", "export not found")
	// ErrExportGone: the download link was used already or has expired;
	// request a new export.
	ErrExportGone = errs.New(errs.Gone, "export_gone", "this download link was used already or has expired; request a new export")
	// ErrExportNotReady: the export is still being produced (or failed);
	// its status says which.
	ErrExportNotReady = errs.New(errs.Conflict, "export_not_ready", "the export is not ready yet; poll its status")
	// ErrErasureNotFound: no erasure has this id.
	ErrErasureNotFound = errs.New(errs.NotFound, "erasure_not_found", "erasure not found")
	// ErrPayoutPending: the user has a payout on its way; erasure is
	// refused until it is paid or has failed, so that the money and its
	// record are not lost.
	ErrPayoutPending = errs.New(errs.Conflict, "payout_pending", "a payout is on its way; erase the account once it is paid or has failed")
)
