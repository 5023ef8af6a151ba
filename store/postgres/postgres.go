package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/batch"
)

// Defaults of Config.
const (
	// DefaultMaxConns is the pool size when Config.MaxConns is zero.
	DefaultMaxConns = 10
	// DefaultConnectTimeout bounds establishing one connection.
	DefaultConnectTimeout = 5 * time.Second
)

// Config configures Open. The zero value (or nil) means every default.
type Config struct {
	// MaxConns is the most connections the pool opens.
	// Defaults to DefaultMaxConns.
	MaxConns int32
	// ConnectTimeout bounds establishing one connection. Defaults to
	// DefaultConnectTimeout (unless the URL sets connect_timeout).
	ConnectTimeout time.Duration
	// Logger receives migration progress. Defaults to discarding.
	Logger *slog.Logger
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	out.MaxConns = cmp.Or(out.MaxConns, DefaultMaxConns)
	out.ConnectTimeout = cmp.Or(out.ConnectTimeout, DefaultConnectTimeout)
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out
}

// DB is adshare's PostgreSQL store. It implements every store interface of
// the domain packages and is safe for concurrent use.
type DB struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
	audit  *batch.Batcher[auth.AuditEvent]
	// Now is the clock used for timestamps the store sets itself.
	Now func() time.Time
}

var (
	_ auth.UserStore       = (*DB)(nil)
	_ auth.SessionStore    = (*DB)(nil)
	_ auth.IdentityStore   = (*DB)(nil)
	_ auth.AuditLog        = (*DB)(nil)
	_ adspace.Store        = (*DB)(nil)
	_ adspace.ContentStore = (*DB)(nil)
)

// Open connects to the database at url (a postgres:// URL or a key=value
// DSN) and checks that it answers. It does not migrate: call Migrate, or
// run the example server's migrate command.
func Open(ctx context.Context, url string, cfg *Config) (*DB, error) {
	c := cfg.withDefaults()
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included: do not wrap it.
		return nil, errors.New("postgres: cannot parse the database URL; expected postgres://user:password@host:port/dbname")
	}
	pc.MaxConns = c.MaxConns
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool: %w", err)
	}
	db := &DB{pool: pool, logger: c.Logger, Now: time.Now}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	db.audit = batch.New(db.writeAudit, batch.Config{MaxBatch: 512, Flushers: 2})
	return db, nil
}

// Pool returns the underlying pool, for hosts that share it.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close writes the audit events still queued, then closes every
// connection. It waits for connections in use.
func (db *DB) Close() {
	db.audit.Close()
	db.pool.Close()
}

// Ping checks that the database answers, for readiness probes.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// nullTime maps the zero time to SQL NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
