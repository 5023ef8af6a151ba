package auth

import (
	"fmt"
	"maps"
	"slices"
)

// Permission names one thing a role may do. Ownership is checked on top:
// a permission to manage ad spaces lets a user manage their own, never
// another's.
type Permission string

// The permissions adshare checks.
const (
	// PermProfile: read and change one's own profile, sessions and password.
	PermProfile Permission = "profile"
	// PermAdSpace: manage one's own ad space and see its analytics.
	PermAdSpace Permission = "adspace"
	// PermContentCreate: create, fund and manage one's own ad content.
	PermContentCreate Permission = "content:create"
	// PermContentModerate: work the moderation queue.
	PermContentModerate Permission = "content:moderate"
	// PermUsersRead: read any user's account.
	PermUsersRead Permission = "users:read"
	// PermUsersManage: change any user's role and tier, end their sessions.
	PermUsersManage Permission = "users:manage"
	// PermAuditRead: read the audit log.
	PermAuditRead Permission = "audit:read"
	// PermAnalyticsAll: read analytics across all users.
	PermAnalyticsAll Permission = "analytics:all"
	// PermBillingManage: settle, pay out and adjust money.
	PermBillingManage Permission = "billing:manage"
	// PermAnnounce: broadcast a system alert to every connected client.
	PermAnnounce Permission = "alerts:announce"
)

// DefaultRolePermissions is the built-in mapping of roles to permissions.
// Each role has everything the roles before it have.
func DefaultRolePermissions() map[Role][]Permission {
	user := []Permission{PermProfile, PermAdSpace}
	advertiser := append(slices.Clone(user), PermContentCreate)
	moderator := append(slices.Clone(advertiser), PermContentModerate, PermUsersRead)
	admin := append(slices.Clone(moderator), PermUsersManage, PermAuditRead, PermAnalyticsAll, PermBillingManage, PermAnnounce)
	return map[Role][]Permission{
		RoleUser:       user,
		RoleAdvertiser: advertiser,
		RoleModerator:  moderator,
		RoleAdmin:      admin,
	}
}

// RBAC answers whether a role has a permission. It is immutable and safe
// for concurrent use. Roles and permissions not in its table have nothing:
// access is denied by default.
type RBAC struct {
	grants map[Role]map[Permission]bool
}

// NewRBAC builds an RBAC from a role → permissions table, such as
// DefaultRolePermissions with host additions. Every role must be one of
// Roles.
func NewRBAC(table map[Role][]Permission) (*RBAC, error) {
	r := &RBAC{grants: make(map[Role]map[Permission]bool, len(table))}
	for _, role := range slices.Sorted(maps.Keys(table)) {
		if !role.Valid() {
			return nil, fmt.Errorf("auth: RBAC table names unknown role %q; use one of %v", role, Roles)
		}
		set := make(map[Permission]bool)
		for _, p := range table[role] {
			set[p] = true
		}
		r.grants[role] = set
	}
	return r, nil
}

// Can reports whether role has permission p.
func (r *RBAC) Can(role Role, p Permission) bool {
	return r.grants[role][p]
}

// Permissions returns the role's permissions, sorted.
func (r *RBAC) Permissions(role Role) []Permission {
	return slices.Sorted(maps.Keys(r.grants[role]))
}
