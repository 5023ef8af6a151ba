package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adshare/adshare/store/postgres"
)

// checkTimeoutDefault bounds each connection `server check` makes.
const checkTimeoutDefault = 5 * time.Second

// checkState is the verdict of one check; only checkFail fails the run.
type checkState string

const (
	checkOK   checkState = "ok"
	checkWarn checkState = "WARN"
	checkFail checkState = "FAIL"
	checkSkip checkState = "skip"
)

// checkLine is one line of check's report: what was checked, the verdict,
// and what was found or what to fix.
type checkLine struct {
	name   string
	state  checkState
	detail string
}

// fleetKeys are the keys every instance of a fleet must share, with what
// goes wrong when each instance makes its own.
var fleetKeys = []struct{ env, without string }{
	{"ADSHARE_JWT_SEED", "each instance signs access tokens with a random key of its own, so the others reject them and every restart signs everyone out"},
	{"ADSHARE_REFRESH_KEY", "each instance keys refresh tokens at random, so instances disagree on a token's successor and a restart ends every session"},
	{"ADSHARE_TRACKING_KEYS", "each instance seals tracking tokens with a random key, so impressions and clicks on another instance, or after a restart, are refused"},
	{"ADSHARE_VIEWER_KEY_SECRET", "viewers' pseudonymous keys differ per instance and change with every start, so frequency caps and invalid-traffic rules see new viewers"},
}

// runCheck validates what a rollout needs before it starts: that the
// configuration (the same flags and environment as serving) parses and
// assembles, that PostgreSQL and Redis answer when configured, that the
// keys a fleet shares are set, and that no migration is pending. It
// prints one line per check and returns an error naming every failed
// one, so that the exit status is non-zero.
func runCheck(ctx context.Context, name string, args []string, getenv func(string) string, stdout io.Writer) error {
	var (
		allowPending bool
		timeout      time.Duration
	)
	cfg, rest, err := parseConfig(name, args, getenv, stdout, func(fs *flag.FlagSet) {
		fs.BoolVar(&allowPending, "allow-pending", false, "pending migrations are not a failure (the rollout migrates: a Job or -migrate-on-start)")
		fs.DurationVar(&timeout, "timeout", checkTimeoutDefault, "how long each connection may take")
	})
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	r := &checkReport{w: stdout}
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected argument %q", rest[0])
	}
	if err == nil && timeout <= 0 {
		err = errors.New("-timeout must be positive")
	}
	if err == nil {
		err = dryAssemble(ctx, cfg, timeout)
	}
	if err != nil {
		r.add("config", checkFail, err.Error())
		return r.result()
	}
	r.add("config", checkOK, "flags and environment parse, and the server assembles on them")

	fleet := cfg.databaseURL != ""
	for _, k := range checkKeys(cfg, fleet) {
		r.add(k.name, k.state, k.detail)
	}

	db := r.checkPostgres(ctx, cfg, timeout)
	if db != nil {
		defer func() { _ = db.Stop(context.WithoutCancel(ctx)) }()
	}
	r.checkRedis(ctx, cfg, fleet, timeout)
	r.checkMigrations(ctx, cfg, db, allowPending, timeout)
	return r.result()
}

// checkReport prints the lines as they are decided and remembers the
// failed ones.
type checkReport struct {
	w        io.Writer
	failed   []string
	warnings int
}

func (r *checkReport) add(name string, state checkState, detail string) {
	fmt.Fprintf(r.w, "%-4s  %-26s %s\n", state, name, detail)
	switch state {
	case checkFail:
		r.failed = append(r.failed, name)
	case checkWarn:
		r.warnings++
	}
}

// result is nil when nothing failed, else an error naming what did.
func (r *checkReport) result() error {
	if len(r.failed) > 0 {
		return fmt.Errorf("check failed: %s", strings.Join(r.failed, ", "))
	}
	fmt.Fprintf(r.w, "check passed (%d warning(s))\n", r.warnings)
	return nil
}

// dryAssemble builds the App as serving would, on the in-memory store and
// in-process equivalents (their connections are checked apart), so that
// what only the assembly refuses (a wildcard CORS origin, a publishable
// Stripe key, an unreachable OIDC issuer) fails here too. Nothing is
// started.
func dryAssemble(ctx context.Context, cfg config, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dry := cfg
	dry.databaseURL, dry.redisURL, dry.redisCluster = "", "", nil
	app, cleanup, err := assemble(ctx, dry, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		return err
	}
	defer cleanup()
	return app.Stop(context.WithoutCancel(ctx))
}

// checkKeys reports each key a fleet must share: set, or missing (a
// failure in a fleet, a warning for one instance on the memory store),
// and a secret given for two purposes.
func checkKeys(cfg config, fleet bool) []checkLine {
	set := map[string][][]byte{
		"ADSHARE_JWT_SEED":          {cfg.jwtSeed},
		"ADSHARE_REFRESH_KEY":       {cfg.refreshKey},
		"ADSHARE_TRACKING_KEYS":     cfg.trackingKeys,
		"ADSHARE_VIEWER_KEY_SECRET": {cfg.viewerSecret},
	}
	var lines []checkLine
	seen := map[string]string{} // a secret's bytes → the variable that first gave it
	var reused []string
	for _, k := range fleetKeys {
		keys := set[k.env]
		if len(keys) == 0 || keys[0] == nil {
			line := checkLine{name: k.env, state: checkWarn,
				detail: "not set: a random key per start, acceptable for one instance on the memory store only"}
			if fleet {
				line.state = checkFail
				line.detail = "not set, and DATABASE_URL makes this a fleet: " + k.without + "; " + setKeyHint
			}
			lines = append(lines, line)
			continue
		}
		detail := "set"
		if len(keys) > 1 {
			detail = fmt.Sprintf("set (%d keys, the first seals)", len(keys))
		}
		lines = append(lines, checkLine{name: k.env, state: checkOK, detail: detail})
		for _, key := range keys {
			if first, ok := seen[string(key)]; ok && first != k.env {
				reused = append(reused, first+" and "+k.env)
			} else if !ok {
				seen[string(key)] = k.env
			}
		}
	}
	if len(reused) > 0 {
		lines = append(lines, checkLine{name: "key reuse", state: checkWarn,
			detail: "the same secret is given as " + strings.Join(reused, ", ") + ": give each purpose its own key"})
	}
	return lines
}

