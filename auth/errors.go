package auth

import "github.com/adshare/adshare/internal/errs"

// Errors returned by this package and by every [UserStore].
var (
	// ErrUserNotFound: no user has the given id or email.
	ErrUserNotFound = errs.New(errs.NotFound, "user_not_found", "user not found")
	// ErrEmailTaken: another account already uses this email.
	ErrEmailTaken = errs.New(errs.Conflict, "email_taken", "an account with this email already exists")
	// ErrUserExists: a user with this id already exists.
	ErrUserExists = errs.New(errs.Conflict, "user_exists", "user already exists")
	// ErrInvalidUser: the user's fields break a rule; the error carries field messages.
	ErrInvalidUser = errs.New(errs.Invalid, "invalid_user", "the user is not valid")
)
