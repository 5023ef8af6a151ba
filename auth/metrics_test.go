package auth_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/testenv"
)

func TestMetricsCountSignInsRefreshesAndRejectedTokens(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	b := setup(t, func(c *auth.Config) { c.Metrics = reg })
	metric := func(name string, labels ...string) float64 {
		t.Helper()
		return testenv.Metric(t, reg, name, labels...)
	}
	ctx := client("203.0.113.40")

	_, first := b.register(t, "metrics@example.com")
	_, _, err := b.svc.Register(ctx, auth.Registration{Email: "metrics@example.com", Password: goodPassword})
	require.Error(t, err)
	require.Equal(t, 1.0, metric("adshare_auth_registrations_total", "result", "ok"))
	require.Equal(t, 1.0, metric("adshare_auth_registrations_total", "result", "email_taken"))

	_, _, err = b.svc.Login(ctx, "metrics@example.com", goodPassword)
	require.NoError(t, err)
	_, _, err = b.svc.Login(ctx, "metrics@example.com", "not the password at all")
	require.ErrorIs(t, err, auth.ErrInvalidCredentials)
	require.Equal(t, 1.0, metric("adshare_auth_logins_total", "result", "ok"))
	require.Equal(t, 1.0, metric("adshare_auth_logins_total", "result", "invalid_credentials"))

	second, err := b.svc.Refresh(ctx, first.RefreshToken)
	require.NoError(t, err)
	_, err = b.svc.Refresh(ctx, "not-a-refresh-token")
	require.ErrorIs(t, err, auth.ErrInvalidGrant)
	require.Equal(t, 1.0, metric("adshare_auth_refreshes_total", "result", "ok"))
	require.Equal(t, 1.0, metric("adshare_auth_refreshes_total", "result", "invalid_grant"))
	require.Zero(t, metric("adshare_auth_refresh_reuse_detections_total"))

	b.clock.Advance(time.Minute) // past the grace window: a replay is reuse
	_, err = b.svc.Refresh(ctx, first.RefreshToken)
	require.ErrorIs(t, err, auth.ErrInvalidGrant)
	require.Equal(t, 1.0, metric("adshare_auth_refresh_reuse_detections_total"))

	_, err = b.svc.Authenticate(ctx, second.AccessToken)
	require.ErrorIs(t, err, auth.ErrTokenRevoked, "reuse ended the session")
	_, err = b.svc.Authenticate(ctx, "garbage")
	require.Error(t, err)
	require.Equal(t, 1.0, metric("adshare_auth_rejected_tokens_total", "reason", "revoked"))
	require.Equal(t, 1.0, metric("adshare_auth_rejected_tokens_total", "reason", "malformed"))

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}
