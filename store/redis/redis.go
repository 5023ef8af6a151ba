package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultPrefix namespaces every key when Config.Prefix is empty.
const DefaultPrefix = "adshare:"

// RequestCallTimeout bounds each Redis call a request waits on (a sign-in
// attempt's limit, a revocation check while the local copy is not
// current): a Redis that holds its connections without answering fails
// those calls, closed, in this time instead of the socket timeouts'
// several seconds (times the retries). A healthy call takes well under a
// millisecond; the margin is for a loaded host.
const RequestCallTimeout = 1500 * time.Millisecond

// DefaultDialTimeout bounds establishing one connection.
const DefaultDialTimeout = 5 * time.Second

// Config configures Open. The zero value (or nil) means every default.
type Config struct {
	// Prefix is put in front of every key. Defaults to DefaultPrefix.
	Prefix string
	// DialTimeout bounds establishing one connection (unless the URL sets
	// dial_timeout). Defaults to DefaultDialTimeout.
	DialTimeout time.Duration
	// Username and Password authenticate OpenCluster's connections to
	// every node (ACL user, or Password alone for requirepass). Open takes
	// them from the URL instead. Empty: no authentication.
	Username, Password string
	// TLS, when set, is the TLS configuration of a rediss:// URL: set
	// RootCAs to verify a server whose certificate a private CA signed
	// (ServerName defaults to the URL's host, so the name is verified
	// too). Open refuses a plain redis:// URL when TLS is set, and never
	// accepts InsecureSkipVerify. Nil: rediss:// verifies against the
	// system's roots.
	TLS *tls.Config
}

// Client is adshare's handle on Redis.
type Client struct {
	rdb     goredis.UniversalClient
	prefix  string
	owned   bool
	stop    sync.Once
	stopErr error
}

// Open connects to the Redis at url (redis://, rediss:// or unix://) and
// checks that it answers. Stop releases it.
func Open(ctx context.Context, url string, cfg *Config) (*Client, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		// The parse error may quote the URL, password included: do not wrap it.
		return nil, errors.New("redis: cannot parse the Redis URL; expected redis://[:password@]host:port/db")
	}
	if cfg != nil && cfg.TLS != nil {
		switch {
		case opts.TLSConfig == nil:
			return nil, errors.New("redis: Config.TLS is set but the URL is not rediss://: refusing to talk to Redis in the clear")
		case cfg.TLS.InsecureSkipVerify:
			return nil, errors.New("redis: Config.TLS must verify the server (InsecureSkipVerify is refused)")
		}
		t := cfg.TLS.Clone()
		if t.ServerName == "" {
			t.ServerName = opts.TLSConfig.ServerName
		}
		t.MinVersion = max(t.MinVersion, tls.VersionTLS12)
		opts.TLSConfig = t
	}
	if cfg != nil && cfg.DialTimeout > 0 {
		opts.DialTimeout = cfg.DialTimeout
	} else if opts.DialTimeout == 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	// Callers bound their calls with contexts (a request's deadline, a
	// limiter's borrowing timeout): a Redis that stops answering must not
	// hold them for the socket timeouts.
	opts.ContextTimeoutEnabled = true
	c := New(goredis.NewClient(opts), cfg)
	c.owned = true
	if err := c.Ping(ctx); err != nil {
		_ = c.rdb.Close()
		return nil, err
	}
	return c, nil
}

// OpenCluster connects to the Redis Cluster whose nodes (host:port) include
// addrs (any of them will do: the rest are discovered) and checks that every
// master answers. Stop releases it.
//
// Everything the Client makes works on a cluster: each script and each
// multi-key command keeps its keys in one hash slot (a hash tag {...} where
// a script touches several keys), pipelines are split per node by go-redis,
// SCANs visit every master, and pub/sub uses PUBLISH, which a cluster
// forwards to every node. Keep Config.Prefix free of braces so that the
// keys spread over the slots.
func OpenCluster(ctx context.Context, addrs []string, cfg *Config) (*Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("redis: OpenCluster needs the address (host:port) of at least one cluster node")
	}
	// As Open: calls are bounded by their contexts.
	opts := &goredis.ClusterOptions{Addrs: addrs, DialTimeout: DefaultDialTimeout, ContextTimeoutEnabled: true}
	if cfg != nil {
		if cfg.DialTimeout > 0 {
			opts.DialTimeout = cfg.DialTimeout
		}
		opts.Username, opts.Password = cfg.Username, cfg.Password
	}
	c := New(goredis.NewClusterClient(opts), cfg)
	c.owned = true
	if err := c.Ping(ctx); err != nil {
		_ = c.rdb.Close()
		return nil, err
	}
	return c, nil
}

// New wraps a client the host already has. Stop will not close it.
func New(rdb goredis.UniversalClient, cfg *Config) *Client {
	prefix := DefaultPrefix
	if cfg != nil && cfg.Prefix != "" {
		prefix = cfg.Prefix
	}
	return &Client{rdb: rdb, prefix: prefix}
}

// Redis returns the underlying go-redis client.
func (c *Client) Redis() goredis.UniversalClient { return c.rdb }

// Prefix returns the key prefix.
func (c *Client) Prefix() string { return c.prefix }

// Ping checks that Redis answers, for readiness probes: on a Redis Cluster,
// every master (a master that does not answer holds slots no key of which
// can be read or written).
func (c *Client) Ping(ctx context.Context) error {
	if cc, ok := c.rdb.(*goredis.ClusterClient); ok {
		var masters atomic.Int32
		err := cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error {
			if err := n.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("%s: %w", n.Options().Addr, err)
			}
			masters.Add(1)
			return nil
		})
		if err == nil && masters.Load() == 0 {
			// No slot is served: a node outside a cluster, or one
			// whose slots were never assigned.
			err = errors.New("no master serves any slot")
		}
		if err != nil {
			return fmt.Errorf("redis: ping cluster: %w", err)
		}
		return nil
	}
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// Stop closes the connections when Open made them (a client the host
// passed to New stays the host's). Stop the components made from the
// Client first. It is idempotent.
func (c *Client) Stop(context.Context) error {
	if !c.owned {
		return nil
	}
	c.stop.Do(func() { c.stopErr = c.rdb.Close() })
	return c.stopErr
}
