package transport

import (
	"bytes"
	"context"
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
	q, err := jobs.NewLocal(&jobs.LocalConfig{})
	require.NoError(t, err)
	users := b.users
	svc, err := privacy.NewService(privacy.Config{
		Store: ps, Jobs: q, Accounts: cfg.Auth, Audit: b.users.(auth.AuditLog), LinkKey: bytes.Repeat([]byte{7}, 32),
		Payouts: bb.billing, Now: bb.bclock.Now,
		Sections: []privacy.Section{{Name: "profile", Collect: func(ctx context.Context, u uuid.UUID) (any, error) {
			bb.privacyHold.RLock()
			defer bb.privacyHold.RUnlock()
			return users.UserByID(ctx, u)
		}}},
		Steps: []privacy.Step{{Name: "processor", Run: func(ctx context.Context, u uuid.UUID) error {
			bb.privacyHold.RLock()
			defer bb.privacyHold.RUnlock()
			return bb.billing.ClosePayee(ctx, u)
		}}},
	})
	require.NoError(t, err)
	require.NoError(t, q.Start(context.Background()))
	t.Cleanup(func() { _ = q.Stop(context.Background()) })
	return svc
}
