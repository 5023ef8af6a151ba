package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/internal/jobs"
)

// sealedColumn is a bytea column of sealed values and, for personal data,
// the clear column it replaces (migration 00010).
type sealedColumn struct {
	name    string
	purpose string
	// clear is the text column the value was kept in before it was
	// sealed ("" when there is none); clearNull says it is emptied to NULL
	// rather than ''.
	clear     string
	clearNull bool
	// index is the blind-index column filled when a clear value is
	// sealed ("" when there is none).
	index string
}

// sealedTable is a table with sealed columns, walked by its primary key.
type sealedTable struct {
	name string
	// pk are the primary key's columns, each with the SQL type its text
	// form is cast back to in the cursor.
	pk, pkTypes []string
	// bind is the SQL (text) of the row id the values are bound to: the
	// same as the store's Seal calls use.
	bind    string
	columns []sealedColumn
}

// sealedTables lists every sealed column of the schema: the ones a key
// rotation must re-encrypt and KeyUsage counts. A new sealed column is
// added here, or a retired key may still be in use.
var sealedTables = []sealedTable{
	{name: "users", pk: []string{"id"}, pkTypes: []string{"uuid"}, bind: "id::text", columns: []sealedColumn{
		{name: "email_sealed", purpose: purposeEmail, clear: "email", clearNull: true, index: "email_index"},
		{name: "display_name_sealed", purpose: purposeDisplayName, clear: "display_name"},
	}},
	{name: "identities", pk: []string{"issuer", "subject"}, pkTypes: []string{"text", "text"}, bind: `issuer || E'\n' || subject`,
		columns: []sealedColumn{{name: "email_sealed", purpose: purposeIdentityEmail, clear: "email"}}},
	{name: "sessions", pk: []string{"id"}, pkTypes: []string{"uuid"}, bind: "id::text",
		columns: []sealedColumn{{name: "ip_sealed", purpose: purposeSessionIP, clear: "ip"}}},
	{name: "audit_events", pk: []string{"id"}, pkTypes: []string{"bigint"},
		bind:    "floor(extract(epoch FROM at) * 1000000)::bigint::text", // auditRowID
		columns: []sealedColumn{{name: "ip_sealed", purpose: purposeAuditIP, clear: "ip"}}},
	{name: "billing_payees", pk: []string{"owner_id"}, pkTypes: []string{"uuid"}, bind: "owner_id::text",
		columns: []sealedColumn{{name: "account_sealed", purpose: purposeConnectedAccount}}},
	{name: "billing_payouts", pk: []string{"id"}, pkTypes: []string{"uuid"}, bind: "id::text",
		columns: []sealedColumn{{name: "destination_sealed", purpose: purposePayoutDestination}}},
	{name: "billing_events", pk: []string{"id"}, pkTypes: []string{"text"}, bind: "id",
		columns: []sealedColumn{
			{name: "account_sealed", purpose: purposeEventAccount},
			{name: "payload_sealed", purpose: purposeEventPayload},
			{name: "event_sealed", purpose: purposeEvent},
		}},
}

// keyIDSQL is the SQL of a sealed value's key id, as keyring.KeyID spells it.
func keyIDSQL(col string) string { return `encode(substring(` + col + ` FROM 2 FOR 8), 'hex')` }

// Defaults of ResealOptions.
const (
	// DefaultResealBatch is how many rows one batch of Reseal rewrites,
	// in one transaction.
	DefaultResealBatch = 500
)

// ResealOptions configures one Reseal. The zero value (or nil) means
// every default.
type ResealOptions struct {
	// BatchSize is how many rows a batch rewrites, in one transaction
	// that also records the progress. Defaults to DefaultResealBatch.
	BatchSize int
	// MaxBatches stops Reseal after that many batches (the run stays
	// recorded, unfinished, and the next Reseal goes on from there).
	// Zero: until every table is done.
	MaxBatches int
}

