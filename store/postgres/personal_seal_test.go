package postgres_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
	"github.com/adshare/adshare/store/storetest"
)

// planted is one person's recognisable data, stored in every place the
// store keeps personal data: a user (email, display name), an OIDC
// identity (its email), a session and an audit event (the address), and a
// payee (the connected account).
type planted struct {
	user               auth.User
	session            auth.Session
	identity           auth.Identity
	email, name, ip    string
	account, identMail string
	// payee says a payee was stored (billing needs a keyring).
	payee bool
}

// values returns every planted value, for RequireNoPlaintext.
func (p planted) values() []string {
	return []string{p.email, p.name, p.ip, p.account, p.identMail}
}

// plant stores a new person's data through db; id, when not nil, is the
// user's id.
func plant(t *testing.T, db *postgres.DB, id uuid.UUID) planted {
	t.Helper()
	ctx := context.Background()
	tag := strings.ToLower(rand.Text()[:12])
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := planted{
		email: "planted." + tag + "@example.com", name: "Planted Name " + tag,
		ip: fmt.Sprintf("2001:db8:%s:%s::7", tag[:4], tag[4:8]), account: "acct_" + tag,
		identMail: "oidc." + tag + "@example.org",
	}
	p.user = storetest.NewUser(t, p.email)
	if id != uuid.Nil {
		p.user.ID = id
	}
	p.user.Profile.DisplayName = p.name
	p.identity = auth.Identity{Issuer: "https://idp.example", Subject: "sub-" + tag, Provider: "idp", Email: p.identMail, CreatedAt: now}
	require.NoError(t, db.CreateAccount(ctx, auth.NewAccount{User: p.user, Identity: &p.identity}))
	p.identity.UserID = p.user.ID
	p.session = auth.Session{ID: uuid.New(), UserID: p.user.ID, Method: "password", UserAgent: "test", IP: p.ip,
		CreatedAt: now, LastUsedAt: now, IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(2 * time.Hour), Generation: 1}
	require.NoError(t, db.CreateSession(ctx, p.session, []byte(strings.Repeat(tag[:8], 4))))
	require.NoError(t, db.AppendAudit(ctx, auth.AuditEvent{At: now, ActorID: p.user.ID, Action: auth.AuditLoginSuccess,
		TargetType: "user", TargetID: p.user.ID.String(), IP: p.ip, Outcome: auth.OutcomeSuccess}))
	if p.payee = db.Keyring() != nil; p.payee { // billing stores nothing without a keyring
		payee := billing.Payee{Owner: p.user.ID, ConnectedAccount: billing.ConnectedAccount{ID: p.account, Owner: p.user.ID},
			CreatedAt: now, UpdatedAt: now}
		require.NoError(t, db.Apply(ctx, billing.Write{Payee: &payee}))
	}
	return p
}

// requireReadable reads p back through db, by every way the store finds it.
func requireReadable(t *testing.T, db *postgres.DB, p planted) {
	t.Helper()
	ctx := context.Background()
	got, err := db.UserByEmail(ctx, p.email)
	require.NoError(t, err)
	storetest.RequireSameUser(t, p.user, got)
	got, err = db.UserByID(ctx, p.user.ID)
	require.NoError(t, err)
	storetest.RequireSameUser(t, p.user, got)
	ids, err := db.UserIdentities(ctx, p.user.ID)
	require.NoError(t, err)
	require.Equal(t, []auth.Identity{p.identity}, ids)
	s, err := db.Session(ctx, p.session.ID)
	require.NoError(t, err)
	require.Equal(t, p.ip, s.IP)
	events, err := db.AuditEvents(ctx, auth.AuditFilter{ActorID: p.user.ID})
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, p.ip, events[0].IP)
	if p.payee {
		payee, err := db.PayeeByAccountID(ctx, p.account)
		require.NoError(t, err)
		require.Equal(t, p.user.ID, payee.Owner)
	}
}

// requireNoPlaintext holds db to no planted value readable anywhere.
func requireNoPlaintext(t *testing.T, db *postgres.DB, people ...planted) {
	t.Helper()
	for _, p := range people {
		for _, v := range p.values() {
			if v == p.account && !p.payee {
				continue
			}
			postgrestest.RequireNoPlaintext(t, db, v)
		}
	}
}

// openOn opens a second store on the schema of url (another instance, or
// the same one restarted), stopped when t ends.
func openOn(t *testing.T, url string, ring *keyring.Ring) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, &postgres.Config{Keyring: ring})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Stop(context.Background()) })
	return db
}

