package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultPrefix namespaces every key when Config.Prefix is empty.
const DefaultPrefix = "adshare:"

// DefaultDialTimeout bounds establishing one connection.
const DefaultDialTimeout = 5 * time.Second

// Config configures Open. The zero value (or nil) means every default.
type Config struct {
	// Prefix is put in front of every key. Defaults to DefaultPrefix.
	Prefix string
	// DialTimeout bounds establishing one connection (unless the URL sets
	// dial_timeout). Defaults to DefaultDialTimeout.
	DialTimeout time.Duration
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
	c := New(goredis.NewClient(opts), cfg)
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

// Ping checks that Redis answers, for readiness probes.
func (c *Client) Ping(ctx context.Context) error {
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
