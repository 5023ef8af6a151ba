package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/privacy"
)

// newPrivacyService builds exports and erasures over the bundle's store,
// on an in-process job queue started for the test, with billing's clock.
func newPrivacyService(t *testing.T, b *authBundle, cfg *Config, bb *billingBundle) *privacy.Service {
	t.Helper()
	ps, ok := b.users.(privacy.Store)
	require.True(t, ok, "the bundle's store keeps no exports")
	local, err := jobs.NewLocal(&jobs.LocalConfig{})
	require.NoError(t, err)
	q := heldQueue{Queue: local, hold: &bb.privacyHold}
	users := b.users
	svc, err := privacy.NewService(privacy.Config{
		Store: ps, Jobs: q, Accounts: cfg.Auth, Audit: b.users.(auth.AuditLog), LinkKey: bytes.Repeat([]byte{7}, 32),
		Payouts: bb.billing, Now: bb.bclock.Now,
		Sections: []privacy.Section{{Name: "profile", Collect: func(ctx context.Context, u uuid.UUID) (any, error) {
			return users.UserByID(ctx, u)
		}}},
		Steps: []privacy.Step{{Name: "processor", Run: func(ctx context.Context, u uuid.UUID) error {
			return bb.billing.ClosePayee(ctx, u)
		}}},
	})
	require.NoError(t, err)
	require.NoError(t, q.Start(context.Background()))
	t.Cleanup(func() { _ = q.Stop(context.Background()) })
	return svc
}

// holdPrivacyJobs holds every export and erasure job at its hold (see
// billingBundle.privacyHold) until the release it returns is called, or
// t ends: a failed assertion while holding must not leave the queue's
// stop waiting on a held job.
func (bb *billingBundle) holdPrivacyJobs(t *testing.T) (release func()) {
	t.Helper()
	bb.privacyHold.Lock()
	release = sync.OnceFunc(bb.privacyHold.Unlock)
	t.Cleanup(release)
	return release
}

// heldQueue runs each job only while hold can be read-locked: a test
// write-locks it to keep jobs from starting (their first step, the
// erasure's end of sessions among them).
type heldQueue struct {
	jobs.Queue
	hold *sync.RWMutex
}

func (q heldQueue) Register(kind string, h jobs.Handler, opts *jobs.KindOpts) error {
	return q.Queue.Register(kind, func(ctx context.Context, args json.RawMessage) error {
		q.hold.RLock()
		defer q.hold.RUnlock()
		return h(ctx, args)
	}, opts)
}
