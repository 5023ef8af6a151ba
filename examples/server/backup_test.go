package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres"
)

// backupDBPrefix starts the databases the backup test creates; the
// creation time follows, so that those a killed run left are dropped by a
// later one.
const backupDBPrefix = "adshare_backup_test_"

// freshDatabase creates an empty database (from template0) on the test
// server and returns its URL; it is dropped when tb ends. The backup
// scripts need databases, not schemas: they dump and restore a whole one.
func freshDatabase(tb testing.TB) string {
	tb.Helper()
	admin := testenv.PostgresURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	require.NoError(tb, err)
	defer conn.Close(context.WithoutCancel(ctx))
	sweepBackupDatabases(ctx, conn)

	name := fmt.Sprintf("%s%d_%s", backupDBPrefix, time.Now().Unix(), strings.ReplaceAll(uuid.NewString()[:13], "-", ""))
	_, err = conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` TEMPLATE template0`)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		// DROP DATABASE waits for a checkpoint, which a busy server takes
		// its time over.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	require.NoError(tb, err, "ADSHARE_TEST_DATABASE_URL must be a postgres:// URL for the backup test")
	u.Path = "/" + name
	return u.String()
}

// sweepBackupDatabases drops the test's databases older than two hours.
func sweepBackupDatabases(ctx context.Context, conn *pgx.Conn) {
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, backupDBPrefix)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, n := range names {
		var created int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(n, backupDBPrefix), "%d_", &created); err == nil && created < time.Now().Add(-2*time.Hour).Unix() {
			_, _ = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{n}.Sanitize()+` WITH (FORCE)`)
		}
	}
}

// requireTools skips (fails under CI) when a program is not on PATH.
func requireTools(tb testing.TB, names ...string) {
	tb.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			msg := n + " not found on PATH: install the PostgreSQL client tools (apt-get install postgresql-client)"
			if os.Getenv("CI") != "" {
				tb.Fatal(msg)
			}
			tb.Skip(msg)
		}
	}
}

// script runs one of the deployment's shell scripts with DATABASE_URL.
func script(t testing.TB, name, databaseURL string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{filepath.Join(deployDir, name)}, args...)...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+databaseURL)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// backupFixture is what fillForBackup wrote through the store.
type backupFixture struct {
	users  []auth.User
	events int // distinct events stored
	fills  analytics.FillCount
	ledger []billing.Transaction // posted, in order
}

