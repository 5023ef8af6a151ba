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
	ID    uuid.UUID
	Email string
	Role  Role
	// Tier is the name of the user's current tier (see Tiers).
	Tier string
	// Profile holds what the user may change themselves.
	Profile   Profile
	CreatedAt time.Time
	UpdatedAt time.Time
}

// NewUser returns a validated user with a fresh time-ordered id, the given
// role and tier, the default profile, and CreatedAt and UpdatedAt set to now
// (truncated to microseconds, the precision PostgreSQL keeps). An empty role means [RoleUser] and an empty
// tier [DefaultTier]. It returns an error matching [ErrInvalidUser] with
// field messages when the email, role or tier is not acceptable.
func NewUser(email string, role Role, tier string, now time.Time) (User, error) {
	now = now.UTC().Truncate(time.Microsecond)
	u := User{
		ID:        uuid.Must(uuid.NewV7()),
		Role:      cmp.Or(role, RoleUser),
		Tier:      cmp.Or(tier, DefaultTier),
		Profile:   DefaultProfile(),
		CreatedAt: now,
		UpdatedAt: now,
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

// NewAccount is what UserStore.CreateAccount stores, all or nothing.
type NewAccount struct {
	User User
	// PasswordHash is the encoded password hash; empty for accounts that
	// sign in only through an identity provider.
	PasswordHash string
	// Identity, when set, is linked to the new account in the same write
	// (first sign-in through a provider).
	Identity *Identity
}

// UserStore keeps users, their password hashes and their tier history.
type UserStore interface {
	// CreateAccount stores a new user, with its password hash or identity,
	// and records its starting tier (effective at CreatedAt), atomically. It
	// returns ErrEmailTaken when another user already has the email,
	// ErrUserExists when the id is taken and ErrIdentityLinked when the
	// identity is linked already. Of two concurrent creates with one email,
	// exactly one succeeds.
	CreateAccount(ctx context.Context, a NewAccount) error

	// UserByID returns the user with the given id, or ErrUserNotFound.
	UserByID(ctx context.Context, id uuid.UUID) (User, error)

	// UserByEmail returns the user whose normalised email equals email (which
	// the caller has normalised with NormalizeEmail), or ErrUserNotFound.
	UserByEmail(ctx context.Context, email string) (User, error)

	// PasswordHash returns the user's encoded password hash. It returns
	// ErrUserNotFound for an unknown user and ErrNoPassword when the account
	// has none.
	PasswordHash(ctx context.Context, id uuid.UUID) (string, error)

	// SetPasswordHash replaces the user's password hash, or returns
	// ErrUserNotFound.
	SetPasswordHash(ctx context.Context, id uuid.UUID, hash string, now time.Time) error

	// UpdateProfile replaces the user's profile (already validated) and
	// returns the stored user, or ErrUserNotFound.
	UpdateProfile(ctx context.Context, id uuid.UUID, p Profile, now time.Time) (User, error)

	// SetRole changes the user's role and returns the stored user, or
	// ErrUserNotFound.
	SetRole(ctx context.Context, id uuid.UUID, role Role, now time.Time) (User, error)

	// SetTier moves the user to c.Tier from c.EffectiveAt on, recording the
	// change in the tier history, atomically; it returns the stored user or
	// ErrUserNotFound.
	SetTier(ctx context.Context, c TierChange) (User, error)

	// TierAt returns the name of the tier the user was on at the given
	// moment: the latest change effective at or before it. It returns
	// ErrUserNotFound for an unknown user, and the starting tier for moments
	// before the account existed.
	TierAt(ctx context.Context, id uuid.UUID, at time.Time) (string, error)
}
