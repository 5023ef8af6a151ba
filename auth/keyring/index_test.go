package keyring_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth/keyring"
)

func TestIndex(t *testing.T) {
	t.Parallel()
	index, a, b := keyring.NewKey(), keyring.NewKey(), keyring.NewKey()
	r := newRing(t, index, a)

	email := r.IndexString("auth.email", "ann@example.com")
	require.Len(t, email, keyring.IndexSize)
	require.Equal(t, email, r.Index("auth.email", []byte("ann@example.com")), "deterministic, bytes or string")
	require.Equal(t, email, newRing(t, index, b, a).IndexString("auth.email", "ann@example.com"),
		"the data keys rotate, the index stays")

	for _, tc := range []struct {
		description    string
		purpose, value string
		ring           *keyring.Ring
	}{
		{"another value", "auth.email", "bob@example.com", r},
		{"another purpose", "billing.connected_account", "ann@example.com", r},
		{"the purpose's end moved into the value", "auth.emai", "lann@example.com", r},
		{"the value's start moved into the purpose", "auth.emaila", "nn@example.com", r},
		{"another index key", "auth.email", "ann@example.com", newRing(t, keyring.NewKey(), a)},
		{"the data key as index key", "auth.email", "ann@example.com", newRing(t, a, b)},
	} {
		require.NotEqual(t, email, tc.ring.IndexString(tc.purpose, tc.value), tc.description)
	}
	require.NotContains(t, string(email), "ann", "no plaintext in an index")
}