// ring returns a keyring of the given data keys (the first seals) and index key.
func ring(t *testing.T, index []byte, data ...[]byte) *keyring.Ring {
	t.Helper()
	r, err := keyring.New(context.Background(), keyring.Keys{Data: data, Index: index})
	require.NoError(t, err)
	return r
}

// TestPersonalDataSealed plants a person's email, name, address and
// connected account and finds none of them in any table or column of the
// schema (nor in pg_dump's output), while the store reads all of them back
// and finds the user by email.
func TestPersonalDataSealed(t *testing.T) {
	t.Parallel()
	db := postgrestest.NewWithKeyring(t)
	p := plant(t, db, uuid.Nil)
	requireReadable(t, db, p)
	requireNoPlaintext(t, db, p)

	usage, err := db.KeyUsage(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]int64{db.Keyring().SealingKeyID(): 6}, usage,
		"email, name, identity email, session and audit address, payee account: all under the one key, none in the clear")
}

// TestUserByEmailUsesTheIndex: a login's lookup by email is one probe of
// a unique index, not a scan of the users.
func TestUserByEmailUsesTheIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.NewWithKeyring(t)
	p := plant(t, db, uuid.Nil)
	// Enough users that a scan would cost more than the index.
	_, err := db.Pool().Exec(ctx, `INSERT INTO users (id, email_sealed, email_index, role, tier)
		SELECT gen_random_uuid(), '\x00', sha256(i::text::bytea), 'user', 'standard' FROM generate_series(1, 2000) i`)
	require.NoError(t, err)
	_, err = db.Pool().Exec(ctx, `ANALYZE users`)
	require.NoError(t, err)
	rows, err := db.Pool().Query(ctx, `EXPLAIN (FORMAT TEXT) SELECT id FROM users WHERE email_index = $1 OR email = $2 LIMIT 1`,
		db.Keyring().IndexString("auth.email", p.email), p.email)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	plan := strings.Join(lines, "\n")
	require.Contains(t, plan, "users_email_index_key", plan)
	require.NotContains(t, plan, "Seq Scan", "the planner must have an index for both arms of the lookup")
}

// TestResealSealsRowsInTheClear: rows written in the clear (before
// migration 00010, or by a store without a keyring) stay readable by a
// store with a keyring, their emails stay taken, and Reseal seals them and
// empties the clear columns.
func TestResealSealsRowsInTheClear(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := postgrestest.URL(t)
	clear := openOn(t, url, nil)
	_, err := clear.Migrate(ctx)
	require.NoError(t, err)
	p := plant(t, clear, uuid.Nil)
	usage, err := clear.KeyUsage(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{postgres.ClearKeyID: 5}, usage)

	sealed := openOn(t, url, postgrestest.Keyring(t))
	requireReadable(t, sealed, p)
	dup := storetest.NewUser(t, p.email)
	require.ErrorIs(t, sealed.CreateAccount(ctx, auth.NewAccount{User: dup}), auth.ErrEmailTaken,
		"an email in the clear is taken for a sealed account too")

	res, err := sealed.Reseal(ctx, nil)
	require.NoError(t, err)
	require.True(t, res.Done)
	require.EqualValues(t, 4, res.Resealed, "the user, the identity, the session and the audit event")
	usage, err = sealed.KeyUsage(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{sealed.Keyring().SealingKeyID(): 5}, usage)
	requireReadable(t, sealed, p)
	require.ErrorIs(t, sealed.CreateAccount(ctx, auth.NewAccount{User: dup}), auth.ErrEmailTaken, "and taken by its index now")
	requireNoPlaintext(t, sealed, p)

	again, err := sealed.Reseal(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, postgres.ResealResult{Done: true}, again, "idempotent: nothing left to do")
}