// setKeyHint says how to make a key, the same on every instance.
const setKeyHint = "set it to base64 of 32 random bytes (openssl rand -base64 32), the same on every instance, from a secret store"

// checkPostgres connects to PostgreSQL when configured and returns the
// open DB, or nil.
func (r *checkReport) checkPostgres(ctx context.Context, cfg config, timeout time.Duration) *postgres.DB {
	if cfg.databaseURL == "" {
		r.add("postgres", checkSkip, "DATABASE_URL is not set: the in-memory store (nothing survives a restart)")
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	db, err := postgres.Open(ctx, cfg.databaseURL, &postgres.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		r.add("postgres", checkFail, fmt.Sprintf("cannot connect: %v; check DATABASE_URL, the network path and the server (timeout %s)", err, timeout))
		return nil
	}
	var version, schema string
	if err := db.Pool().QueryRow(ctx, `SELECT current_setting('server_version'), current_schema()`).Scan(&version, &schema); err != nil {
		r.add("postgres", checkFail, fmt.Sprintf("connected, but a query failed: %v", err))
		_ = db.Stop(context.WithoutCancel(ctx))
		return nil
	}
	r.add("postgres", checkOK, fmt.Sprintf("PostgreSQL %s, schema %s", version, schema))
	return db
}

// checkRedis pings Redis when configured.
func (r *checkReport) checkRedis(ctx context.Context, cfg config, fleet bool, timeout time.Duration) {
	if !cfg.redisConfigured() {
		if fleet {
			r.add("redis", checkWarn, "REDIS_URL is not set: fine for one instance; with several, logouts, sign-in limits and cache invalidations stay on the instance that saw them")
			return
		}
		r.add("redis", checkSkip, "REDIS_URL is not set: in-process equivalents")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rc, err := openRedis(ctx, cfg, timeout)
	if err != nil {
		what := "REDIS_URL, the network path and the server"
		if len(cfg.redisCluster) > 0 {
			what = "REDIS_CLUSTER_ADDRS, the network path and every master of the cluster"
		}
		r.add("redis", checkFail, fmt.Sprintf("cannot connect: %v; check %s (timeout %s)", err, what, timeout))
		return
	}
	_ = rc.Stop(context.WithoutCancel(ctx))
	if len(cfg.redisCluster) > 0 {
		r.add("redis", checkOK, "every master of the cluster answers (keys under "+strconv.Quote(cfg.redisPrefix)+")")
		return
	}
	r.add("redis", checkOK, "answers (keys under "+strconv.Quote(cfg.redisPrefix)+")")
}

// checkMigrations fails while a migration is pending (unless allowed),
// and warns when the database is ahead of this build.
func (r *checkReport) checkMigrations(ctx context.Context, cfg config, db *postgres.DB, allowPending bool, timeout time.Duration) {
	switch {
	case cfg.databaseURL == "":
		r.add("migrations", checkSkip, "no database")
		return
	case db == nil:
		r.add("migrations", checkSkip, "not checked: PostgreSQL did not answer")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	statuses, err := db.MigrationStatuses(ctx)
	if err != nil {
		r.add("migrations", checkFail, err.Error())
		return
	}
	var pending []string
	var known int64
	for _, s := range statuses {
		known = max(known, s.Version)
		if !s.Applied {
			pending = append(pending, strconv.FormatInt(s.Version, 10))
		}
	}
	switch {
	case len(pending) > 0 && allowPending:
		r.add("migrations", checkWarn, fmt.Sprintf("%d pending (%s), allowed by -allow-pending: the rollout must migrate before this build serves", len(pending), strings.Join(pending, ", ")))
	case len(pending) > 0:
		r.add("migrations", checkFail, fmt.Sprintf("%d pending (%s): run `server migrate up` (the migration Job) first, or pass -allow-pending when the rollout migrates", len(pending), strings.Join(pending, ", ")))
	default:
		if newest := newestApplied(ctx, db); newest > known {
			r.add("migrations", checkWarn, fmt.Sprintf("the database has migration %d, newer than this build knows (%d): serve this build only if that migration was an expand step it tolerates", newest, known))
			return
		}
		r.add("migrations", checkOK, fmt.Sprintf("all %d applied", len(statuses)))
	}
}

// newestApplied is the highest version recorded in the migration table
// (which may be newer than this build's migrations), or 0.
func newestApplied(ctx context.Context, db *postgres.DB) int64 {
	var v int64
	err := db.Pool().QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM `+postgres.MigrationTable+` WHERE is_applied`).Scan(&v)
	if err != nil {
		return 0
	}
	return v
}

// runProbe GETs one URL and succeeds on a 2xx answer: the container
// healthcheck of an image without a shell or curl (distroless), as in
// `server probe http://127.0.0.1:8080/readyz`.
func runProbe(ctx context.Context, name string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	timeout := fs.Duration("timeout", 3*time.Second, "how long the answer may take")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: probe [-timeout 3s] <url>")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fs.Arg(0), nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("probe: %s answered %d: %s", fs.Arg(0), resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}
