package postgrestest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/adshare/adshare/store/postgres"
)

// MinPlantedLen is the shortest value RequireNoPlaintext searches for:
// shorter ones could turn up by chance, and their base64 would be too
// short to tell.
const MinPlantedLen = 8

// RequireNoPlaintext fails tb when planted, a value the test stored
// through code that should have encrypted it (a connected-account id, an
// email), can be read in db's schema (the schema its connections use, as
// New and Open give): it reads every row of every table (partitioned tables
// through their parent, materialized views too) and every column, bytea
// as its bytes and any other type as its text form (so text, varchar,
// jsonb, arrays and composites alike), and looks for planted in any case,
// as hex, and as base64 (either alphabet, at any alignment: Go's JSON of a
// []byte). When pg_dump is on PATH it also searches the output of
// pg_dump --data-only --schema=<the schema>; a pg_dump that fails (for
// example older than the server) is logged and skipped. The failure names
// each table and column, with the number of rows and the form found.
//
// It sees live rows only: not dead tuples before a vacuum, the WAL, the
// server's logs, other schemas or other stores. planted must be at least
// MinPlantedLen bytes and should be unique to the test (random).
func RequireNoPlaintext(tb testing.TB, db *postgres.DB, planted string) {
	tb.Helper()
	if len(planted) < MinPlantedLen {
		tb.Fatalf("postgrestest: RequireNoPlaintext needs a planted value of at least %d bytes that nothing else contains, such as \"acct_\" and random hex; got %q", MinPlantedLen, planted)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := newPlaintext(planted)
	schema, found, err := scanTables(ctx, db, p)
	if err != nil {
		tb.Fatalf("postgrestest: RequireNoPlaintext: %v", err)
		return
	}
	dumped, err := scanDump(ctx, &db.Pool().Config().ConnConfig.Config, schema, p)
	if err != nil {
		tb.Logf("postgrestest: RequireNoPlaintext: pg_dump not searched: %v", err)
	}
	found = append(found, dumped...)
	if len(found) > 0 {
		tb.Errorf("postgrestest: the planted value %q is readable in schema %s:\n\t%s", planted, schema, strings.Join(found, "\n\t"))
	}
}

// plaintext is the planted value in each form it is looked for in.
type plaintext struct {
	lower  []byte   // in the clear, lower-cased (values are lower-cased too)
	hex    []byte   // lower-case hex (bytea's text form, hex.EncodeToString)
	base64 [][]byte // the base64 characters the value alone fixes, per alphabet and alignment
}

func newPlaintext(v string) plaintext {
	p := plaintext{lower: bytes.ToLower([]byte(v)), hex: []byte(hex.EncodeToString([]byte(v)))}
	// Encoded after a bytes, the value fills the groups of three from the
	// first that starts at or after a to the last that ends within it;
	// only those groups' four characters are the value's alone.
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for a := range 3 {
			s := enc.EncodeToString(append(make([]byte, a), v...))
			first, last := (a+2)/3, (a+len(v))/3
			p.base64 = append(p.base64, []byte(s[4*first:4*last]))
		}
	}
	return p
}

// in returns the form in which b holds the value, or "" when it does not.
func (p plaintext) in(b []byte) string {
	lower := bytes.ToLower(b)
	switch {
	case bytes.Contains(lower, p.lower):
		return "in the clear"
	case bytes.Contains(lower, p.hex):
		return "as hex"
	}
	for _, c := range p.base64 {
		if bytes.Contains(b, c) {
			return "as base64"
		}
	}
	return ""
}

