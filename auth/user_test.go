package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		description string
		in          string
		want        string
		wantErr     string
	}{
		{"lower-cased and trimmed", "  Alice@Example.COM ", "alice@example.com", ""},
		{"plus addressing kept", "a+ads@example.com", "a+ads@example.com", ""},
		{"unicode NFC", "zoe\u0308@example.com", "zo\u00eb@example.com", ""},
		{"empty", "   ", "", "is required"},
		{"no at", "alice.example.com", "", "plain email"},
		{"display name", "Alice <alice@example.com>", "", "spaces"},
		{"no dot in domain", "alice@localhost", "", "domain"},
		{"ip literal", "alice@[127.0.0.1]", "", "domain"},
		{"quoted local part", `"a b"@example.com`, "", "spaces"},
		{"quoted local part without space", `"ab"@example.com`, "", "plain email"},
		{"newline injection", "alice@example.com\nBcc: x@example.com", "", "spaces or control"},
		{"NUL", "alice\x00@example.com", "", "control"},
		{"invalid UTF-8", "al\xffice@example.com", "", "UTF-8"},
		{"too long", strings.Repeat("a", 250) + "@example.com", "", "254"},
		{"trailing dot", "alice@example.com.", "", "email"},
		{"two ats", "a@b@example.com", "", "plain email"},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			got, err := auth.NormalizeEmail(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				require.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNewUser(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))

	u, err := auth.NewUser("Bob@Example.com", "", "", now)
	require.NoError(t, err)
	require.Equal(t, "bob@example.com", u.Email)
	require.Equal(t, auth.RoleUser, u.Role)
	require.Equal(t, auth.DefaultTier, u.Tier)
	require.Equal(t, time.UTC, u.CreatedAt.Location())
	require.Equal(t, 123456000, u.CreatedAt.Nanosecond(), "truncated to the microseconds PostgreSQL keeps")
	require.Equal(t, uuid.Version(7), u.ID.Version(), "time-ordered ids")

	other, err := auth.NewUser("bob@example.com", auth.RoleAdvertiser, "pro", now)
	require.NoError(t, err)
	require.NotEqual(t, u.ID, other.ID)

	_, err = auth.NewUser("not-an-email", "root", "gold tier!", now)
	require.ErrorIs(t, err, auth.ErrInvalidUser)
	e := errs.As(err)
	require.NotNil(t, e)
	require.Equal(t, errs.Invalid, e.Kind)
	require.Len(t, e.Fields, 3)
	require.Contains(t, e.Fields, "email")
	require.Contains(t, e.Fields, "role")
	require.Contains(t, e.Fields, "tier")
	require.False(t, errors.Is(err, auth.ErrEmailTaken))
}

func TestRoles(t *testing.T) {
	t.Parallel()
	for _, r := range auth.Roles {
		require.True(t, r.Valid())
	}
	require.False(t, auth.Role("Admin").Valid(), "roles are case-sensitive")
	require.False(t, auth.Role("").Valid())
}
