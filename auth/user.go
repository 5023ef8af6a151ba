package auth

import (
	"cmp"
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/adshare/adshare/internal/errs"
)

// Role is a named set of permissions. Roles are data in the token and the
// store; unknown names are rejected by [Role.Valid].
type Role string

// The built-in roles.
const (
	// RoleUser owns an ad space and earns from it. Every new account starts here.
	RoleUser Role = "user"
	// RoleAdvertiser may also create and fund ad content.
	RoleAdvertiser Role = "advertiser"
	// RoleModerator reviews ad content.
	RoleModerator Role = "moderator"
	// RoleAdmin manages users, tiers and money.
	RoleAdmin Role = "admin"
)

// Roles lists every built-in role, least privileged first.
var Roles = []Role{RoleUser, RoleAdvertiser, RoleModerator, RoleAdmin}

// Valid reports whether r is one of [Roles].
func (r Role) Valid() bool {
	for _, known := range Roles {
		if r == known {
			return true
		}
	}
	return false
}

// DefaultTier is the tier a new user starts on.
const DefaultTier = "free"

// MaxTierNameLen bounds a tier name, in bytes.
const MaxTierNameLen = 64

// User is an account. Its ID never changes; Email is stored normalised
// (see [NormalizeEmail]) and is unique across users.
type User struct {
	ID        uuid.UUID
	Email     string
	Role      Role
	Tier      string
	CreatedAt time.Time
}

// NewUser returns a validated user with a fresh time-ordered id, the given
// role and tier, and CreatedAt set to now (truncated to microseconds, the
// precision PostgreSQL keeps). An empty role means [RoleUser] and an empty
// tier [DefaultTier]. It returns an error matching [ErrInvalidUser] with
// field messages when the email, role or tier is not acceptable.
func NewUser(email string, role Role, tier string, now time.Time) (User, error) {
	u := User{
		ID:        uuid.Must(uuid.NewV7()),
		Role:      cmp.Or(role, RoleUser),
		Tier:      cmp.Or(tier, DefaultTier),
		CreatedAt: now.UTC().Truncate(time.Microsecond),
	}
	var fields errs.Fields
	normalized, err := NormalizeEmail(email)
	if err != nil {
		fields.Add("email", err.Error())
	}
	u.Email = normalized
	fields.Check(u.Role.Valid(), "role", "must be one of user, advertiser, moderator, admin")
	fields.Check(validTierName(u.Tier), "tier", "must be 1 to 64 letters, digits, '-' or '_'")
	if err := fields.Err(ErrInvalidUser); err != nil {
		return User{}, err
	}
	return u, nil
}

func validTierName(s string) bool {
	if s == "" || len(s) > MaxTierNameLen || !utf8.ValidString(s) {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0
}

// UserStore keeps users.
type UserStore interface {
	// CreateUser stores a new user. It returns ErrEmailTaken when another user
	// already has u.Email and ErrUserExists when u.ID is already taken. Of two
	// concurrent creates with one email, exactly one succeeds.
	CreateUser(ctx context.Context, u User) error

	// UserByID returns the user with the given id, or ErrUserNotFound.
	UserByID(ctx context.Context, id uuid.UUID) (User, error)

	// UserByEmail returns the user whose normalised email equals email (which
	// the caller has normalised with NormalizeEmail), or ErrUserNotFound.
	UserByEmail(ctx context.Context, email string) (User, error)
}
