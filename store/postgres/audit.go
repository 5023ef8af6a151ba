package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/auth"
)

// AppendAudit implements auth.AuditLog. The table refuses updates and
// deletes (a trigger), so the log is append-only even for code with SQL
// access.
//
// Events from concurrent callers are written together (group commit: one
// COPY and one commit per batch), and each call returns only after its
// event is committed.
func (db *DB) AppendAudit(ctx context.Context, e auth.AuditEvent) error {
	return db.audit.Do(ctx, e)
}

var auditCopyColumns = []string{"at", "actor_id", "action", "target_type", "target_id", "ip", "ip_sealed", "user_agent", "outcome", "reason", "details"}

// auditRowID is the row id an audit event's sealed address is bound to:
// its time in Unix microseconds, which the row keeps (its id is the
// database's, unknown before the write). The re-encryption job computes
// the same in SQL (see sealedTables).
func auditRowID(at time.Time) string { return strconv.FormatInt(at.UnixMicro(), 10) }

// writeAudit is the audit batcher's flush.
func (db *DB) writeAudit(ctx context.Context, events []auth.AuditEvent) error {
	_, err := db.pool.CopyFrom(ctx, pgx.Identifier{"audit_events"}, auditCopyColumns,
		pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
			e := events[i]
			var actor *uuid.UUID
			if e.ActorID != uuid.Nil {
				actor = &e.ActorID
			}
			details := e.Details
			if details == nil {
				details = map[string]string{}
			}
			at := utc(e.At)
			ipSealed, ip, err := db.sealPersonal(purposeAuditIP, auditRowID(at), e.IP)
			if err != nil {
				return nil, err
			}
			return []any{at, actor, e.Action, e.TargetType, e.TargetID, ip, ipSealed, e.UserAgent, e.Outcome, e.Reason, details}, nil
		}))
	return translate(err, nil)
}

// AuditEvents implements auth.AuditLog.
func (db *DB) AuditEvents(ctx context.Context, f auth.AuditFilter) ([]auth.AuditEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var actor *uuid.UUID
	if f.ActorID != uuid.Nil {
		actor = &f.ActorID
	}
	rows, err := db.pool.Query(ctx, `
		SELECT id, at, actor_id, action, target_type, target_id, ip, ip_sealed, user_agent, outcome, reason, details
		FROM audit_events
		WHERE ($1::uuid IS NULL OR actor_id = $1)
		  AND ($2 = '' OR target_id = $2)
		  AND ($3 = '' OR action = $3)
		  AND ($4::timestamptz IS NULL OR at >= $4)
		  AND ($5::timestamptz IS NULL OR at < $5)
		  AND ($6 = 0 OR id < $6)
		ORDER BY id DESC
		LIMIT $7`,
		actor, f.TargetID, f.Action, nullTime(f.Since), nullTime(f.Until), f.BeforeID, limit)
	if err != nil {
		return nil, translate(err, nil)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (auth.AuditEvent, error) {
		var (
			e        auth.AuditEvent
			actor    *uuid.UUID
			ipSealed []byte
		)
		if err := r.Scan(&e.ID, &e.At, &actor, &e.Action, &e.TargetType, &e.TargetID, &e.IP, &ipSealed, &e.UserAgent,
			&e.Outcome, &e.Reason, &e.Details); err != nil {
			return e, err
		}
		if actor != nil {
			e.ActorID = *actor
		}
		e.At = e.At.UTC()
		var err error
		if e.IP, err = db.openPersonal(purposeAuditIP, auditRowID(e.At), ipSealed, e.IP); err != nil {
			return e, fmt.Errorf("postgres: audit event %d: ip: %w", e.ID, err)
		}
		return e, nil
	})
	if out == nil {
		out = []auth.AuditEvent{}
	}
	return out, translate(err, nil)
}
