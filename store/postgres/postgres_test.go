package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
	"github.com/adshare/adshare/store/storetest"
)

func TestUserStore(t *testing.T) {
	t.Parallel()
	forSealing(t, func(t *testing.T, open func(testing.TB) *postgres.DB) {
		storetest.RunUserStore(t, func(t *testing.T) auth.UserStore { return open(t) })
	})
}

// forSealing runs a contract suite on a store that seals personal data
// (with a keyring) and on one that keeps it in the clear (without), the
// two ways a row can be written and read.
func forSealing(t *testing.T, suite func(t *testing.T, open func(testing.TB) *postgres.DB)) {
	t.Run("sealed", func(t *testing.T) {
		t.Parallel()
		suite(t, postgrestest.NewWithKeyring)
	})
	t.Run("clear", func(t *testing.T) {
		t.Parallel()
		suite(t, postgrestest.New)
	})
}

func TestSpaceStore(t *testing.T) {
	t.Parallel()
	storetest.RunSpaceStore(t, func(t *testing.T) storetest.SpaceStores { return postgrestest.New(t) })
}

func TestContentStore(t *testing.T) {
	t.Parallel()
	storetest.RunContentStore(t, func(t *testing.T) storetest.ContentStores { return postgrestest.New(t) })
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	forSealing(t, func(t *testing.T, open func(testing.TB) *postgres.DB) {
		storetest.RunAccounts(t, func(t *testing.T) storetest.AuthStores { return open(t) })
	})
}

func TestSessionStore(t *testing.T) {
	t.Parallel()
	forSealing(t, func(t *testing.T, open func(testing.TB) *postgres.DB) {
		storetest.RunSessionStore(t, func(t *testing.T) storetest.AuthStores { return open(t) })
	})
}

func TestIdentityStore(t *testing.T) {
	t.Parallel()
	forSealing(t, func(t *testing.T, open func(testing.TB) *postgres.DB) {
		storetest.RunIdentityStore(t, func(t *testing.T) storetest.AuthStores { return open(t) })
	})
}

func TestAuditLog(t *testing.T) {
	t.Parallel()
	forSealing(t, func(t *testing.T, open func(testing.TB) *postgres.DB) {
		storetest.RunAuditLog(t, func(t *testing.T) storetest.AuthStores { return open(t) })
	})
}

func TestEventStore(t *testing.T) {
	t.Parallel()
	storetest.RunEventStore(t, func(t *testing.T) analytics.Store { return postgrestest.New(t) })
}

func TestUserStats(t *testing.T) {
	t.Parallel()
	storetest.RunUserStats(t, func(t *testing.T) storetest.UserStatsStores { return postgrestest.New(t) })
}

// The audit table refuses changes even to code with SQL access.
func TestAuditLogIsAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.New(t)
	require.NoError(t, db.AppendAudit(ctx, auth.AuditEvent{At: time.Now(), Action: "x", Outcome: auth.OutcomeSuccess}))
	_, err := db.Pool().Exec(ctx, `UPDATE audit_events SET action = 'y'`)
	require.ErrorContains(t, err, "append-only")
	_, err = db.Pool().Exec(ctx, `DELETE FROM audit_events`)
	require.ErrorContains(t, err, "append-only")
	_, err = db.Pool().Exec(ctx, `TRUNCATE audit_events`)
	require.ErrorContains(t, err, "append-only")
	events, err := db.AuditEvents(ctx, auth.AuditFilter{})
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, "x", events[0].Action)
}

func TestMigrateUpDownStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.Open(t)

	statuses, err := db.MigrationStatuses(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, statuses)
	for _, s := range statuses {
		require.False(t, s.Applied, "nothing is applied on a fresh schema")
	}

	applied, err := db.Migrate(ctx)
	require.NoError(t, err)
	require.Len(t, applied, len(statuses))

	again, err := db.Migrate(ctx)
	require.NoError(t, err)
	require.Empty(t, again, "a second migrate finds nothing to do")

	statuses, err = db.MigrationStatuses(ctx)
	require.NoError(t, err)
	for _, s := range statuses {
		require.True(t, s.Applied)
		require.False(t, s.AppliedAt.IsZero())
	}

	// Down all the way, then up again: every down migration undoes its up.
	for i := len(statuses) - 1; i >= 0; i-- {
		v, err := db.MigrateDown(ctx)
		require.NoError(t, err)
		require.Equal(t, statuses[i].Version, v)
	}
	v, err := db.MigrateDown(ctx)
	require.NoError(t, err)
	require.Zero(t, v, "down with nothing applied is a no-op")
	_, err = db.UserByEmail(ctx, "x@example.com")
	require.Error(t, err, "the users table is gone after migrating down")

	applied, err = db.Migrate(ctx)
	require.NoError(t, err)
	require.Len(t, applied, len(statuses))
}

func TestConcurrentMigrateAppliesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := postgrestest.URL(t)
	var g errgroup.Group
	results := make([][]int64, 3)
	for i := range results {
		g.Go(func() error {
			db, err := postgres.Open(ctx, url, nil)
			if err != nil {
				return err
			}
			defer func() { _ = db.Stop(context.Background()) }()
			results[i], err = db.Migrate(ctx)
			return err
		})
	}
	require.NoError(t, g.Wait())
	var total int
	for _, r := range results {
		total += len(r)
	}
	db, err := postgres.Open(ctx, url, nil)
	require.NoError(t, err)
	defer func() { _ = db.Stop(context.Background()) }()
	statuses, err := db.MigrationStatuses(ctx)
	require.NoError(t, err)
	require.Equal(t, len(statuses), total, "each migration is applied by exactly one instance")
}

// The constraints hold even for a caller that skips domain validation.
func TestConstraintsRejectWhatTheDomainForbids(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.New(t)

	bad := storetest.NewUser(t, "ok@example.com")
	bad.Role = "superuser"
	require.Error(t, db.CreateAccount(ctx, auth.NewAccount{User: bad}))

	owner := storetest.NewUser(t, "owner@example.com")
	require.NoError(t, db.CreateAccount(ctx, auth.NewAccount{User: owner}))
	sp := storetest.NewSpace(t, owner.ID, adspace.DefaultSettings(), time.Now())
	sp.Settings.RefreshInterval = 5 * time.Second
	err := db.CreateSpace(ctx, sp)
	require.Error(t, err)
	_, err = db.SpaceByOwner(ctx, owner.ID)
	require.ErrorIs(t, err, adspace.ErrSpaceNotFound)
}

func TestOpenRejectsABadURLWithoutEchoingIt(t *testing.T) {
	t.Parallel()
	_, err := postgres.Open(context.Background(), "postgres://user:s3cret@[::1", nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
}

func TestOpenFailsFastWhenNothingListens(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable", nil)
	require.Error(t, err)
}

// Ad content that skipped validation is refused by the table's checks.
func TestContentConstraintsRejectWhatTheDomainForbids(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.New(t)
	adv := storetest.NewUser(t, "adv@example.com")
	require.NoError(t, db.CreateAccount(ctx, auth.NewAccount{User: adv}))
	now := time.Now()

	tests := []struct {
		description string
		mutate      func(*adspace.Content)
	}{
		{"unknown status", func(c *adspace.Content) { c.Status = "live" }},
		{"pending without a submission time", func(c *adspace.Content) { c.Status = adspace.StatusPendingReview }},
		{"unknown bid model", func(c *adspace.Content) { c.Bid.Model = "cpa" }},
		{"zero bid", func(c *adspace.Content) { c.Bid.Micros = 0 }},
		{"negative total budget", func(c *adspace.Content) { c.TotalBudgetMicros = -1 }},
		{"negative daily budget", func(c *adspace.Content) { c.DailyBudgetMicros = -1 }},
		{"daily above total", func(c *adspace.Content) { c.DailyBudgetMicros = c.TotalBudgetMicros + 1 }},
		{"schedule ends at its start", func(c *adspace.Content) { c.Schedule.End = c.Schedule.Start }},
		{"fingerprint not hex SHA-256", func(c *adspace.Content) { c.Fingerprint = "abc" }},
		{"empty title", func(c *adspace.Content) { c.Title = "" }},
		{"empty click URL", func(c *adspace.Content) { c.ClickURL = "" }},
		{"negative image size", func(c *adspace.Content) { c.Image.Width = -1 }},
		{"zero version", func(c *adspace.Content) { c.Version = 0 }},
	}
	for _, tt := range tests {
		c := storetest.NewContent(t, adv.ID, tt.description, now)
		tt.mutate(&c)
		err := db.CreateContent(ctx, c)
		require.Error(t, err, tt.description)
		require.Equal(t, errs.Invalid, errs.KindOf(err), "%s: %v", tt.description, err)
		_, err = db.Content(ctx, c.ID)
		require.ErrorIs(t, err, adspace.ErrContentNotFound, tt.description)
	}

	// An update is checked too.
	c := storetest.NewContent(t, adv.ID, "ok", now)
	require.NoError(t, db.CreateContent(ctx, c))
	bad := c
	bad.Version, bad.DailyBudgetMicros = 2, c.TotalBudgetMicros+1
	require.Equal(t, errs.Invalid, errs.KindOf(db.UpdateContent(ctx, bad)))
	got, err := db.Content(ctx, c.ID)
	require.NoError(t, err)
	storetest.RequireSameContent(t, c, got)
}

// Spaces created before migration 3 get the documented defaults.
func TestMigrationGivesExistingSpacesDefaultSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.Open(t)
	_, err := db.Migrate(ctx)
	require.NoError(t, err)
	var undone []int64 // the migrations from the latest down to 3
	for len(undone) == 0 || undone[len(undone)-1] > 3 {
		v, err := db.MigrateDown(ctx)
		require.NoError(t, err)
		undone = append(undone, v)
	}
	slices.Reverse(undone)

	// The user as the schema of migration 2 holds it (the store's own
	// writes are of the latest schema).
	owner := storetest.NewUser(t, "old@example.com")
	_, err = db.Pool().Exec(ctx, `INSERT INTO users (id, email, role, tier) VALUES ($1, $2, $3, $4)`,
		owner.ID, owner.Email, string(owner.Role), owner.Tier)
	require.NoError(t, err)
	_, err = db.Pool().Exec(ctx, `INSERT INTO ad_spaces (owner_id, enabled, refresh_seconds, max_ads_per_view, keywords)
		VALUES ($1, true, 60, 1, '{coffee}')`, owner.ID)
	require.NoError(t, err)

	applied, err := db.Migrate(ctx)
	require.NoError(t, err)
	require.Equal(t, undone, applied)
	sp, err := db.SpaceByOwner(ctx, owner.ID)
	require.NoError(t, err)
	want := adspace.DefaultSettings()
	want.Keywords = []string{"coffee"}
	require.Equal(t, want, sp.Settings)
	_, err = want.Normalize()
	require.NoError(t, err, "the defaults are valid settings")
}