// ResealResult is what one Reseal did.
type ResealResult struct {
	// Resealed is how many rows it rewrote.
	Resealed int64
	// Done says that every sealed column now holds values of the sealing
	// key only (and no personal value is left in the clear); false when
	// MaxBatches stopped it first.
	Done bool
}

// Reseal re-encrypts, under the ring's sealing key (the first of
// Config.Keyring), every sealed value stored under another key, and seals
// the personal values still in the clear (rows from before migration
// 00010, or written without a keyring), emptying their clear columns. It
// walks each table in primary-key order (keyset pagination), a batch of
// rows per transaction, and records in that transaction how far it got:
// stopped anywhere (an error, MaxBatches, a crash), the next Reseal, on
// any instance, goes on from the last committed batch. It is idempotent:
// a value already under the sealing key is left as it is. A run belongs to
// a sealing key: after a rotation the walk starts again from the first
// row, and so does a Reseal after a finished run (a new pass finds what
// an instance still sealing with an old key wrote behind the cursor).
// Concurrent Reseals serialise per table. It returns
// ErrKeyringRequired without a keyring, and ErrUnknownKey (auth/keyring)
// when a value's key is not in the ring: that key must be configured again
// until this job has moved its values.
func (db *DB) Reseal(ctx context.Context, opts *ResealOptions) (ResealResult, error) {
	r, err := db.ring()
	if err != nil {
		return ResealResult{}, err
	}
	var o ResealOptions
	if opts != nil {
		o = *opts
	}
	o.BatchSize = cmp.Or(o.BatchSize, DefaultResealBatch)
	var res ResealResult
	batches := 0
	for _, t := range sealedTables {
		for {
			if o.MaxBatches > 0 && batches == o.MaxBatches {
				return res, nil
			}
			n, done, err := db.resealBatch(ctx, r, t, o.BatchSize)
			res.Resealed += n
			if err != nil {
				return res, fmt.Errorf("postgres: reseal %s: %w", t.name, err)
			}
			if done {
				break
			}
			batches++
		}
	}
	res.Done = true
	return res, nil
}

