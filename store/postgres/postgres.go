package postgres

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/internal/batch"
	"github.com/adshare/adshare/internal/periodic"
)

// Defaults of Config.
const (
	// DefaultMaxConns is the pool size when Config.MaxConns is zero.
	DefaultMaxConns = 10
	// DefaultConnectTimeout bounds establishing one connection.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultEventRetention keeps raw events for 400 days.
	DefaultEventRetention = 400 * 24 * time.Hour
	// DefaultMaintenanceInterval runs partition maintenance hourly.
	DefaultMaintenanceInterval = time.Hour
	// partitionsAhead is how many days of event partitions maintenance
	// keeps made ahead of today.
	partitionsAhead = 7
	// maintenanceTimeout bounds one maintenance run.
	maintenanceTimeout = time.Minute
)

// Config configures Open. The zero value (or nil) means every default.
type Config struct {
	// MaxConns is the most connections the pool opens.
	// Defaults to DefaultMaxConns.
	MaxConns int32
	// ConnectTimeout bounds establishing one connection. Defaults to
	// DefaultConnectTimeout (unless the URL sets connect_timeout).
	ConnectTimeout time.Duration
	// Logger receives migration progress and partition maintenance.
	// Defaults to discarding.
	Logger *slog.Logger
	// RequireVerifiedTLS makes Open refuse a database URL that does not
	// ask for a verified TLS connection (sslmode=verify-full; add
	// sslrootcert=/path/ca.pem for a private CA): no plaintext fallback,
	// the server's certificate and name checked.
	RequireVerifiedTLS bool
	// EventRetention is how long raw tracking events are kept: from Start
	// on, the daily partitions older than this are dropped every
	// MaintenanceInterval (rollups are kept). Defaults to
	// DefaultEventRetention; negative keeps events forever.
	EventRetention time.Duration
	// MaintenanceInterval is how often Start's maintenance runs: it makes
	// the event partitions of the week ahead and drops those past
	// EventRetention. Defaults to DefaultMaintenanceInterval.
	MaintenanceInterval time.Duration
	// Keyring seals what must not be readable in the database: users'
	// emails (found, and kept unique, by the ring's blind index) and
	// display names, OIDC identities' emails, the client addresses of
	// sessions and audit events, and billing's connected-account ids
	// (found by their index), payout destinations and processor events.
	// Rotate its keys with Reseal (the job RegisterResealJob registers)
	// and KeyUsage. Nil: billing's sealed writes and reads fail with
	// ErrKeyringRequired, and nothing of them is stored, while personal
	// data is kept in the clear (development only; Reseal seals it once a
	// keyring is configured).
	Keyring *keyring.Ring
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	out.MaxConns = cmp.Or(out.MaxConns, DefaultMaxConns)
	out.ConnectTimeout = cmp.Or(out.ConnectTimeout, DefaultConnectTimeout)
	out.EventRetention = cmp.Or(out.EventRetention, DefaultEventRetention)
	out.MaintenanceInterval = cmp.Or(out.MaintenanceInterval, DefaultMaintenanceInterval)
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out
}

// DB is adshare's PostgreSQL store. It implements every store interface of
// the domain packages and is safe for concurrent use.
type DB struct {
	pool        *pgxpool.Pool
	logger      *slog.Logger
	audit       *batch.Batcher[auth.AuditEvent]
	cfg         Config
	maintenance *periodic.Task
	// schema is the connections' current schema at Open ("" when
	// search_path names none that exists), where River's tables are.
	schema string
	// posts gathers concurrent postings into batches (ledger_batch.go).
	posts *batch.Batcher[*postReq]
	// jobs is the queue DB.Jobs made, if any.
	jobs     atomic.Pointer[Jobs]
	stopOnce sync.Once
	stopErr  error
	closed   chan struct{}
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
// run the example server's migrate command. The DB is usable at once;
// Start runs its maintenance, Stop closes it.
func Open(ctx context.Context, url string, cfg *Config) (*DB, error) {
	c := cfg.withDefaults()
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included: do not wrap it.
		return nil, errors.New("postgres: cannot parse the database URL; expected postgres://user:password@host:port/dbname")
	}
	if c.RequireVerifiedTLS {
		if err := requireVerifiedTLS(&pc.ConnConfig.Config); err != nil {
			return nil, err
		}
	}
	pc.MaxConns = c.MaxConns
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool: %w", err)
	}
	db := &DB{pool: pool, logger: c.Logger, cfg: c, Now: time.Now}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if db.schema, err = db.currentSchema(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	db.audit = batch.New(db.writeAudit, batch.Config{MaxBatch: 512, Flushers: 2})
	db.maintenance = periodic.New(c.MaintenanceInterval, db.maintain)
	db.posts = newPostBatcher(db)
	return db, nil
}

