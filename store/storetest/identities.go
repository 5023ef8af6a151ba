package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
)

// RunIdentityStore runs the auth.IdentityStore contract.
func RunIdentityStore(t *testing.T, newStore func(t *testing.T) AuthStores) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

	t.Run("link, find, list; one identity belongs to one account", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		u := NewUser(t, "linker@example.com")
		require.NoError(t, createUser(ctx, s, u))
		google := auth.Identity{Issuer: "https://accounts.google.com", Subject: "1234", UserID: u.ID, Provider: "google", Email: "linker@gmail.com", CreatedAt: t0}
		apple := auth.Identity{Issuer: "https://appleid.apple.com", Subject: "abc.def", UserID: u.ID, Provider: "apple", CreatedAt: t0.Add(time.Minute)}
		require.NoError(t, s.LinkIdentity(ctx, google))
		require.NoError(t, s.LinkIdentity(ctx, apple))

		got, err := s.IdentityBySubject(ctx, google.Issuer, google.Subject)
		require.NoError(t, err)
		require.Equal(t, google, got)
		list, err := s.UserIdentities(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, []auth.Identity{google, apple}, list)

		// The same subject at another issuer is another identity.
		_, err = s.IdentityBySubject(ctx, "https://evil.example", google.Subject)
		require.ErrorIs(t, err, auth.ErrIdentityNotFound)

		other := NewUser(t, "other@example.com")
		require.NoError(t, createUser(ctx, s, other))
		stolen := google
		stolen.UserID = other.ID
		require.ErrorIs(t, s.LinkIdentity(ctx, stolen), auth.ErrIdentityLinked)
		got, err = s.IdentityBySubject(ctx, google.Issuer, google.Subject)
		require.NoError(t, err)
		require.Equal(t, u.ID, got.UserID)

		orphan := google
		orphan.Subject, orphan.UserID = "999", uuid.New()
		require.ErrorIs(t, s.LinkIdentity(ctx, orphan), auth.ErrUserNotFound)
		none, err := s.UserIdentities(ctx, uuid.New())
		require.NoError(t, err)
		require.Empty(t, none)
	})
}

// RunAuditLog runs the auth.AuditLog contract.
func RunAuditLog(t *testing.T, newStore func(t *testing.T) AuthStores) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

	t.Run("append, filter and page, newest first", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		alice, bob := uuid.New(), uuid.New()
		events := []auth.AuditEvent{
			{At: t0, ActorID: alice, Action: auth.AuditLoginSuccess, TargetType: "user", TargetID: alice.String(), IP: "198.51.100.1", UserAgent: "app/1", Outcome: auth.OutcomeSuccess},
			{At: t0.Add(time.Minute), Action: auth.AuditLoginFailure, TargetType: "email", TargetID: "5f3a", Outcome: auth.OutcomeFailure, Reason: "unknown_email"},
			{At: t0.Add(2 * time.Minute), ActorID: bob, Action: auth.AuditTierChanged, TargetType: "user", TargetID: alice.String(), Outcome: auth.OutcomeSuccess, Details: map[string]string{"from": "free", "to": "pro"}},
			{At: t0.Add(3 * time.Minute), ActorID: alice, Action: auth.AuditAccessDenied, TargetType: "permission", TargetID: "audit:read", Outcome: auth.OutcomeDenied, Reason: "missing_permission"},
		}
		for _, e := range events {
			require.NoError(t, s.AppendAudit(ctx, e))
		}

		all, err := s.AuditEvents(ctx, auth.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, all, 4)
		require.Equal(t, auth.AuditAccessDenied, all[0].Action, "newest first")
		require.Greater(t, all[0].ID, all[1].ID)
		require.Equal(t, map[string]string{"from": "free", "to": "pro"}, all[1].Details)
		require.Equal(t, uuid.Nil, all[2].ActorID, "anonymous events have no actor")
		require.Equal(t, "unknown_email", all[2].Reason)
		require.Equal(t, "198.51.100.1", all[3].IP)
		require.Equal(t, "app/1", all[3].UserAgent)
		require.True(t, t0.Equal(all[3].At))

		byActor, err := s.AuditEvents(ctx, auth.AuditFilter{ActorID: alice})
		require.NoError(t, err)
		require.Len(t, byActor, 2)
		byTarget, err := s.AuditEvents(ctx, auth.AuditFilter{TargetID: alice.String()})
		require.NoError(t, err)
		require.Len(t, byTarget, 2)
		byAction, err := s.AuditEvents(ctx, auth.AuditFilter{Action: auth.AuditLoginFailure})
		require.NoError(t, err)
		require.Len(t, byAction, 1)
		window, err := s.AuditEvents(ctx, auth.AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)})
		require.NoError(t, err)
		require.Len(t, window, 2)
		page, err := s.AuditEvents(ctx, auth.AuditFilter{Limit: 2})
		require.NoError(t, err)
		require.Len(t, page, 2)
		next, err := s.AuditEvents(ctx, auth.AuditFilter{Limit: 2, BeforeID: page[1].ID})
		require.NoError(t, err)
		require.Len(t, next, 2)
		require.Equal(t, all[2].ID, next[0].ID)
	})
}
