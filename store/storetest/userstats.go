package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
)

// UserStatsStores is analytics.UserStats with the stores that feed it.
type UserStatsStores interface {
	analytics.UserStats
	auth.UserStore
	auth.AuditLog
}

// RunUserStats runs the analytics.UserStats contract against the stores
// newStore returns, one fresh store per subtest. Expected figures are
// worked out by hand in the comments.
func RunUserStats(t *testing.T, newStore func(t *testing.T) UserStatsStores) {
	t.Helper()
	ctx := context.Background()
	newYork, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)

	// signUp stores a user created at `when` on tier.
	signUp := func(t *testing.T, s UserStatsStores, name, tier string, when time.Time) auth.User {
		t.Helper()
		u, err := auth.NewUser(name+"@example.com", auth.RoleUser, tier, when)
		require.NoError(t, err)
		require.NoError(t, s.CreateAccount(ctx, auth.NewAccount{User: u}))
		return u
	}
	// audit records action by actor at `when` with outcome.
	audit := func(t *testing.T, s UserStatsStores, actor uuid.UUID, action, outcome string, when time.Time) {
		t.Helper()
		require.NoError(t, s.AppendAudit(ctx, auth.AuditEvent{At: when, ActorID: actor, Action: action, Outcome: outcome}))
	}
	login := func(t *testing.T, s UserStatsStores, actor uuid.UUID, when time.Time) {
		t.Helper()
		audit(t, s, actor, auth.AuditLoginSuccess, auth.OutcomeSuccess, when)
	}

	t.Run("signups per bucket, in UTC and New York", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		signUp(t, s, "u0", "free", at("2026-03-09T03:59:00Z")) // New York: Mar 8 23:59 EDT
		signUp(t, s, "u1", "free", at("2026-03-10T03:00:00Z")) // New York: Mar 9 23:00 EDT
		signUp(t, s, "u2", "free", at("2026-03-10T05:00:00Z")) // New York: Mar 10 01:00 EDT
		signUp(t, s, "u3", "free", at("2026-03-10T12:00:00Z"))
		signUp(t, s, "u4", "free", at("2026-03-12T12:00:00Z"))

		counts, err := s.Signups(ctx, at("2026-03-09T04:00:00Z"), at("2026-03-11T04:00:00Z"), analytics.Day, newYork)
		require.NoError(t, err)
		require.Equal(t, []analytics.Count{{Bucket: at("2026-03-09T04:00:00Z"), N: 1}, {Bucket: at("2026-03-10T04:00:00Z"), N: 2}}, utcCounts(counts))

		counts, err = s.Signups(ctx, at("2026-03-09T00:00:00Z"), at("2026-03-11T00:00:00Z"), analytics.Day, time.UTC)
		require.NoError(t, err)
		require.Equal(t, []analytics.Count{{Bucket: at("2026-03-09T00:00:00Z"), N: 1}, {Bucket: at("2026-03-10T00:00:00Z"), N: 3}}, utcCounts(counts))

		counts, err = s.Signups(ctx, at("2026-03-01T00:00:00Z"), at("2026-04-01T00:00:00Z"), analytics.Month, nil)
		require.NoError(t, err)
		require.Equal(t, []analytics.Count{{Bucket: at("2026-03-01T00:00:00Z"), N: 5}}, utcCounts(counts), "nil location is UTC")

		counts, err = s.Signups(ctx, at("2026-03-09T00:00:00Z"), at("2026-03-16T00:00:00Z"), analytics.Week, newYork)
		require.NoError(t, err)
		// From Mar 9 00:00Z: u0 (Sun Mar 8 NY, week of Mar 2) … u4 (Thu Mar 12 NY, week of Mar 9).
		require.Equal(t, []analytics.Count{{Bucket: at("2026-03-02T05:00:00Z"), N: 1}, {Bucket: at("2026-03-09T04:00:00Z"), N: 4}}, utcCounts(counts))

		counts, err = s.Signups(ctx, at("2026-05-01T00:00:00Z"), at("2026-06-01T00:00:00Z"), analytics.Day, time.UTC)
		require.NoError(t, err)
		require.NotNil(t, counts)
		require.Empty(t, counts)

		_, err = s.Signups(ctx, at("2026-03-01T00:00:00Z"), at("2026-04-01T00:00:00Z"), "year", time.UTC)
		require.ErrorIs(t, err, analytics.ErrInvalidQuery)
		_, err = s.Signups(ctx, at("2026-03-01T00:00:00Z"), at("2026-04-01T00:00:00Z"), analytics.Day, time.Local)
		require.ErrorIs(t, err, analytics.ErrInvalidQuery)
	})

	t.Run("active users are distinct users with a successful sign-in or refresh", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		a := signUp(t, s, "a", "free", at("2026-01-01T00:00:00Z"))
		b := signUp(t, s, "b", "free", at("2026-01-01T00:00:00Z"))
		c := signUp(t, s, "c", "free", at("2026-01-01T00:00:00Z"))
		login(t, s, a.ID, at("2026-03-10T10:00:00Z"))
		audit(t, s, a.ID, auth.AuditRefresh, auth.OutcomeSuccess, at("2026-03-10T11:00:00Z")) // a again, same day
		audit(t, s, b.ID, auth.AuditOIDCLogin, auth.OutcomeSuccess, at("2026-03-10T12:00:00Z"))
		audit(t, s, c.ID, auth.AuditLoginSuccess, auth.OutcomeFailure, at("2026-03-10T12:00:00Z")) // not a success
		audit(t, s, c.ID, auth.AuditLoginFailure, auth.OutcomeFailure, at("2026-03-10T12:00:00Z"))
		audit(t, s, c.ID, auth.AuditRegister, auth.OutcomeSuccess, at("2026-03-10T12:00:00Z"))         // not a sign-in
		audit(t, s, uuid.Nil, auth.AuditLoginSuccess, auth.OutcomeSuccess, at("2026-03-10T12:00:00Z")) // anonymous
		audit(t, s, a.ID, auth.AuditRefreshGrace, auth.OutcomeSuccess, at("2026-03-11T01:00:00Z"))     // New York: Mar 10 21:00
		audit(t, s, c.ID, auth.AuditRefresh, auth.OutcomeSuccess, at("2026-03-11T05:00:00Z"))          // New York: Mar 11 01:00

		counts, err := s.ActiveUsers(ctx, at("2026-03-10T00:00:00Z"), at("2026-03-12T00:00:00Z"), analytics.Day, time.UTC)
		require.NoError(t, err)
		// Mar 10: a, b. Mar 11: a, c.
		require.Equal(t, []analytics.Count{{Bucket: at("2026-03-10T00:00:00Z"), N: 2}, {Bucket: at("2026-03-11T00:00:00Z"), N: 2}}, utcCounts(counts))

		counts, err = s.ActiveUsers(ctx, at("2026-03-10T04:00:00Z"), at("2026-03-12T04:00:00Z"), analytics.Day, newYork)
		require.NoError(t, err)
		// Mar 10 NY: a (three times), b. Mar 11 NY: c.
		require.Equal(t, []analytics.Count{{Bucket: at("2026-03-10T04:00:00Z"), N: 2}, {Bucket: at("2026-03-11T04:00:00Z"), N: 1}}, utcCounts(counts))

		counts, err = s.ActiveUsers(ctx, at("2026-03-10T10:00:00Z"), at("2026-03-10T12:00:00Z"), analytics.Hour, newYork)
		require.NoError(t, err)
		require.Equal(t, []analytics.Count{{Bucket: at("2026-03-10T10:00:00Z"), N: 1}, {Bucket: at("2026-03-10T11:00:00Z"), N: 1}}, utcCounts(counts),
			"12:00 is at To, excluded")

		counts, err = s.ActiveUsers(ctx, at("2026-04-01T00:00:00Z"), at("2026-04-02T00:00:00Z"), analytics.Day, time.UTC)
		require.NoError(t, err)
		require.NotNil(t, counts)
		require.Empty(t, counts)
	})

	t.Run("users by current tier", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		tiers, err := s.UsersByTier(ctx)
		require.NoError(t, err)
		require.NotNil(t, tiers)
		require.Empty(t, tiers)

		signUp(t, s, "f1", "free", at("2026-01-01T00:00:00Z"))
		f2 := signUp(t, s, "f2", "free", at("2026-01-01T00:00:00Z"))
		signUp(t, s, "p1", "pro", at("2026-01-01T00:00:00Z"))
		_, err = s.SetTier(ctx, auth.TierChange{UserID: f2.ID, Tier: "gold", EffectiveAt: at("2026-02-01T00:00:00Z")})
		require.NoError(t, err)
		tiers, err = s.UsersByTier(ctx)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"free": 1, "pro": 1, "gold": 1}, tiers)
	})

	t.Run("retention by signup cohort", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		// UTC days d1 = Apr 6 (Monday) … d4 = Apr 9; New York is UTC-4.
		e := signUp(t, s, "e", "free", at("2026-04-05T12:00:00Z")) // before either range
		a := signUp(t, s, "a", "free", at("2026-04-06T09:00:00Z"))
		b := signUp(t, s, "b", "free", at("2026-04-06T15:00:00Z"))
		c := signUp(t, s, "c", "free", at("2026-04-07T10:00:00Z"))
		d := signUp(t, s, "d", "free", at("2026-04-08T10:00:00Z"))
		login(t, s, a.ID, at("2026-04-06T09:05:00Z"))
		login(t, s, a.ID, at("2026-04-07T08:00:00Z"))
		login(t, s, a.ID, at("2026-04-07T20:00:00Z")) // a again on d2
		login(t, s, a.ID, at("2026-04-09T02:00:00Z")) // d4 in UTC (outside), Apr 8 22:00 in New York (inside)
		login(t, s, b.ID, at("2026-04-08T12:00:00Z"))
		login(t, s, c.ID, at("2026-04-07T10:05:00Z"))
		login(t, s, c.ID, at("2026-04-08T09:00:00Z"))
		login(t, s, d.ID, at("2026-04-08T10:01:00Z"))
		login(t, s, e.ID, at("2026-04-07T10:00:00Z")) // not in a cohort
		audit(t, s, b.ID, auth.AuditLoginFailure, auth.OutcomeFailure, at("2026-04-07T10:00:00Z"))

		cohorts, err := s.Retention(ctx, at("2026-04-06T00:00:00Z"), at("2026-04-09T00:00:00Z"), analytics.Day, time.UTC, 2)
		require.NoError(t, err)
		require.Equal(t, []analytics.Cohort{
			{Bucket: at("2026-04-06T00:00:00Z"), Size: 2, Active: []int64{1, 1, 1}}, // a; a; b
			{Bucket: at("2026-04-07T00:00:00Z"), Size: 1, Active: []int64{1, 1}},    // c; c — d4 is past To
			{Bucket: at("2026-04-08T00:00:00Z"), Size: 1, Active: []int64{1}},       // d
		}, utcCohorts(cohorts))

		cohorts, err = s.Retention(ctx, at("2026-04-06T04:00:00Z"), at("2026-04-09T04:00:00Z"), analytics.Day, newYork, 2)
		require.NoError(t, err)
		require.Equal(t, []analytics.Cohort{
			{Bucket: at("2026-04-06T04:00:00Z"), Size: 2, Active: []int64{1, 1, 2}}, // a; a; a and b
			{Bucket: at("2026-04-07T04:00:00Z"), Size: 1, Active: []int64{1, 1}},
			{Bucket: at("2026-04-08T04:00:00Z"), Size: 1, Active: []int64{1}},
		}, utcCohorts(cohorts))

		cohorts, err = s.Retention(ctx, at("2026-04-06T00:00:00Z"), at("2026-04-09T00:00:00Z"), analytics.Day, time.UTC, 0)
		require.NoError(t, err)
		require.Equal(t, []analytics.Cohort{
			{Bucket: at("2026-04-06T00:00:00Z"), Size: 2, Active: []int64{1}},
			{Bucket: at("2026-04-07T00:00:00Z"), Size: 1, Active: []int64{1}},
			{Bucket: at("2026-04-08T00:00:00Z"), Size: 1, Active: []int64{1}},
		}, utcCohorts(cohorts), "periods 0: the signup bucket only")

		cohorts, err = s.Retention(ctx, at("2026-04-06T00:00:00Z"), at("2026-04-13T00:00:00Z"), analytics.Week, time.UTC, 4)
		require.NoError(t, err)
		require.Equal(t, []analytics.Cohort{{Bucket: at("2026-04-06T00:00:00Z"), Size: 4, Active: []int64{4}}}, utcCohorts(cohorts),
			"one week: every cohort user was active in it")

		cohorts, err = s.Retention(ctx, at("2026-04-06T00:00:00Z"), at("2026-04-07T00:00:00Z"), analytics.Day, time.UTC, 3)
		require.NoError(t, err)
		require.Equal(t, []analytics.Cohort{{Bucket: at("2026-04-06T00:00:00Z"), Size: 2, Active: []int64{1}}}, utcCohorts(cohorts))

		cohorts, err = s.Retention(ctx, at("2026-05-01T00:00:00Z"), at("2026-06-01T00:00:00Z"), analytics.Month, time.UTC, 3)
		require.NoError(t, err)
		require.NotNil(t, cohorts)
		require.Empty(t, cohorts)

		_, err = s.Retention(ctx, at("2026-04-06T00:00:00Z"), at("2026-04-09T00:00:00Z"), analytics.Day, time.UTC, -1)
		require.ErrorIs(t, err, analytics.ErrInvalidQuery)
	})

	t.Run("retention by month reaches across months of different lengths", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var users []auth.User
		for i, when := range []string{"2026-01-31T23:00:00Z", "2026-02-15T00:00:00Z", "2026-03-31T12:00:00Z"} {
			users = append(users, signUp(t, s, fmt.Sprintf("m%d", i), "free", at(when)))
		}
		login(t, s, users[0].ID, at("2026-02-28T23:59:59Z")) // cohort Jan, month +1
		login(t, s, users[0].ID, at("2026-04-01T00:00:00Z")) // cohort Jan, month +3
		login(t, s, users[1].ID, at("2026-03-01T00:00:00Z")) // cohort Feb, month +1
		login(t, s, users[2].ID, at("2026-04-30T23:00:00Z")) // cohort Mar, month +1
		cohorts, err := s.Retention(ctx, at("2026-01-01T00:00:00Z"), at("2026-05-01T00:00:00Z"), analytics.Month, time.UTC, 3)
		require.NoError(t, err)
		require.Equal(t, []analytics.Cohort{
			{Bucket: at("2026-01-01T00:00:00Z"), Size: 1, Active: []int64{0, 1, 0, 1}},
			{Bucket: at("2026-02-01T00:00:00Z"), Size: 1, Active: []int64{0, 1, 0}},
			{Bucket: at("2026-03-01T00:00:00Z"), Size: 1, Active: []int64{0, 1}},
		}, utcCohorts(cohorts))
	})
}

func utcCounts(cs []analytics.Count) []analytics.Count {
	for i := range cs {
		cs[i].Bucket = cs[i].Bucket.UTC()
	}
	return cs
}

func utcCohorts(cs []analytics.Cohort) []analytics.Cohort {
	for i := range cs {
		cs[i].Bucket = cs[i].Bucket.UTC()
	}
	return cs
}