// The pool collector reports the pool as it is: an acquired connection
// shows, and goes back to idle when released.
func TestPoolCollector(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(db.PoolCollector()))
	gauge := func(name, state string) float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if state == "" || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == state) {
					if m.GetGauge() != nil {
						return m.GetGauge().GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
		}
		t.Fatalf("%s{%s} not gathered", name, state)
		return 0
	}
	before := gauge("adshare_db_pool_acquires_total", "")
	conn, err := db.Pool().Acquire(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1.0, gauge("adshare_db_pool_connections", "acquired"))
	require.Greater(t, gauge("adshare_db_pool_acquires_total", ""), before)
	require.Positive(t, gauge("adshare_db_pool_max_connections", ""))
	conn.Release()
	require.Equal(t, 0.0, gauge("adshare_db_pool_connections", "acquired"))
	require.GreaterOrEqual(t, gauge("adshare_db_pool_connections", "idle"), 1.0)
}

func TestConsentStore(t *testing.T) {
	t.Parallel()
	storetest.RunConsentStore(t, func(t *testing.T) storetest.ConsentStores { return postgrestest.New(t) })
}

func TestConsentRecordsAreAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.New(t)
	u := storetest.NewUser(t, "append.only@example.com")
	require.NoError(t, db.CreateAccount(ctx, auth.NewAccount{User: u}))
	_, err := db.AppendConsent(ctx, auth.ConsentRecord{UserID: u.ID, PolicyVersion: "v1", Purposes: map[auth.Purpose]bool{}, Source: "api", RecordedAt: time.Now()})
	require.NoError(t, err)
	_, err = db.Pool().Exec(ctx, `UPDATE consent_records SET do_not_sell = true`)
	require.ErrorContains(t, err, "append-only")
}

// RequireVerifiedTLS refuses URLs that may talk in the clear or skip the
// server's name, before any connection.
func TestRequireVerifiedTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := &postgres.Config{RequireVerifiedTLS: true, ConnectTimeout: time.Second}
	for _, mode := range []string{"disable", "allow", "prefer", "require", "verify-ca"} {
		_, err := postgres.Open(ctx, "postgres://adshare@127.0.0.1:1/adshare?sslmode="+mode, cfg)
		require.ErrorContains(t, err, "sslmode=verify-full", mode)
	}
	_, err := postgres.Open(ctx, "postgres://adshare@127.0.0.1:1/adshare?sslmode=verify-full", cfg)
	require.Error(t, err) // nothing listens there
	require.NotContains(t, err.Error(), "RequireVerifiedTLS")
}
