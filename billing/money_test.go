package billing_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/billing"
)

func TestMinorUnits(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		description string
		currency    billing.Currency
		micros      int64
		minor, rest int64
	}{
		{"a dollar and a bit", billing.USD, 1_234_567, 123, 4_567},
		{"under a cent stays", billing.USD, 9_999, 0, 9_999},
		{"negative rounds down", billing.USD, -1, -1, 9_999},
		{"yen have no minor unit", "jpy", 1_500_000, 1, 500_000},
	} {
		minor, rest := tt.currency.ToMinor(tt.micros)
		require.Equal(t, tt.minor, minor, tt.description)
		require.Equal(t, tt.rest, rest, tt.description)
		back, ok := tt.currency.FromMinor(minor)
		require.True(t, ok)
		require.Equal(t, tt.micros, back+rest, "%s: what was converted and what was left add up", tt.description)
	}
	require.False(t, billing.Currency("xxx").Valid())
	require.False(t, billing.Currency("USD").Valid(), "lower case only, as Stripe writes it")
	_, ok := billing.USD.FromMinor(1 << 62)
	require.False(t, ok, "overflow is refused")
	require.Panics(t, func() { billing.Currency("xxx").ToMinor(1) })
}
