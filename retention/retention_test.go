package retention_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/retention"
)

func TestPolicyCutoffs(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	c := retention.Policy{Audit: -1, Sessions: 48 * time.Hour}.Cutoffs(now)
	_, kept := c[retention.Audit]
	require.False(t, kept, "a negative period keeps the class")
	require.Equal(t, now.Add(-48*time.Hour), c[retention.Sessions])
	require.Equal(t, now.Add(-retention.DefaultRawEvents), c[retention.RawEvents])
	require.Equal(t, now.Add(-retention.DefaultIPAddresses), c[retention.IPAddresses])
	require.Len(t, c, len(retention.Classes)-1)
}

func TestPolicyRefusesTooShortPeriods(t *testing.T) {
	t.Parallel()
	require.NoError(t, retention.DefaultPolicy().Validate())
	require.ErrorContains(t, retention.Policy{RawEvents: 24 * time.Hour}.Validate(), "RawEvents")
	require.ErrorContains(t, retention.Policy{Audit: 24 * time.Hour}.Validate(), "Audit")
	require.NoError(t, retention.Policy{RawEvents: -1, Audit: -1}.Validate())
}
