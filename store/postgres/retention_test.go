package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/retention"
	"github.com/adshare/adshare/store/postgres/postgrestest"
	"github.com/adshare/adshare/store/storetest"
)

// Retention drops old event partitions and old rows of every class, keeps
// young ones, and blanks IP addresses beyond their window.
func TestRetentionPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.New(t)
	pool := db.Pool()
	now := time.Now().UTC()
	day := func(n int) time.Time { return now.Add(time.Duration(-n) * 24 * time.Hour) }
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		require.NoError(t, pool.QueryRow(ctx, sql, args...).Scan(&n))
		return n
	}

	// Events: a partition 120 days old, one 10 days old, and an old row
	// outside any partition (the default one).
	require.NoError(t, db.EnsureEventPartitions(ctx, day(120), day(120)))
	require.NoError(t, db.EnsureEventPartitions(ctx, day(10), day(10)))
	event := func(issued time.Time, prefix string) {
		exec(`INSERT INTO events (issued_at, tracking_id, type, owner_id, occurred_at, received_at, billable, valid, client_prefix)
			VALUES ($1, $2, 'impression', $3, $1, $1, false, true, $4)`, issued, uuid.New(), uuid.New(), prefix)
	}
	event(day(120), "203.0.113.0/24")
	event(day(10), "198.51.100.0/24")
	event(day(200), "192.0.2.0/24") // no partition for that day: the default one
	event(day(1), "198.51.100.0/24")

	// Sessions of a user: one ended long ago, one live but old (its IP
	// goes), one young.
	u := storetest.NewUser(t, "retention@example.com")
	require.NoError(t, db.CreateAccount(ctx, auth.NewAccount{User: u}))
	session := func(created, revoked time.Time, ip string) uuid.UUID {
		id := uuid.New()
		var rev *time.Time
		if !revoked.IsZero() {
			rev = &revoked
		}
		exec(`INSERT INTO sessions (id, user_id, method, ip, created_at, last_used_at, idle_expires_at, absolute_expires_at, revoked_at)
			VALUES ($1, $2, 'password', $3, $4, $4, $5, $5, $6)`, id, u.ID, ip, created, now.Add(24*time.Hour), rev)
		return id
	}
	ended := session(day(90), day(60), "203.0.113.9")
	oldLive := session(day(45), time.Time{}, "203.0.113.10")
	young := session(day(2), time.Time{}, "198.51.100.11")

	// Audit: 500 days, 100 days (IP goes), 1 day.
	audit := func(at time.Time, action string) {
		require.NoError(t, db.AppendAudit(ctx, auth.AuditEvent{At: at, Action: action, Outcome: auth.OutcomeSuccess, IP: "203.0.113.12"}))
	}
	audit(day(500), "old")
	audit(day(100), "middle")
	audit(day(1), "young")
	require.Eventually(t, func() bool { return count(`SELECT count(*) FROM audit_events`) == 3 }, 10*time.Second, 10*time.Millisecond)

	// Webhook payloads: processed 60 days ago, 1 day ago, and unprocessed.
	hook := func(id string, processed *time.Time) {
		exec(`INSERT INTO billing_events (id, type, payload_sealed, event_sealed, received_at, processed_at)
			VALUES ($1, 'payment_intent.succeeded', '\x00', '\x00', $2, $3)`, id, day(90), processed)
	}
	old, recent := day(60), day(1)
	hook("evt_old", &old)
	hook("evt_recent", &recent)
	hook("evt_pending", nil)

	// Run as the durable job does, on the in-process queue.
	q, err := jobs.NewLocal(nil)
	require.NoError(t, err)
	require.NoError(t, retention.RegisterJob(q, db, retention.Policy{}, func() time.Time { return now }, nil))
	require.NoError(t, q.Start(ctx))
	t.Cleanup(func() { _ = q.Stop(context.Background()) })
	_, err = q.Enqueue(ctx, retention.JobKind, struct{}{}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return count(`SELECT count(*) FROM billing_events`) == 2 && count(`SELECT count(*) FROM audit_events`) == 2
	}, 20*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return count(`SELECT count(*) FROM events WHERE client_prefix <> ''`) == 2 }, 20*time.Second, 20*time.Millisecond)

	// Events: the old partition is gone, the young one stays; the old row
	// in the default partition is gone.
	days, err := db.EventPartitions(ctx)
	require.NoError(t, err)
	for _, d := range days {
		require.False(t, d.Before(day(91)), "partition of %s survived", d.Format(time.DateOnly))
	}
	require.Contains(t, days, day(10).Truncate(24*time.Hour))
	require.Equal(t, 0, count(`SELECT count(*) FROM events WHERE issued_at < $1`, day(91)))
	require.Equal(t, 2, count(`SELECT count(*) FROM events`))
	// IPs beyond 30 days: the 10-day-old event keeps its network.
	require.Equal(t, 2, count(`SELECT count(*) FROM events WHERE client_prefix <> ''`))

	// Sessions: the long-ended one is gone; the old live one lost its IP.
	require.Equal(t, 0, count(`SELECT count(*) FROM sessions WHERE id = $1`, ended))
	require.Equal(t, 1, count(`SELECT count(*) FROM sessions WHERE id = $1 AND ip = '' AND ip_sealed IS NULL`, oldLive))
	require.Equal(t, 1, count(`SELECT count(*) FROM sessions WHERE id = $1 AND ip = '198.51.100.11'`, young))

	// Audit: 500 days gone; 100 days kept without its IP; 1 day intact.
	require.Equal(t, 0, count(`SELECT count(*) FROM audit_events WHERE action = 'old'`))
	require.Equal(t, 1, count(`SELECT count(*) FROM audit_events WHERE action = 'middle' AND ip = '' AND ip_sealed IS NULL`))
	require.Equal(t, 1, count(`SELECT count(*) FROM audit_events WHERE action = 'young' AND ip = '203.0.113.12'`))

	// Webhooks: the old processed one is gone, the recent and pending stay.
	require.Equal(t, 0, count(`SELECT count(*) FROM billing_events WHERE id = 'evt_old'`))

	// The audit log is still append-only outside the job.
	_, err = pool.Exec(ctx, `DELETE FROM audit_events`)
	require.ErrorContains(t, err, "append-only")

	// A second run finds nothing more.
	res, err := db.Purge(ctx, retention.DefaultPolicy().Cutoffs(now))
	require.NoError(t, err)
	require.Zero(t, res.Partitions)
	for _, c := range retention.Classes {
		require.Zero(t, res.Purged[c], "class %s", c)
	}
}
