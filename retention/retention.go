// Package retention keeps personal and operational data only as long as it
// is needed: a Policy says how long each data class lives, a durable job
// (internal/jobs: River on PostgreSQL, the in-process runner otherwise)
// asks the store to purge what is older, dropping whole time partitions
// where the data is partitioned (raw events).
//
// The defaults, and the reason for each, are in the README's "Data
// protection" section; DefaultPolicy returns them.
package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/adshare/adshare/internal/jobs"
)

// Class names a kind of data with a retention period of its own.
type Class string

// The data classes.
const (
	// RawEvents are the tracked impressions, clicks and conversions (the
	// hourly rollups that reports read are kept).
	RawEvents Class = "raw_events"
	// Audit is the audit log.
	Audit Class = "audit"
	// Sessions are ended sessions (revoked or expired) and their refresh
	// tokens; live sessions are never purged.
	Sessions Class = "sessions"
	// IPAddresses are client addresses kept with sessions and audit
	// events, and events' client networks: blanked, the rows stay.
	IPAddresses Class = "ip_addresses"
	// Exports are data export bundles (GDPR art. 15/20).
	Exports Class = "exports"
	// WebhookPayloads are the payment processor's webhook events, once
	// processed.
	WebhookPayloads Class = "webhook_payloads"
)

// Classes lists every class, in a stable order.
var Classes = []Class{RawEvents, Audit, Sessions, IPAddresses, Exports, WebhookPayloads}

// The default retention periods (see the README for the reasons).
const (
	DefaultRawEvents       = 400 * 24 * time.Hour
	DefaultAudit           = 400 * 24 * time.Hour
	DefaultSessions        = 30 * 24 * time.Hour
	DefaultIPAddresses     = 30 * 24 * time.Hour
	DefaultExports         = 7 * 24 * time.Hour
	DefaultWebhookPayloads = 30 * 24 * time.Hour
	// DefaultInterval is how often the job runs.
	DefaultInterval = time.Hour
)

// JobKind is the retention job's kind.
const JobKind = "retention_purge"

// Policy is how long each class is kept. A zero field means its default;
// a negative one keeps that class for ever (the job leaves it alone).
type Policy struct {
	RawEvents       time.Duration
	Audit           time.Duration
	Sessions        time.Duration
	IPAddresses     time.Duration
	Exports         time.Duration
	WebhookPayloads time.Duration
}

// DefaultPolicy returns the documented defaults.
func DefaultPolicy() Policy { return Policy{}.WithDefaults() }

// WithDefaults returns p with zero fields set to their defaults.
func (p Policy) WithDefaults() Policy {
	or := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	or(&p.RawEvents, DefaultRawEvents)
	or(&p.Audit, DefaultAudit)
	or(&p.Sessions, DefaultSessions)
	or(&p.IPAddresses, DefaultIPAddresses)
	or(&p.Exports, DefaultExports)
	or(&p.WebhookPayloads, DefaultWebhookPayloads)
	return p
}

// Validate refuses periods too short to be deliberate: raw events must
// outlive the hold window of settlement (at least 7 days) and the audit
// log must be kept at least 30 days.
func (p Policy) Validate() error {
	p = p.WithDefaults()
	var errs []error
	if p.RawEvents > 0 && p.RawEvents < 7*24*time.Hour {
		errs = append(errs, errors.New("retention: RawEvents must be at least 7 days (settlement reads them after the hold window)"))
	}
	if p.Audit > 0 && p.Audit < 30*24*time.Hour {
		errs = append(errs, errors.New("retention: Audit must be at least 30 days"))
	}
	return errors.Join(errs...)
}

// Cutoffs are the moments before which each class goes; a zero time keeps
// the class.
type Cutoffs map[Class]time.Time

// Cutoffs returns what p purges at now.
func (p Policy) Cutoffs(now time.Time) Cutoffs {
	p = p.WithDefaults()
	out := Cutoffs{}
	for c, d := range map[Class]time.Duration{
		RawEvents: p.RawEvents, Audit: p.Audit, Sessions: p.Sessions, IPAddresses: p.IPAddresses,
		Exports: p.Exports, WebhookPayloads: p.WebhookPayloads,
	} {
		if d > 0 {
			out[c] = now.Add(-d).UTC()
		}
	}
	return out
}

// Result counts what one purge removed per class (rows deleted or
// blanked), and the event partitions dropped.
type Result struct {
	Purged     map[Class]int64
	Partitions int
}

// Purger is a store that enforces retention: store/postgres and
// store/memory implement it.
type Purger interface {
	// Purge removes (or for IPAddresses blanks) what is older than each
	// class's cutoff; a class without a cutoff, or one the store does not
	// keep, is left alone. It is idempotent and may stop part way on an
	// error (what it purged stays purged; the next run goes on).
	Purge(ctx context.Context, cutoffs Cutoffs) (Result, error)
}

// RegisterJob registers the retention job on q: each run purges p's store
// under policy at now(). It does not schedule it: call q.Every(JobKind,
// interval, struct{}{}) (adshare.New does, every DefaultInterval unless
// configured).
func RegisterJob(q jobs.Queue, s Purger, policy Policy, now func() time.Time, logger *slog.Logger) error {
	if err := policy.Validate(); err != nil {
		return err
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return q.Register(JobKind, func(ctx context.Context, _ json.RawMessage) error {
		res, err := s.Purge(ctx, policy.Cutoffs(now()))
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		attrs := []any{slog.Int("partitions", res.Partitions)}
		for _, c := range Classes {
			attrs = append(attrs, slog.Int64(string(c), res.Purged[c]))
		}
		logger.InfoContext(ctx, "retention: purged", attrs...)
		return nil
	}, &jobs.KindOpts{Timeout: 30 * time.Minute})
}