// requireVerifiedTLS refuses a connection configuration that could talk in
// the clear (sslmode disable, allow or prefer: a plain fallback) or that
// does not verify the server's name (require, verify-ca).
func requireVerifiedTLS(cc *pgconn.Config) error {
	ok := func(t *tls.Config) bool { return t != nil && !t.InsecureSkipVerify && t.ServerName != "" }
	good := ok(cc.TLSConfig)
	for _, fb := range cc.Fallbacks {
		good = good && ok(fb.TLSConfig)
	}
	if !good {
		return errors.New("postgres: Config.RequireVerifiedTLS: the database URL must set sslmode=verify-full (and sslrootcert=<CA file> for a private CA)")
	}
	return nil
}

// Start runs partition maintenance now and then every
// MaintenanceInterval until Stop: the event partitions of the week ahead
// are made, and those past EventRetention dropped. Several instances may
// run it at once. The first run happens before Start returns; a failed run
// is logged (not returned) and tried again at the next interval. Start
// returns nil when already started, and an error after Stop.
func (db *DB) Start(ctx context.Context) error {
	db.maintain(ctx)
	if err := db.maintenance.Start(ctx); err != nil {
		return fmt.Errorf("postgres: start: %w", err)
	}
	return nil
}

// maintain makes the partitions ahead and drops those past the retention.
func (db *DB) maintain(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, maintenanceTimeout)
	defer cancel()
	now := db.Now()
	if err := db.EnsureEventPartitions(ctx, now.Add(-24*time.Hour), now.Add(partitionsAhead*24*time.Hour)); err != nil {
		db.logger.WarnContext(ctx, "postgres: event partitions not created", slog.Any("error", err))
	}
	if db.cfg.EventRetention < 0 {
		return
	}
	if n, err := db.DropEventPartitionsBefore(ctx, now.Add(-db.cfg.EventRetention)); err != nil {
		db.logger.WarnContext(ctx, "postgres: old event partitions not dropped", slog.Any("error", err))
	} else if n > 0 {
		db.logger.InfoContext(ctx, "postgres: old event partitions dropped", slog.Int("count", n))
	}
}

// Pool returns the underlying pool, for hosts that share it.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Stop stops the job queue (see DB.Jobs), ends maintenance, writes the
// audit events still queued, and closes every connection, waiting for
// those in use; when ctx ends first it returns ctx's error and the pool
// closes in the background. Stop the services that use the DB first. It is
// idempotent and safe before Start.
func (db *DB) Stop(ctx context.Context) error {
	db.stopOnce.Do(func() {
		var jobsErr error
		if q := db.jobs.Load(); q != nil {
			jobsErr = q.Stop(ctx)
		}
		db.stopErr = errors.Join(jobsErr, db.maintenance.Stop(ctx), db.audit.Stop(ctx), db.posts.Stop(ctx))
		db.closed = make(chan struct{})
		go func() {
			defer close(db.closed)
			db.pool.Close()
		}()
	})
	select {
	case <-db.closed:
	case <-ctx.Done():
		return fmt.Errorf("postgres: stop: %w", ctx.Err())
	}
	if db.stopErr != nil {
		return fmt.Errorf("postgres: stop: %w", db.stopErr)
	}
	return nil
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

// Name names the DB in readiness checks: "postgres".
func (db *DB) Name() string { return "postgres" }
