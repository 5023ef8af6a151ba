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

	// ErrContentNotFound: no such content (or not the caller's).
	ErrContentNotFound = errs.New(errs.NotFound, "content_not_found", "ad content not found")
	// ErrInvalidContent: the content breaks a rule; the error carries field messages.
	ErrInvalidContent = errs.New(errs.Invalid, "invalid_content", "the ad content is not valid")
	// ErrDuplicateContent: the advertiser already has live content like this.
	ErrDuplicateContent = errs.New(errs.Conflict, "duplicate_content", "you already have an ad with the same title, text and link")
	// ErrInvalidTransition: the content's state does not allow the action.
	ErrInvalidTransition = errs.New(errs.Conflict, "invalid_transition", "the ad content's state does not allow this")
	// ErrContentLimit: the advertiser's tier allows no more live content.
	ErrContentLimit = errs.New(errs.Forbidden, "content_limit", "your tier allows no more ad content; archive some or upgrade")
	// ErrSpaceDisabled: the owner turned the space off.
	ErrSpaceDisabled = errs.New(errs.NotFound, "space_disabled", "this ad space is turned off")
)

// errAsFields returns the field messages of a validation error, or nil.
func errAsFields(err error) map[string]string {
	if e := errs.As(err); e != nil && e.Kind == errs.Invalid {
		return e.Fields
	}
	return nil
}
