package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/store/postgres"
)

// runKeys manages the data keys that seal values in PostgreSQL:
//
//	keys status [-retire id,…]   how many stored values each key id seals, and
//	                             how many personal values are still in the
//	                             clear; fails when a key to retire is still
//	                             used, or a stored key is not configured
//	keys rotate [-batch n]       re-encrypt every value under the first key
//	                             (and seal what is in the clear), then status
//
// Rotation: put the new key first in ADSHARE_DATA_KEYS on every instance
// (keeping the old ones), run `keys rotate` (or let the servers' daily job
// do it), and remove an old key only once `keys status -retire <id>`
// passes. rotate resumes where an interrupted run stopped.
func runKeys(ctx context.Context, name string, args []string, getenv func(string) string, stdout io.Writer) error {
	var (
		retire string
		batch  int
		action string
	)
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") { // the action first, its flags after
		action, args = args[0], args[1:]
	}
	cfg, rest, err := parseConfig(name, args, getenv, stdout, func(fs *flag.FlagSet) {
		fs.StringVar(&retire, "retire", "", "comma-separated key ids to retire: status fails while any stored value uses one")
		fs.IntVar(&batch, "batch", postgres.DefaultResealBatch, "rows re-encrypted per transaction (rotate)")
	})
	if err != nil {
		return err
	}
	if cfg.databaseURL == "" {
		return errors.New("keys needs a database: set DATABASE_URL or -database-url")
	}
	if action == "" && len(rest) > 0 {
		action, rest = rest[0], rest[1:]
	}
	if len(rest) != 0 || (action != "status" && action != "rotate") {
		return errors.New("usage: keys status [-retire id,…] | keys rotate [-batch n]")
	}
	if batch <= 0 {
		return errors.New("-batch must be positive")
	}
	logger := newLogger(stdout, cfg.logFormat, cfg.logLevel)
	pc, err := postgresConfig(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if pc.Keyring == nil {
		return errors.New("keys needs the data keys: set ADSHARE_DATA_KEYS and ADSHARE_DATA_INDEX_KEY")
	}
	db, err := postgres.Open(ctx, cfg.databaseURL, pc)
	if err != nil {
		return err
	}
	defer func() { _ = db.Stop(context.WithoutCancel(ctx)) }()
	if action == "rotate" {
		res, err := db.Reseal(ctx, &postgres.ResealOptions{BatchSize: batch})
		if err != nil {
			return fmt.Errorf("rotate (run it again to resume): %w", err)
		}
		fmt.Fprintf(stdout, "re-encrypted %d row(s) under key %s\n", res.Resealed, pc.Keyring.SealingKeyID())
	}
	usage, err := db.KeyUsage(ctx)
	if err != nil {
		return err
	}
	return keyStatus(stdout, pc.Keyring, usage, splitList(retire))
}

// keyStatus prints one line per key, configured or found in the database,
// and returns an error when a key to retire is still used or is the
// sealing key, or when stored values use a key that is not configured.
func keyStatus(w io.Writer, ring *keyring.Ring, usage map[string]int64, retire []string) error {
	configured := ring.KeyIDs()
	ids := slices.Clone(configured)
	for _, id := range slices.Sorted(maps.Keys(usage)) {
		if id != postgres.ClearKeyID && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	var problems []string
	for i, id := range ids {
		n := usage[id]
		var role string
		switch {
		case i == 0:
			role = "seals new values"
		case slices.Contains(configured, id) && n == 0:
			role = "opens; unused: may retire"
		case slices.Contains(configured, id):
			role = "opens; still used: run keys rotate"
		default:
			role = "NOT CONFIGURED: these values cannot be opened"
			problems = append(problems, fmt.Sprintf("key %s seals %d value(s) but is not configured", id, n))
		}
		fmt.Fprintf(w, "key %-16s  %10d value(s)  %s\n", id, n, role)
	}
	if n := usage[postgres.ClearKeyID]; n > 0 {
		fmt.Fprintf(w, "%-20s  %10d value(s)  personal data not yet sealed: run keys rotate\n", postgres.ClearKeyID, n)
	}
	for _, id := range retire {
		switch {
		case id == ring.SealingKeyID():
			problems = append(problems, fmt.Sprintf("key %s seals new values: put another key first before retiring it", id))
		case usage[id] > 0:
			problems = append(problems, fmt.Sprintf("key %s still seals %d value(s): run keys rotate first", id, usage[id]))
		default:
			fmt.Fprintf(w, "key %s is used by no stored value: it may leave ADSHARE_DATA_KEYS\n", id)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// postgresConfig is the store's configuration from the server's: the
// logger, the event retention and, when data keys are configured, the
// keyring that seals personal data, connected accounts and payouts.
func postgresConfig(ctx context.Context, cfg config, logger *slog.Logger) (*postgres.Config, error) {
	pc := &postgres.Config{Logger: logger, EventRetention: cfg.eventRetention, RequireVerifiedTLS: cfg.databaseRequireTLS}
	if len(cfg.dataKeys.Data) > 0 {
		ring, err := keyring.New(ctx, cfg.dataKeys)
		if err != nil {
			return nil, fmt.Errorf("data-keys: %w", err)
		}
		pc.Keyring = ring
	}
	return pc, nil
}