// scanTables searches every row of every table of the connection's schema
// and returns the schema and a line per column and form found.
func scanTables(ctx context.Context, db *postgres.DB, p plaintext) (schema string, found []string, err error) {
	pool := db.Pool()
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", nil, fmt.Errorf("current schema: %w", err)
	}
	type table struct {
		name    string
		columns []string
		bytea   []bool
	}
	rows, err := pool.Query(ctx, `
		SELECT c.relname,
		       array_agg(a.attname::text ORDER BY a.attnum),
		       array_agg(t.oid = 'bytea'::regtype OR t.typbasetype = 'bytea'::regtype ORDER BY a.attnum)
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		JOIN pg_type t ON t.oid = a.atttypid
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition
		  AND (c.relkind <> 'm' OR c.relispopulated)
		GROUP BY c.relname
		ORDER BY c.relname`, schema)
	if err != nil {
		return "", nil, fmt.Errorf("list columns: %w", err)
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		return t, r.Scan(&t.name, &t.columns, &t.bytea)
	})
	if err != nil {
		return "", nil, fmt.Errorf("list columns: %w", err)
	}
	for _, t := range tables {
		exprs := make([]string, len(t.columns))
		for i, c := range t.columns {
			// bytea as its bytes; anything else as its text form.
			exprs[i] = pgx.Identifier{c}.Sanitize()
			if !t.bytea[i] {
				exprs[i] += "::text"
			}
		}
		counts := make([]map[string]int, len(t.columns))
		rows, err := pool.Query(ctx, `SELECT `+strings.Join(exprs, ", ")+` FROM `+pgx.Identifier{schema, t.name}.Sanitize())
		if err != nil {
			return "", nil, fmt.Errorf("read %s: %w", t.name, err)
		}
		for rows.Next() {
			// text and bytea both come as their bytes in the binary
			// format pgx asks for (bytea's hex text form would be found
			// as hex all the same).
			for i, v := range rows.RawValues() {
				if form := p.in(v); form != "" {
					if counts[i] == nil {
						counts[i] = map[string]int{}
					}
					counts[i][form]++
				}
			}
		}
		if err := rows.Err(); err != nil {
			return "", nil, fmt.Errorf("read %s: %w", t.name, err)
		}
		for i, byForm := range counts {
			for _, form := range slices.Sorted(maps.Keys(byForm)) {
				found = append(found, fmt.Sprintf("%s.%s: %d row(s), %s", t.name, t.columns[i], byForm[form], form))
			}
		}
	}
	return schema, found, nil
}

// scanDump searches pg_dump's data-only dump of schema, when pg_dump is on
// PATH, and returns a line per table, column and form found. Its error
// says why the dump could not be searched.
func scanDump(ctx context.Context, cc *pgconn.Config, schema string, p plaintext) ([]string, error) {
	path, err := exec.LookPath("pg_dump")
	if err != nil {
		return nil, nil // not installed: the table scan is the check
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sslmode := "disable"
	if cc.TLSConfig != nil {
		sslmode = "require"
	}
	conninfo := fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=%s connect_timeout=10",
		conninfoValue(cc.Host), cc.Port, conninfoValue(cc.Database), conninfoValue(cc.User), sslmode)
	// A pattern in double quotes is the name itself.
	cmd := exec.CommandContext(ctx, path, "--data-only", "--no-owner", "--no-privileges",
		`--schema="`+strings.ReplaceAll(schema, `"`, `""`)+`"`, "--dbname="+conninfo)
	cmd.Env = []string{"PGPASSWORD=" + cc.Password} // and nothing of this process's environment
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return searchDump(&stdout, p)
}

// conninfoValue quotes a libpq connection-string value.
func conninfoValue(v string) string {
	return `'` + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + `'`
}

// searchDump reads the COPY blocks of a plain-format dump (a header
// naming the table and its columns, one tab-separated row a line, and
// "\." at the end) and returns a line per table, column and form in which
// a field holds the value. Fields are searched as written: COPY's escapes
// only touch backslashes and control characters, and bytea is hex.
func searchDump(dump *bytes.Buffer, p plaintext) ([]string, error) {
	var (
		found   []string
		seen    = map[string]bool{}
		table   string
		columns []string
	)
	sc := bufio.NewScanner(dump)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<30)
	for sc.Scan() {
		line := sc.Text()
		if table == "" {
			if rest, ok := strings.CutPrefix(line, "COPY "); ok {
				if name, cols, ok := strings.Cut(strings.TrimSuffix(rest, ") FROM stdin;"), " ("); ok {
					table, columns = unquoteIdent(name[strings.LastIndex(name, ".")+1:]), strings.Split(cols, ", ")
				}
			}
			continue
		}
		if line == `\.` {
			table = ""
			continue
		}
		for i, field := range strings.Split(line, "\t") {
			form := p.in([]byte(field))
			if form == "" || i >= len(columns) {
				continue
			}
			hit := fmt.Sprintf("pg_dump: %s.%s, %s", table, unquoteIdent(columns[i]), form)
			if !seen[hit] {
				seen[hit] = true
				found = append(found, hit)
			}
		}
	}
	return found, sc.Err()
}

// unquoteIdent undoes pg_dump's quoting of an identifier.
func unquoteIdent(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return s
}
