package keyring_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth/keyring"
)

// FuzzOpen feeds Open anything: it never panics, refuses with one of the
// ring's errors, and opens nothing but the one value the ring sealed (the
// golden one: the seeds must be the same in every fuzzing worker, so none
// is sealed here with a random nonce). Nor does Reseal panic.
func FuzzOpen(f *testing.F) {
	r, err := keyring.New(context.Background(), keyring.Keys{Data: [][]byte{goldenDataKey}, Index: goldenIndexKey})
	require.NoError(f, err)
	golden, err := hex.DecodeString(goldenSealed)
	require.NoError(f, err)
	f.Add(golden)
	f.Add(golden[:len(golden)-1])
	f.Add(golden[:keyring.Overhead])
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(bytes.Repeat([]byte{1}, keyring.Overhead))

	f.Fuzz(func(t *testing.T, sealed []byte) {
		in := bytes.Clone(sealed)
		plain, err := r.OpenString(purpose, rowID, sealed)
		require.Equal(t, in, sealed, "Open does not write to its input")
		if !bytes.Equal(sealed, golden) {
			requireTyped(t, err)
			// Reseal passes a value under the sealing key through unopened.
			if _, changed, err := r.Reseal(purpose, rowID, sealed); err != nil {
				requireTyped(t, err)
			} else {
				require.False(t, changed)
			}
			return
		}
		require.NoError(t, err)
		require.Equal(t, "acct_1GoldenPlanted", plain)
	})
}
