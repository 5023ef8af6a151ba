package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// config is the example server's configuration, from flags and environment.
type config struct {
	addr            string
	databaseURL     string
	redisURL        string
	migrateOnStart  bool
	logFormat       string
	logLevel        slog.Level
	allowedOrigins  []string
	hsts            bool
	shutdownTimeout time.Duration
}

// parseConfig reads flags from args, each defaulting to its environment
// variable and then to the built-in default.
func parseConfig(name string, args []string, getenv func(string) string, out io.Writer) (config, []string, error) {
	var c config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	env := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.addr, "addr", env("ADSHARE_ADDR", "127.0.0.1:8080"), "listen address (ADSHARE_ADDR)")
	fs.StringVar(&c.databaseURL, "database-url", env("DATABASE_URL", ""), "PostgreSQL URL; empty uses the in-memory store (DATABASE_URL)")
	fs.StringVar(&c.redisURL, "redis-url", env("REDIS_URL", ""), "Redis URL; empty uses in-process equivalents (REDIS_URL)")
	migrate, err := strconv.ParseBool(env("ADSHARE_MIGRATE_ON_START", "false"))
	if err != nil {
		return c, nil, errors.New("ADSHARE_MIGRATE_ON_START must be true or false")
	}
	fs.BoolVar(&c.migrateOnStart, "migrate-on-start", migrate, "apply pending PostgreSQL migrations before serving (ADSHARE_MIGRATE_ON_START)")
	fs.StringVar(&c.logFormat, "log-format", env("ADSHARE_LOG_FORMAT", "auto"), "log format: auto (text on a terminal, else json), text or json (ADSHARE_LOG_FORMAT)")
	level := env("ADSHARE_LOG_LEVEL", "info")
	fs.Func("log-level", "log level: debug, info, warn or error (ADSHARE_LOG_LEVEL, default info)", func(s string) error {
		level = s
		return nil
	})
	origins := env("ADSHARE_ALLOWED_ORIGINS", "")
	fs.StringVar(&origins, "allowed-origins", origins, "comma-separated browser origins allowed by CORS (ADSHARE_ALLOWED_ORIGINS)")
	hsts, err := strconv.ParseBool(env("ADSHARE_HSTS", "false"))
	if err != nil {
		return c, nil, errors.New("ADSHARE_HSTS must be true or false")
	}
	fs.BoolVar(&c.hsts, "hsts", hsts, "send Strict-Transport-Security (only behind HTTPS) (ADSHARE_HSTS)")
	timeout, err := time.ParseDuration(env("ADSHARE_SHUTDOWN_TIMEOUT", "15s"))
	if err != nil {
		return c, nil, errors.New("ADSHARE_SHUTDOWN_TIMEOUT must be a duration such as 15s")
	}
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", timeout, "how long requests in flight may take to finish on shutdown (ADSHARE_SHUTDOWN_TIMEOUT)")

	if err := fs.Parse(args); err != nil {
		return c, nil, err
	}
	if err := c.logLevel.UnmarshalText([]byte(level)); err != nil {
		return c, nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	switch c.logFormat {
	case "auto", "text", "json":
	default:
		return c, nil, fmt.Errorf("log format %q: want auto, text or json", c.logFormat)
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.allowedOrigins = append(c.allowedOrigins, o)
		}
	}
	return c, fs.Args(), nil
}
