package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/auth"
)

const sessionColumns = `id, user_id, method, user_agent, ip, ip_sealed, created_at, last_used_at, idle_expires_at,
	absolute_expires_at, generation, revoked_at, revoke_reason`

// sessionColumnsOf returns sessionColumns qualified by a table alias.
func sessionColumnsOf(alias string) string {
	return alias + `.id, ` + alias + `.user_id, ` + alias + `.method, ` + alias + `.user_agent, ` + alias + `.ip, ` +
		alias + `.ip_sealed, ` + alias + `.created_at, ` + alias + `.last_used_at, ` + alias + `.idle_expires_at, ` +
		alias + `.absolute_expires_at, ` + alias + `.generation, ` + alias + `.revoked_at, ` + alias + `.revoke_reason`
}

// sessionRow is one row of sessionColumns as scanned, before finish.
type sessionRow struct {
	s         auth.Session
	revokedAt *time.Time
	ipSealed  []byte
}

func (r *sessionRow) dest() []any {
	s := &r.s
	return []any{&s.ID, &s.UserID, &s.Method, &s.UserAgent, &s.IP, &r.ipSealed, &s.CreatedAt, &s.LastUsedAt, &s.IdleExpiresAt,
		&s.AbsoluteExpiresAt, &s.Generation, &r.revokedAt, &s.RevokeReason}
}

// finish opens the sealed address and puts the times in UTC.
func (db *DB) finishSession(r *sessionRow) (auth.Session, error) {
	s := r.s
	var err error
	if s.IP, err = db.openPersonal(purposeSessionIP, s.ID.String(), r.ipSealed, s.IP); err != nil {
		return auth.Session{}, fmt.Errorf("postgres: session %s: ip: %w", s.ID, err)
	}
	s.CreatedAt, s.LastUsedAt = s.CreatedAt.UTC(), s.LastUsedAt.UTC()
	s.IdleExpiresAt, s.AbsoluteExpiresAt = s.IdleExpiresAt.UTC(), s.AbsoluteExpiresAt.UTC()
	s.RevokedAt = time.Time{}
	if r.revokedAt != nil {
		s.RevokedAt = r.revokedAt.UTC()
	}
	return s, nil
}

func (db *DB) scanSession(row pgx.Row) (auth.Session, error) {
	var r sessionRow
	if err := row.Scan(r.dest()...); err != nil {
		return auth.Session{}, translate(err, auth.ErrSessionNotFound)
	}
	return db.finishSession(&r)
}

// CreateSession implements auth.SessionStore; with Config.Keyring the
// client's address is sealed.
func (db *DB) CreateSession(ctx context.Context, s auth.Session, tokenHash []byte) error {
	ipSealed, ip, err := db.sealPersonal(purposeSessionIP, s.ID.String(), s.IP)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO sessions (id, user_id, method, user_agent, ip, ip_sealed, created_at, last_used_at, idle_expires_at,
				absolute_expires_at, generation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1)`,
			s.ID, s.UserID, s.Method, s.UserAgent, ip, ipSealed, utc(s.CreatedAt), utc(s.LastUsedAt), utc(s.IdleExpiresAt), utc(s.AbsoluteExpiresAt))
		b.Queue(`INSERT INTO refresh_tokens (hash, session_id, generation, created_at) VALUES ($1, $2, 1, $3)`,
			tokenHash, s.ID, utc(s.CreatedAt))
		return tx.SendBatch(ctx, b).Close()
	})
	return translate(err, nil)
}

// Session implements auth.SessionStore.
func (db *DB) Session(ctx context.Context, id uuid.UUID) (auth.Session, error) {
	return db.scanSession(db.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id))
}

// UserSessions implements auth.SessionStore.
func (db *DB) UserSessions(ctx context.Context, user uuid.UUID, now time.Time) ([]auth.Session, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1 AND revoked_at IS NULL AND idle_expires_at > $2 AND absolute_expires_at > $2
		ORDER BY last_used_at DESC, id::text DESC`, user, now)
	if err != nil {
		return nil, translate(err, nil)
	}
	return db.collectSessions(rows)
}

func (db *DB) collectSessions(rows pgx.Rows) ([]auth.Session, error) {
	defer rows.Close()
	out := []auth.Session{}
	for rows.Next() {
		var r sessionRow
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, translate(err, nil)
		}
		s, err := db.finishSession(&r)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, translate(rows.Err(), nil)
}