// resealBatch rewrites the next batch of t's rows that need it, in one
// transaction with t's progress. done says t had no row left to do; the
// run is then marked finished.
func (db *DB) resealBatch(ctx context.Context, r *keyring.Ring, t sealedTable, size int) (n int64, done bool, err error) {
	sealingKey := r.SealingKeyID()
	now := db.Now().UTC()
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO keyring_reseal (target, sealing_key, started_at, updated_at)
			VALUES ($1, $2, $3, $3) ON CONFLICT (target) DO NOTHING`, t.name, sealingKey, now); err != nil {
			return err
		}
		var (
			runKey   string
			cursor   []string
			finished *time.Time
		)
		if err := tx.QueryRow(ctx, `SELECT sealing_key, cursor, finished_at FROM keyring_reseal WHERE target = $1 FOR UPDATE`,
			t.name).Scan(&runKey, &cursor, &finished); err != nil {
			return err
		}
		// A rotation since the recorded run, or a finished run asked for
		// again, is a new pass from the first row; an unfinished run of
		// this key goes on from its cursor.
		if runKey != sealingKey || finished != nil {
			cursor = nil
			if _, err := tx.Exec(ctx, `UPDATE keyring_reseal SET sealing_key = $2, cursor = NULL, resealed = 0,
				started_at = $3, updated_at = $3, finished_at = NULL WHERE target = $1`, t.name, sealingKey, now); err != nil {
				return err
			}
		}
		rows, err := selectToReseal(ctx, tx, t, sealingKey, cursor, size)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			done = true
			_, err := tx.Exec(ctx, `UPDATE keyring_reseal SET finished_at = $2, updated_at = $2 WHERE target = $1`, t.name, now)
			return err
		}
		b := &pgx.Batch{}
		for _, row := range rows {
			if err := queueReseal(b, r, t, row); err != nil {
				return fmt.Errorf("row %s: %w", strings.Join(row.pk, ","), err)
			}
		}
		b.Queue(`UPDATE keyring_reseal SET cursor = $2, resealed = resealed + $3, updated_at = $4 WHERE target = $1`,
			t.name, rows[len(rows)-1].pk, len(rows), now)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		n = int64(len(rows))
		return nil
	})
	if err != nil {
		return 0, false, translate(err, nil)
	}
	return n, done, nil
}

// resealRow is one row to rewrite: its primary key as text, its row id,
// and per column the sealed value and the clear one.
type resealRow struct {
	pk     []string
	bind   string
	sealed [][]byte
	clear  []*string
}

// selectToReseal locks and returns the next rows after cursor (nil: from
// the first) that hold a value of another key than sealingKey, or a
// personal value in the clear.
func selectToReseal(ctx context.Context, tx pgx.Tx, t sealedTable, sealingKey string, cursor []string, size int) ([]resealRow, error) {
	var (
		sel   []string
		needs []string
		args  = []any{sealingKey, size}
	)
	for _, c := range t.pk {
		sel = append(sel, pgx.Identifier{c}.Sanitize()+"::text")
	}
	sel = append(sel, t.bind)
	for _, c := range t.columns {
		col := pgx.Identifier{c.name}.Sanitize()
		sel = append(sel, col)
		needs = append(needs, `(`+col+` IS NOT NULL AND `+keyIDSQL(col)+` <> $1)`)
		if c.clear == "" {
			sel = append(sel, "NULL::text")
			continue
		}
		clear := pgx.Identifier{c.clear}.Sanitize()
		sel = append(sel, clear)
		needs = append(needs, `(`+clear+` IS NOT NULL AND `+clear+` <> '')`)
	}
	order := make([]string, len(t.pk))
	for i, c := range t.pk {
		order[i] = pgx.Identifier{c}.Sanitize()
	}
	pk := "(" + strings.Join(order, ", ") + ")"
	where := "(" + strings.Join(needs, " OR ") + ")"
	if cursor != nil {
		if len(cursor) != len(t.pk) {
			return nil, fmt.Errorf("the recorded cursor %q does not fit the primary key %v", cursor, t.pk)
		}
		params := make([]string, len(cursor))
		for i, v := range cursor {
			args = append(args, v)
			params[i] = fmt.Sprintf("$%d::%s", len(args), t.pkTypes[i])
		}
		where += " AND " + pk + " > (" + strings.Join(params, ", ") + ")"
	}
	q := `SELECT ` + strings.Join(sel, ", ") + ` FROM ` + pgx.Identifier{t.name}.Sanitize() +
		` WHERE ` + where + ` ORDER BY ` + strings.Join(order, ", ") + ` LIMIT $2 FOR UPDATE`
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (resealRow, error) {
		row := resealRow{pk: make([]string, len(t.pk)), sealed: make([][]byte, len(t.columns)), clear: make([]*string, len(t.columns))}
		dest := make([]any, 0, len(t.pk)+1+2*len(t.columns))
		for i := range row.pk {
			dest = append(dest, &row.pk[i])
		}
		dest = append(dest, &row.bind)
		for i := range t.columns {
			dest = append(dest, &row.sealed[i], &row.clear[i])
		}
		return row, r.Scan(dest...)
	})
}

// queueReseal queues the update of one row: each value under another key
// sealed again, each clear value sealed (its index set) and its clear
// column emptied.
func queueReseal(b *pgx.Batch, r *keyring.Ring, t sealedTable, row resealRow) error {
	var (
		set  []string
		args []any
	)
	put := func(col string, v any) {
		args = append(args, v)
		set = append(set, fmt.Sprintf("%s = $%d", pgx.Identifier{col}.Sanitize(), len(args)))
	}
	for i, c := range t.columns {
		switch {
		case row.sealed[i] != nil:
			v, changed, err := r.Reseal(c.purpose, row.bind, row.sealed[i])
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if changed {
				put(c.name, v)
			}
		case row.clear[i] != nil && *row.clear[i] != "":
			v, err := r.SealString(c.purpose, row.bind, *row.clear[i])
			if err != nil {
				return err
			}
			put(c.name, v)
			if c.index != "" {
				put(c.index, r.IndexString(c.purpose, *row.clear[i]))
			}
			if c.clearNull {
				put(c.clear, nil)
			} else {
				put(c.clear, "")
			}
		}
	}
	if len(set) == 0 {
		return nil
	}
	where := make([]string, len(t.pk))
	for i, c := range t.pk {
		args = append(args, row.pk[i])
		where[i] = fmt.Sprintf("%s = $%d::%s", pgx.Identifier{c}.Sanitize(), len(args), t.pkTypes[i])
	}
	b.Queue(`UPDATE `+pgx.Identifier{t.name}.Sanitize()+` SET `+strings.Join(set, ", ")+` WHERE `+strings.Join(where, " AND "), args...)
	return nil
}

// ClearKeyID is the key id under which KeyUsage counts the personal
// values still stored in the clear (not yet sealed by Reseal).
const ClearKeyID = "clear"

// KeyUsage counts the stored values of every sealed column by the id of
// the key that sealed them (as keyring.Ring.KeyIDs spells it), and under
// ClearKeyID the personal values still in the clear. A key may retire
// (leave Config.Keyring) only when it counts zero here. It reads every
// sealed table whole: an operator's command, not a request's. It needs no
// keyring.
func (db *DB) KeyUsage(ctx context.Context) (map[string]int64, error) {
	usage := map[string]int64{}
	for _, t := range sealedTables {
		var parts []string
		for _, c := range t.columns {
			col := pgx.Identifier{c.name}.Sanitize()
			parts = append(parts, `SELECT `+keyIDSQL(col)+` AS k FROM `+pgx.Identifier{t.name}.Sanitize()+` WHERE `+col+` IS NOT NULL`)
			if c.clear != "" {
				clear := pgx.Identifier{c.clear}.Sanitize()
				parts = append(parts, `SELECT '`+ClearKeyID+`' FROM `+pgx.Identifier{t.name}.Sanitize()+
					` WHERE `+clear+` IS NOT NULL AND `+clear+` <> ''`)
			}
		}
		rows, err := db.pool.Query(ctx, `SELECT k, count(*) FROM (`+strings.Join(parts, " UNION ALL ")+`) v GROUP BY k`)
		if err != nil {
			return nil, fmt.Errorf("postgres: key usage of %s: %w", t.name, err)
		}
		var (
			k string
			n int64
		)
		_, err = pgx.ForEachRow(rows, []any{&k, &n}, func() error {
			usage[k] += n
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("postgres: key usage of %s: %w", t.name, err)
		}
	}
	return usage, nil
}

// ResealJobKind is the kind of the job that runs Reseal (see
// RegisterResealJob).
const ResealJobKind = "postgres.reseal"

// resealJobTimeout bounds one attempt of the reseal job; an attempt cut
// short is retried and goes on from its last batch.
const resealJobTimeout = 30 * time.Minute

// RegisterResealJob registers on q (before its Start) the job that runs
// Reseal to the end: enqueue it (kind ResealJobKind, no arguments) after
// a key rotation, or run it periodically with q.Every. An attempt that
// fails or is cut short is retried and resumes where the last committed
// batch left off; a job stuck on ErrUnknownKey fails for good at once
// (configure the missing key and enqueue it again). It returns q's
// Register error.
func (db *DB) RegisterResealJob(q jobs.Queue) error {
	return q.Register(ResealJobKind, func(ctx context.Context, _ json.RawMessage) error {
		res, err := db.Reseal(ctx, nil)
		if errors.Is(err, keyring.ErrUnknownKey) || errors.Is(err, ErrKeyringRequired) {
			return jobs.Permanent(err)
		}
		if err != nil {
			return err
		}
		db.logger.InfoContext(ctx, "postgres: sealed values re-encrypted", slog.Int64("rows", res.Resealed))
		return nil
	}, &jobs.KindOpts{Timeout: resealJobTimeout})
}