// fillForBackup writes users with their spaces, an audit event, random
// traffic (two days, every event type, invalid and unbillable events,
// retries), fill counts and ledger postings (a top-up, a settlement, a
// release) through the store, as the server would.
func fillForBackup(t *testing.T, db *postgres.DB) backupFixture {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var f backupFixture
	for i := range 12 {
		u, err := auth.NewUser(fmt.Sprintf("owner%02d@example.com", i), "", "", now)
		require.NoError(t, err)
		require.NoError(t, db.CreateAccount(ctx, auth.NewAccount{User: u, PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$backup"}))
		set := adspace.DefaultSettings()
		set.Keywords = []string{"cycling", fmt.Sprintf("kw%d", i)}
		sp, err := adspace.NewSpace(u.ID, set, now)
		require.NoError(t, err)
		require.NoError(t, db.CreateSpace(ctx, sp))
		f.users = append(f.users, u)
	}
	require.NoError(t, db.AppendAudit(ctx, auth.AuditEvent{At: now, Action: auth.AuditRoleChanged, TargetType: "user",
		TargetID: f.users[0].ID.String(), Outcome: auth.OutcomeSuccess, Reason: "backup_test"}))

	rnd := rand.New(rand.NewPCG(uint64(now.UnixNano()), 2))
	ads := []struct{ source, id, advertiser string }{
		{"local", "l1", "adv-a"}, {"local", "l2", "adv-b"}, {"kevel", "k1", "77"},
	}
	midnight := now.Truncate(24 * time.Hour)
	// Daily partitions, as the store's maintenance makes them; the
	// default partition takes what falls outside.
	require.NoError(t, db.EnsureEventPartitions(ctx, midnight.Add(-24*time.Hour), midnight))
	event := func() analytics.Event {
		ad := ads[rnd.IntN(len(ads))]
		at := midnight.Add(time.Duration(rnd.IntN(4*3600*1000)-2*3600*1000) * time.Millisecond)
		e := analytics.Event{
			TrackingID: uuid.Must(uuid.NewV7()), Type: []analytics.EventType{analytics.Impression, analytics.Impression, analytics.Click, analytics.Conversion}[rnd.IntN(4)],
			Ad: tracking.Ad{Owner: f.users[rnd.IntN(len(f.users))].ID, Source: ad.source, AdID: ad.id, AdvertiserID: ad.advertiser,
				Placement: "main", PriceModel: "cpm", PriceMicros: 2_000_000, Billable: rnd.IntN(5) > 0, IssuedAt: at.Add(-time.Second)},
			OccurredAt: at, ReceivedAt: at.Add(time.Second), Valid: rnd.IntN(6) > 0,
		}
		if e.Type == analytics.Conversion {
			e.Name, e.ValueMicros = "purchase", int64(rnd.IntN(5000))
		}
		if !e.Valid {
			e.Rule = []string{"burst", "bot_user_agent"}[rnd.IntN(2)]
		}
		e.SpendMicros = int64(rnd.IntN(3000))
		e.OwnerShareBP = 7000
		e.OwnerEarningsMicros = e.SpendMicros * 7 / 10
		return e
	}
	var sent []analytics.Event
	for range 20 {
		batch := make([]analytics.Event, 1+rnd.IntN(80))
		for i := range batch {
			if rnd.IntN(10) == 0 && len(sent) > 0 {
				batch[i] = sent[rnd.IntN(len(sent))] // a retry: stored once
			} else {
				batch[i] = event()
			}
		}
		sent = append(sent, batch...)
		isNew, err := db.WriteEvents(ctx, batch)
		require.NoError(t, err)
		for _, n := range isNew {
			if n {
				f.events++
			}
		}
	}
	f.fills = analytics.FillCount{Owner: f.users[0].ID, Hour: midnight, Requested: 40, Filled: 31}
	require.NoError(t, db.RecordFills(ctx, []analytics.FillCount{f.fills}))

	owner, advertiser := f.users[0].ID, f.users[1].ID
	acct := func(k billing.AccountKind, u uuid.UUID) billing.AccountID {
		return billing.UserAccount(k, u, billing.USD)
	}
	platform := func(k billing.AccountKind) billing.AccountID { return billing.PlatformAccount(k, billing.USD) }
	f.ledger = []billing.Transaction{
		{Key: "backup:topup", Kind: billing.TxTopUp, EffectiveAt: now, Entries: []billing.Entry{
			{Account: platform(billing.PlatformCash), Side: billing.Debit, Amount: 50_000_000},
			{Account: acct(billing.Budget, advertiser), Side: billing.Credit, Amount: 50_000_000}}},
		{Key: "backup:settle", Kind: billing.TxSettlement, EffectiveAt: now, Entries: []billing.Entry{
			{Account: acct(billing.Budget, advertiser), Side: billing.Debit, Amount: 2_000_000},
			{Account: acct(billing.Held, owner), Side: billing.Credit, Amount: 1_300_000},
			{Account: platform(billing.PlatformRevenue), Side: billing.Credit, Amount: 700_000}}},
		{Key: "backup:release", Kind: billing.TxRelease, EffectiveAt: now, Entries: []billing.Entry{
			{Account: acct(billing.Held, owner), Side: billing.Debit, Amount: 1_300_000},
			{Account: acct(billing.Available, owner), Side: billing.Credit, Amount: 1_300_000}}},
	}
	for i, tx := range f.ledger {
		stored, posted, err := db.Post(ctx, tx)
		require.NoError(t, err)
		require.True(t, posted)
		f.ledger[i] = stored
	}
	return f
}

// tableDigests returns, for every table of the public schema (partitions
// included), its row count and an md5 of its rows in a canonical order.
func tableDigests(t testing.TB, conn *pgx.Conn) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	out := map[string]string{}
	for _, tbl := range tables {
		var n int64
		var digest *string
		q := `SELECT count(*), md5(string_agg(r::text, E'\n' ORDER BY r::text)) FROM ONLY ` + pgx.Identifier{tbl}.Sanitize() + ` r`
		require.NoError(t, conn.QueryRow(ctx, q).Scan(&n, &digest), tbl)
		d := "empty"
		if digest != nil {
			d = *digest
		}
		out[tbl] = fmt.Sprintf("%d rows, md5 %s", n, d)
	}
	return out
}

// Recounts of the rollups from the raw events (writeEventsSQL's rule),
// each with the stored rollup it must equal; a query returns the rows in
// one but not the other, both ways.
var rollupRecounts = map[string]struct{ recount, stored string }{
	"rollups_hourly": {
		recount: `SELECT date_trunc('hour', occurred_at, 'UTC'), owner_id, source || ':' || ad_id, advertiser_id,
			count(*) FILTER (WHERE type = 'impression'), count(*) FILTER (WHERE type = 'impression' AND valid),
			count(*) FILTER (WHERE type = 'impression' AND valid AND billable),
			count(*) FILTER (WHERE type = 'click'), count(*) FILTER (WHERE type = 'click' AND valid),
			count(*) FILTER (WHERE type = 'click' AND valid AND billable), count(*) FILTER (WHERE type = 'conversion'),
			coalesce(sum(spend_micros) FILTER (WHERE valid AND billable), 0)::bigint,
			coalesce(sum(owner_earnings_micros) FILTER (WHERE valid AND billable), 0)::bigint
			FROM events GROUP BY 1, 2, 3, 4`,
		stored: `SELECT hour, owner_id, ad_key, advertiser_id, impressions, valid_impressions, billable_impressions,
			clicks, valid_clicks, billable_clicks, conversions, spend_micros, owner_earnings_micros
			FROM rollups_hourly WHERE ad_key <> ''`,
	},
	"rollup_invalid_hourly": {
		recount: `SELECT date_trunc('hour', occurred_at, 'UTC'), owner_id, source || ':' || ad_id, advertiser_id, rule, count(*)
			FROM events WHERE NOT valid GROUP BY 1, 2, 3, 4, 5`,
		stored: `SELECT hour, owner_id, ad_key, advertiser_id, rule, count FROM rollup_invalid_hourly`,
	},
	"ad_totals": {
		recount: `WITH counted AS (
				SELECT ad_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, spend_micros, type
				FROM events WHERE valid AND billable AND source = 'local'
			), latest AS (SELECT ad_id, max(day) AS day FROM counted GROUP BY ad_id)
			SELECT c.ad_id, l.day, coalesce(sum(c.spend_micros) FILTER (WHERE c.day = l.day), 0)::bigint,
				sum(c.spend_micros)::bigint, count(*) FILTER (WHERE c.type = 'impression'), count(*) FILTER (WHERE c.type = 'click')
			FROM counted c JOIN latest l USING (ad_id) GROUP BY c.ad_id, l.day`,
		stored: `SELECT ad_id, spend_day, spend_today, spend_total, impressions, clicks FROM ad_totals`,
	},
}

// requireRollupsRecount fails unless every rollup equals its recount from
// the raw events, and there are rollups.
func requireRollupsRecount(t testing.TB, conn *pgx.Conn) {
	t.Helper()
	for table, q := range rollupRecounts {
		var missing, extra, stored int64
		err := conn.QueryRow(context.Background(), `
			WITH recount AS (`+q.recount+`), stored AS (`+q.stored+`)
			SELECT (SELECT count(*) FROM (SELECT * FROM recount EXCEPT ALL SELECT * FROM stored) m),
				(SELECT count(*) FROM (SELECT * FROM stored EXCEPT ALL SELECT * FROM recount) e),
				(SELECT count(*) FROM stored)`).Scan(&missing, &extra, &stored)
		require.NoError(t, err, table)
		require.Positive(t, stored, "%s has rows", table)
		require.Zero(t, missing, "%s: rows the events make that the rollup lacks", table)
		require.Zero(t, extra, "%s: rows the events do not make", table)
	}
}

// TestBackupAndRestore fills a database through the store, backs it up
// with backup.sh while the store is open, restores it with restore.sh into
// a fresh database, and finds there every table with the same rows (count
// and digest), the rollups equal to a recount of the restored raw events,
// the same reports and users through the store, every migration applied
// (server check passes on it), and restore.sh refusing a database that is
// not empty.
func TestBackupAndRestore(t *testing.T) {
	t.Parallel()
	requireTools(t, "sh", "pg_dump", "pg_restore", "psql")
	ctx := context.Background()
	srcURL, dstURL := freshDatabase(t), freshDatabase(t)

	src, err := postgres.Open(ctx, srcURL, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = src.Stop(ctx) })
	_, err = src.Migrate(ctx)
	require.NoError(t, err)
	fixture := fillForBackup(t, src)
	require.NoError(t, src.Stop(ctx)) // the audit events queued are written
	src, err = postgres.Open(ctx, srcURL, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = src.Stop(ctx) })

	srcConn, err := pgx.Connect(ctx, srcURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srcConn.Close(ctx) })
	requireRollupsRecount(t, srcConn) // the premise, on the original
	var events int
	require.NoError(t, srcConn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events))
	require.Equal(t, fixture.events, events)

	// Back up while the store is open (a live database).
	dir := t.TempDir()
	file := filepath.Join(dir, "adshare.dump")
	out, err := script(t, "backup.sh", srcURL, file)
	require.NoError(t, err, out)
	require.Equal(t, file, strings.TrimSpace(out))
	require.FileExists(t, file)
	require.FileExists(t, file+".sha256")
	require.NoFileExists(t, file+".partial")
	out, err = script(t, "backup.sh", srcURL, file)
	require.Error(t, err)
	require.Contains(t, out, "not overwriting")

	out, err = script(t, "restore.sh", dstURL, file)
	require.NoError(t, err, out)
	dstConn, err := pgx.Connect(ctx, dstURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = dstConn.Close(ctx) })

	// Every table, the same rows.
	want, got := tableDigests(t, srcConn), tableDigests(t, dstConn)
	require.Contains(t, want, "events_default")
	var partitions int
	require.NoError(t, dstConn.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass`).Scan(&partitions))
	require.GreaterOrEqual(t, partitions, 3, "the daily partitions and the default one, restored attached")
	filled := 0
	for tbl, d := range want {
		if strings.HasPrefix(tbl, "events_") && !strings.HasPrefix(d, "0 rows") {
			filled++
		}
	}
	require.GreaterOrEqual(t, filled, 2, "events in two daily partitions at least: %v", want)
	require.Contains(t, want, "rollups_hourly")
	require.Contains(t, want, "river_job")
	require.Equal(t, want, got)
	var users int
	require.NoError(t, dstConn.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&users))
	require.Equal(t, len(fixture.users), users)

	// The rollups are intact, and agree with the events restored.
	requireRollupsRecount(t, dstConn)
	var sums [2]struct{ impressions, spend, earnings, requested, filled int64 }
	for i, c := range []*pgx.Conn{srcConn, dstConn} {
		require.NoError(t, c.QueryRow(ctx, `SELECT sum(impressions)::bigint, sum(spend_micros)::bigint, sum(owner_earnings_micros)::bigint,
			sum(requested)::bigint, sum(filled)::bigint FROM rollups_hourly`).Scan(&sums[i].impressions, &sums[i].spend, &sums[i].earnings, &sums[i].requested, &sums[i].filled))
	}
	require.Equal(t, sums[0], sums[1])
	require.Positive(t, sums[1].spend)
	require.Equal(t, fixture.fills.Requested, sums[1].requested)
	require.Equal(t, fixture.fills.Filled, sums[1].filled)

	// Through the store, the restored database answers as the original.
	dst, err := postgres.Open(ctx, dstURL, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = dst.Stop(ctx) })
	day := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	for _, q := range []analytics.Query{
		{Granularity: analytics.Hour, From: day.Add(-24 * time.Hour), To: day.Add(24 * time.Hour), GroupBy: []analytics.Dimension{analytics.ByOwner, analytics.ByAd}},
		{Granularity: analytics.Day, From: day.Add(-24 * time.Hour), To: day.Add(24 * time.Hour), Owner: fixture.users[0].ID},
	} {
		wantRows, err := src.Report(ctx, q)
		require.NoError(t, err)
		gotRows, err := dst.Report(ctx, q)
		require.NoError(t, err)
		require.NotEmpty(t, wantRows)
		require.Equal(t, wantRows, gotRows)
	}
	for _, u := range fixture.users {
		got, err := dst.UserByEmail(ctx, u.Email)
		require.NoError(t, err)
		require.Equal(t, u.ID, got.ID)
		sp, err := dst.SpaceByOwner(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, int64(1), sp.Version)
	}
	audit, err := dst.AuditEvents(ctx, auth.AuditFilter{})
	require.NoError(t, err)
	require.Len(t, audit, 1)

	// The ledger is restored whole and balanced: every transaction, the
	// balances, debits equal to credits in every currency.
	totals, err := dst.Totals(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, totals)
	for c, dc := range totals {
		require.Equal(t, dc.Debits, dc.Credits, "the restored ledger balances in %s", c)
	}
	srcTotals, err := src.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, srcTotals, totals)
	var ids []billing.AccountID
	for _, tx := range fixture.ledger {
		got, err := dst.TransactionByKey(ctx, tx.Key)
		require.NoError(t, err)
		require.Equal(t, tx.ID, got.ID)
		require.Len(t, got.Entries, len(tx.Entries))
		for _, e := range tx.Entries {
			ids = append(ids, e.Account)
		}
	}
	wantBal, err := src.Balances(ctx, ids)
	require.NoError(t, err)
	gotBal, err := dst.Balances(ctx, ids)
	require.NoError(t, err)
	require.Equal(t, wantBal, gotBal)
	require.Equal(t, int64(1_300_000), gotBal[billing.UserAccount(billing.Available, fixture.users[0].ID, billing.USD)].Micros)

	// The server can run on it as it is: nothing to migrate.
	out, err = runCheckCmd(t, merge(fleetKeyEnv(), map[string]string{"DATABASE_URL": dstURL}))
	require.NoError(t, err, out)
	requireLine(t, out, wantLine{checkOK, "migrations", "applied"})

	// A database that is not empty is refused, and left alone.
	out, err = script(t, "restore.sh", dstURL, file)
	require.Error(t, err)
	require.Contains(t, out, "not empty")
	require.Equal(t, want, tableDigests(t, dstConn))

	// A damaged dump is refused before anything is restored.
	damaged := filepath.Join(dir, "damaged.dump")
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	raw[len(raw)/2] ^= 0xff
	require.NoError(t, os.WriteFile(damaged, raw, 0o600))
	sum, err := os.ReadFile(file + ".sha256")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(damaged+".sha256", bytes.Replace(sum, []byte("adshare.dump"), []byte("damaged.dump"), 1), 0o600))
	out, err = script(t, "restore.sh", freshDatabase(t), damaged)
	require.Error(t, err)
	require.Contains(t, out, "does not match")

	out, err = script(t, "backup.sh", "", filepath.Join(dir, "none.dump"))
	require.Error(t, err)
	require.Contains(t, out, "set DATABASE_URL")
}