// RotateRefreshToken implements auth.SessionStore. The happy path is one
// statement (one round trip, one implicit transaction): mark the token
// used if it is unused and its session live, insert the successor, move the
// session. The row lock taken by the first UPDATE serialises concurrent
// rotations of one token; the loser re-checks `used_at IS NULL`, matches
// nothing, and falls through to the read that says why.
func (db *DB) RotateRefreshToken(ctx context.Context, r auth.Rotation) (auth.RotationResult, error) {
	now := utc(r.Now)
	row := db.pool.QueryRow(ctx, `
		WITH old AS (
			UPDATE refresh_tokens t SET used_at = $3
			FROM sessions s
			WHERE t.hash = $1 AND t.used_at IS NULL AND s.id = t.session_id
			  AND s.revoked_at IS NULL AND s.idle_expires_at > $3 AND s.absolute_expires_at > $3
			RETURNING t.session_id, t.generation
		), successor AS (
			INSERT INTO refresh_tokens (hash, session_id, generation, created_at)
			SELECT $2, session_id, generation + 1, $3 FROM old
		)
		UPDATE sessions s SET generation = old.generation + 1, last_used_at = $3,
			idle_expires_at = LEAST($3 + make_interval(secs => $4), s.absolute_expires_at)
		FROM old, users u WHERE s.id = old.session_id AND u.id = s.user_id
		RETURNING `+sessionColumnsOf("s")+`, u.role`,
		r.OldHash, r.NewHash, now, r.IdleTimeout.Seconds())
	var (
		rotated auth.RotationResult
		sr      sessionRow
	)
	err := row.Scan(append(sr.dest(), &rotated.UserRole)...)
	if err == nil {
		if rotated.Session, err = db.finishSession(&sr); err != nil {
			return auth.RotationResult{}, err
		}
		rotated.Rotated = true
		return rotated, nil
	}
	if err = translate(err, auth.ErrSessionNotFound); !errors.Is(err, auth.ErrSessionNotFound) {
		return auth.RotationResult{}, err
	}

	// Nothing rotated: say why.
	var (
		res             auth.RotationResult
		usedAt          *time.Time
		successorUnused *bool
	)
	sr = sessionRow{}
	dest := append(sr.dest(), &usedAt, &successorUnused, &res.UserRole)
	err = db.pool.QueryRow(ctx, `
		SELECT `+sessionColumnsOf("s")+`, t.used_at,
			(SELECT n.used_at IS NULL FROM refresh_tokens n WHERE n.session_id = t.session_id AND n.generation = t.generation + 1),
			u.role
		FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id
		WHERE t.hash = $1`, r.OldHash).Scan(dest...)
	if err != nil {
		return auth.RotationResult{}, translate(err, auth.ErrRefreshTokenUnknown)
	}
	if res.Session, err = db.finishSession(&sr); err != nil {
		return auth.RotationResult{}, err
	}
	switch {
	case !res.Session.RevokedAt.IsZero():
		return auth.RotationResult{Session: res.Session}, auth.ErrSessionRevoked
	case !res.Session.Live(now):
		return auth.RotationResult{Session: res.Session}, auth.ErrSessionExpired
	case usedAt == nil:
		return auth.RotationResult{}, errRotationRaced
	}
	res.UsedAt = usedAt.UTC()
	res.SuccessorUnused = successorUnused != nil && *successorUnused
	return res, nil
}

// RevokeSession implements auth.SessionStore.
func (db *DB) RevokeSession(ctx context.Context, id uuid.UUID, reason string, now time.Time) (auth.Session, error) {
	return db.scanSession(db.pool.QueryRow(ctx, `
		UPDATE sessions SET
			revoke_reason = CASE WHEN revoked_at IS NULL THEN $2 ELSE revoke_reason END,
			revoked_at = COALESCE(revoked_at, $3)
		WHERE id = $1 RETURNING `+sessionColumns, id, reason, utc(now)))
}

// RevokeUserSessions implements auth.SessionStore.
func (db *DB) RevokeUserSessions(ctx context.Context, user, except uuid.UUID, reason string, now time.Time) ([]auth.Session, error) {
	rows, err := db.pool.Query(ctx, `
		UPDATE sessions SET revoked_at = $4, revoke_reason = $3
		WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL AND idle_expires_at > $4 AND absolute_expires_at > $4
		RETURNING `+sessionColumns, user, except, reason, utc(now))
	if err != nil {
		return nil, translate(err, nil)
	}
	ended, err := db.collectSessions(rows)
	slices.SortFunc(ended, func(a, b auth.Session) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	return ended, err
}
