package postgrestest_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// recorder is a testing.TB that keeps RequireNoPlaintext's failures
// instead of failing the test; Fatalf ends the goroutine as testing's does.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	fatal  bool
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
	r.fatal = true
	r.mu.Unlock()
	runtime.Goexit()
}

// check runs RequireNoPlaintext and returns what it reported.
func check(t *testing.T, db *postgres.DB, planted string) (report string, fatal bool) {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		postgrestest.RequireNoPlaintext(r, db, planted)
	}()
	<-done
	return strings.Join(r.errors, "\n"), r.fatal
}

// planted returns a value no table holds by chance.
func planted() string { return "acct_1" + rand.Text()[:16] }

func execSQL(t *testing.T, db *postgres.DB, sql string, args ...any) {
	t.Helper()
	_, err := db.Pool().Exec(context.Background(), sql, args...)
	require.NoError(t, err, sql)
}

const scratchTable = `CREATE TABLE payouts_scratch (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	destination text,
	label varchar(64),
	details jsonb,
	secret bytea,
	tags text[],
	created_at timestamptz NOT NULL DEFAULT now())`

func TestRequireNoPlaintextFindsAPlantedValue(t *testing.T) {
	t.Parallel()
	_, dumpErr := exec.LookPath("pg_dump")
	for _, tc := range []struct {
		description string
		setup       string
		plant       string
		arg         func(planted string) any
		expect      string // the table's column and the form
		dumpTable   string // the table pg_dump names
	}{
		{description: "text, as it is",
			plant:  `INSERT INTO payouts_scratch (destination) VALUES ($1)`,
			expect: "payouts_scratch.destination: 1 row(s), in the clear"},
		{description: "varchar, upper-cased inside other text",
			plant:  `INSERT INTO payouts_scratch (label) VALUES ('payee ' || upper($1))`,
			expect: "payouts_scratch.label: 1 row(s), in the clear"},
		{description: "jsonb, nested",
			plant:  `INSERT INTO payouts_scratch (details) VALUES (jsonb_build_object('bank', jsonb_build_object('account', $1::text)))`,
			expect: "payouts_scratch.details: 1 row(s), in the clear"},
		{description: "jsonb, Go's JSON of a []byte holding it",
			plant: `INSERT INTO payouts_scratch (details) VALUES ($1)`,
			arg: func(p string) any {
				b, _ := json.Marshal(map[string][]byte{"account": []byte("id=" + p)})
				return string(b)
			},
			expect: "payouts_scratch.details: 1 row(s), as base64"},
		{description: "bytea, among other bytes",
			plant:  `INSERT INTO payouts_scratch (secret) VALUES ('\x00ff'::bytea || convert_to($1, 'UTF8'))`,
			expect: "payouts_scratch.secret: 1 row(s), in the clear"},
		{description: "text, hex-encoded",
			plant:  `INSERT INTO payouts_scratch (destination) VALUES (encode(convert_to($1, 'UTF8'), 'hex'))`,
			expect: "payouts_scratch.destination: 1 row(s), as hex"},
		{description: "text[], in two rows",
			plant:  `INSERT INTO payouts_scratch (tags) VALUES (ARRAY['a', $1]), (ARRAY[$1])`,
			expect: "payouts_scratch.tags: 2 row(s), in the clear"},
		{description: "a partition, named by its partitioned table",
			setup: `CREATE TABLE events_scratch (day date NOT NULL, viewer text) PARTITION BY RANGE (day);
				CREATE TABLE events_scratch_2026 PARTITION OF events_scratch FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`,
			plant:     `INSERT INTO events_scratch VALUES ('2026-11-27', $1)`,
			expect:    "events_scratch.viewer: 1 row(s), in the clear",
			dumpTable: "events_scratch_2026.viewer"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			t.Parallel()
			db := postgrestest.Open(t)
			execSQL(t, db, scratchTable)
			if tc.setup != "" {
				execSQL(t, db, tc.setup)
			}
			report, fatal := check(t, db, "acct_1NothingPlantedYet")
			require.Empty(t, report, "nothing planted, nothing found")
			require.False(t, fatal)

			p := planted()
			var arg any = p
			if tc.arg != nil {
				arg = tc.arg(p)
			}
			execSQL(t, db, tc.plant, arg)
			report, fatal = check(t, db, p)
			t.Log(report)
			require.False(t, fatal, report)
			require.Contains(t, report, p, "the failure says what it looked for")
			require.Contains(t, report, tc.expect)
			require.Equal(t, 1, strings.Count(report, "row(s)"), "one column holds it: %s", report)
			if dumpErr == nil {
				dumped := tc.dumpTable
				if dumped == "" {
					dumped, _, _ = strings.Cut(tc.expect, ":")
				}
				require.Contains(t, report, "pg_dump: "+dumped+",", "pg_dump's output is searched too")
			}
		})
	}
}

func TestRequireNoPlaintextSeesNothingInSealedValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.Open(t)
	execSQL(t, db, scratchTable)
	ring, err := keyring.New(ctx, keyring.Keys{Data: [][]byte{keyring.NewKey()}, Index: keyring.NewKey()})
	require.NoError(t, err)

	p := planted()
	var id string
	require.NoError(t, db.Pool().QueryRow(ctx, `SELECT gen_random_uuid()::text`).Scan(&id))
	sealed, err := ring.SealString("billing.connected_account", id, p)
	require.NoError(t, err)
	index := ring.IndexString("billing.connected_account", p)
	details, err := json.Marshal(map[string][]byte{"account": sealed, "index": index})
	require.NoError(t, err)
	// The sealed value and its index in every form a store might write.
	execSQL(t, db, `INSERT INTO payouts_scratch (id, secret, destination, label, details, tags) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, sealed, base64.StdEncoding.EncodeToString(sealed), hex.EncodeToString(index), string(details),
		[]string{hex.EncodeToString(sealed), base64.RawURLEncoding.EncodeToString(index)})

	report, fatal := check(t, db, p)
	require.False(t, fatal, report)
	require.Empty(t, report, "a sealed value and a blind index hold no plaintext")

	// The same table, the same value, unsealed: found, so the scan above
	// did read the rows.
	execSQL(t, db, `UPDATE payouts_scratch SET label = $1 WHERE id = $2`, p, id)
	report, _ = check(t, db, p)
	require.Contains(t, report, "payouts_scratch.label: 1 row(s), in the clear")
}

func TestRequireNoPlaintextOnTheMigratedSchema(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	start := time.Now()
	report, fatal := check(t, db, planted())
	require.False(t, fatal, report)
	require.Empty(t, report)
	require.Less(t, time.Since(start), 10*time.Second, "every table and column, and pg_dump, within seconds")
	t.Logf("RequireNoPlaintext over the migrated schema: %v", time.Since(start))
}

func TestRequireNoPlaintextRefusesAShortValue(t *testing.T) {
	t.Parallel()
	db := postgrestest.Open(t)
	report, fatal := check(t, db, "acct_1")
	require.True(t, fatal)
	require.Contains(t, report, "at least 8 bytes")
}
