package adspace

import "github.com/adshare/adshare/internal/errs"

// Errors returned by this package and by every [Store].
var (
	// ErrSpaceNotFound: the user has no ad space.
	ErrSpaceNotFound = errs.New(errs.NotFound, "space_not_found", "ad space not found")
	// ErrSpaceExists: the user already has an ad space.
	ErrSpaceExists = errs.New(errs.Conflict, "space_exists", "the user already has an ad space")
	// ErrOwnerNotFound: the space's owner is not a known user.
	ErrOwnerNotFound = errs.New(errs.NotFound, "owner_not_found", "the ad space's owner does not exist")
	// ErrVersionConflict: the space changed since the version the caller read.
	ErrVersionConflict = errs.New(errs.Conflict, "version_conflict", "the ad space was changed by someone else; reload and retry")
	// ErrInvalidSettings: the settings break a rule; the error carries field messages.
	ErrInvalidSettings = errs.New(errs.Invalid, "invalid_settings", "the ad space settings are not valid")
)