// TestKeyRotation: rows sealed under key A; key B is added in front; the
// re-encryption job is stopped after its first batch and again after its
// second (it resumes from its recorded cursor, not from the first row),
// then run to the end as a River job by another instance; key A is then
// unused, and a ring without it opens everything.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := postgrestest.URL(t)
	index, keyA, keyB := keyring.NewKey(), keyring.NewKey(), keyring.NewKey()
	ringA, ringBA, ringB := ring(t, index, keyA), ring(t, index, keyB, keyA), ring(t, index, keyB)
	idA, idB := ringA.SealingKeyID(), ringB.SealingKeyID()

	dbA := openOn(t, url, ringA)
	_, err := dbA.Migrate(ctx)
	require.NoError(t, err)
	var people []planted
	for i := 0; i < 5; i++ {
		people = append(people, plant(t, dbA, uuid.Nil))
	}
	usage, err := dbA.KeyUsage(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{idA: 30}, usage)

	// B first: new data is sealed with B, old data still opens with A.
	dbBA := openOn(t, url, ringBA)
	newcomer := plant(t, dbBA, uuid.Nil)
	people = append(people, newcomer)
	for _, p := range people {
		requireReadable(t, dbBA, p)
	}
	usage, err = dbBA.KeyUsage(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{idA: 30, idB: 6}, usage)

	// The job's first attempt dies after one batch of two users.
	res, err := dbBA.Reseal(ctx, &postgres.ResealOptions{BatchSize: 2, MaxBatches: 1})
	require.NoError(t, err)
	require.Equal(t, postgres.ResealResult{Resealed: 2}, res)
	usage, err = dbBA.KeyUsage(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{idA: 26, idB: 10}, usage, "two users' email and name moved to B")

	// A late writer still sealing with A puts a user before the cursor:
	// a resumed run does not go back for it (a new pass will).
	late := plant(t, dbA, uuid.MustParse("00000000-0000-4000-8000-000000000001"))
	people = append(people, late)
	res, err = dbBA.Reseal(ctx, &postgres.ResealOptions{BatchSize: 2, MaxBatches: 1})
	require.NoError(t, err)
	require.Equal(t, postgres.ResealResult{Resealed: 2}, res)
	requireKeyOf(t, dbBA, late.user.ID, idA)
	var cursor []string
	var resealed int64
	require.NoError(t, dbBA.Pool().QueryRow(ctx, `SELECT cursor, resealed FROM keyring_reseal WHERE target = 'users'`).Scan(&cursor, &resealed))
	require.EqualValues(t, 4, resealed, "the second attempt went on from the first one's cursor")

	// Another instance runs the job through River to the end.
	dbJob := openOn(t, url, ringBA)
	q, err := dbJob.Jobs(&postgres.JobsConfig{PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, dbJob.RegisterResealJob(q))
	require.NoError(t, q.Start(ctx))
	t.Cleanup(func() { _ = q.Stop(context.Background()) })
	runJob(t, q, dbJob, "resume")
	usage, err = dbJob.KeyUsage(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{idA: 2, idB: 40}, usage, "the resumed run finished; only the late user, behind its cursor, is left on A")

	// Enqueued again: a new pass from the first row.
	runJob(t, q, dbJob, "second pass")
	usage, err = dbJob.KeyUsage(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{idB: 42}, usage, "nothing uses A: it may retire")

	dbB := openOn(t, url, ringB)
	for _, p := range people {
		requireReadable(t, dbB, p)
	}
	requireNoPlaintext(t, dbB, people...)
}

// runJob enqueues the reseal job on q and waits until its run is recorded
// as finished for every sealed table.
func runJob(t *testing.T, q jobs.Queue, db *postgres.DB, name string) {
	t.Helper()
	ctx := context.Background()
	var before time.Time
	require.NoError(t, db.Pool().QueryRow(ctx, `SELECT COALESCE(max(updated_at), '-infinity') FROM keyring_reseal`).Scan(&before))
	inserted, err := q.Enqueue(ctx, postgres.ResealJobKind, struct{}{}, &jobs.EnqueueOpts{UniqueKey: name})
	require.NoError(t, err)
	require.True(t, inserted)
	require.Eventually(t, func() bool {
		// Every table's run is recorded as finished after before: a
		// table the job has not reached yet has no row, so counting
		// unfinished rows alone would pass while it still works.
		var finished int
		err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM keyring_reseal WHERE finished_at > $1`,
			before).Scan(&finished)
		return err == nil && finished == postgres.SealedTableCount
	}, time.Minute, 50*time.Millisecond, "the reseal job %s did not finish", name)
}

// requireKeyOf checks which key sealed a user's email.
func requireKeyOf(t *testing.T, db *postgres.DB, user uuid.UUID, keyID string) {
	t.Helper()
	var sealed []byte
	require.NoError(t, db.Pool().QueryRow(context.Background(), `SELECT email_sealed FROM users WHERE id = $1`, user).Scan(&sealed))
	got, err := keyring.KeyID(sealed)
	require.NoError(t, err)
	require.Equal(t, keyID, got)
}
