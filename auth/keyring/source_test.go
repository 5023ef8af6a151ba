package keyring_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth/keyring"
)

func TestStaticKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data, index := keyring.NewKey(), keyring.NewKey()
	want := newRing(t, index, data)

	for _, enc := range []struct {
		description string
		encode      func([]byte) string
	}{
		{"standard, padded", base64.StdEncoding.EncodeToString},
		{"standard, unpadded", base64.RawStdEncoding.EncodeToString},
		{"URL-safe, padded", base64.URLEncoding.EncodeToString},
		{"URL-safe, unpadded", base64.RawURLEncoding.EncodeToString},
		{"with the newline of a file", func(b []byte) string { return " " + base64.StdEncoding.EncodeToString(b) + "\n" }},
	} {
		r, err := keyring.New(ctx, keyring.StaticKeys{Data: []keyring.Secret{keyring.Secret(enc.encode(data))},
			Index: keyring.Secret(enc.encode(index))})
		require.NoError(t, err, enc.description)
		require.Equal(t, want.SealingKeyID(), r.SealingKeyID(), enc.description)
		require.Equal(t, want.IndexString("auth.email", "a@b.c"), r.IndexString("auth.email", "a@b.c"), enc.description)
	}

	// A key with both alphabets' characters in it is not base64 in either.
	const secret = "s3cr3t+/-_keymaterial"
	_, err := keyring.New(ctx, keyring.StaticKeys{Data: []keyring.Secret{b64(data), secret}, Index: b64(index)})
	require.ErrorContains(t, err, "data key 1 is not base64")
	require.NotContains(t, err.Error(), secret, "an error never shows a key")
	_, err = keyring.New(ctx, keyring.StaticKeys{Data: []keyring.Secret{b64(data)}, Index: "%%%"})
	require.ErrorContains(t, err, "the index key is not base64")
	_, err = keyring.New(ctx, keyring.StaticKeys{Data: []keyring.Secret{b64(data[:16])}, Index: b64(index)})
	require.ErrorContains(t, err, "data key 0 is 16 bytes", "sizes are checked once decoded")
}

// b64 is a key as configuration holds it.
func b64(key []byte) keyring.Secret { return keyring.Secret(base64.StdEncoding.EncodeToString(key)) }

// TestKeysNeverShow prints and logs every form a key takes: a host's
// configuration, the keys in memory, the ring itself.
func TestKeysNeverShow(t *testing.T) {
	t.Parallel()
	data, index := keyring.NewKey(), keyring.NewKey()
	static := keyring.StaticKeys{Data: []keyring.Secret{b64(data)}, Index: b64(index)}
	keys := keyring.Keys{Data: [][]byte{data}, Index: index}
	fromStatic, err := keyring.New(context.Background(), static)
	require.NoError(t, err)
	fromKeys := newRing(t, index, data)

	var out strings.Builder
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	for _, v := range []any{static, &static, keys, &keys, fromStatic, fromKeys} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		logger.Info("config", "value", v)
		b, _ := json.Marshal(v)
		out.Write(b)
	}
	for _, key := range [][]byte{data, index} {
		for _, form := range []string{string(key), fmt.Sprint(key), fmt.Sprintf("%x", key), fmt.Sprintf("%q", key),
			base64.StdEncoding.EncodeToString(key), strings.Trim(fmt.Sprintf("%#v", key), "[]byte{}")} {
			require.NotContains(t, out.String(), form)
		}
	}
	require.Contains(t, out.String(), "[redacted]")
}

// fakeKMS wraps keys with AES-GCM under a wrapping key of its own, as a KMS
// does, and counts its calls. down makes every call fail.
type fakeKMS struct {
	aead    cipher.AEAD
	unwraps atomic.Int64
	down    atomic.Bool
}

var errKMSDown = errors.New("kms: service unavailable")

func newFakeKMS(t *testing.T) *fakeKMS {
	t.Helper()
	block, err := aes.NewCipher(keyring.NewKey())
	require.NoError(t, err)
	aead, err := cipher.NewGCMWithRandomNonce(block)
	require.NoError(t, err)
	return &fakeKMS{aead: aead}
}

func (k *fakeKMS) Wrap(_ context.Context, key []byte) ([]byte, error) {
	if k.down.Load() {
		return nil, errKMSDown
	}
	return k.aead.Seal(nil, nil, key, []byte("fake kms")), nil
}

func (k *fakeKMS) Unwrap(_ context.Context, wrapped []byte) ([]byte, error) {
	k.unwraps.Add(1)
	if k.down.Load() {
		return nil, errKMSDown
	}
	return k.aead.Open(nil, nil, wrapped, []byte("fake kms"))
}

var _ keyring.Wrapper = (*fakeKMS)(nil)

func TestEnvelope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kms := newFakeKMS(t)
	wrap := func() []byte {
		w, err := keyring.NewWrappedKey(ctx, kms)
		require.NoError(t, err)
		return w
	}
	oldKey, newKey, index := wrap(), wrap(), wrap()

	r, err := keyring.New(ctx, keyring.Envelope{Wrapper: kms, Data: [][]byte{oldKey}, Index: index})
	require.NoError(t, err)
	require.EqualValues(t, 2, kms.unwraps.Load(), "one unwrap per key")
	sealed := make([][]byte, 50)
	for i := range sealed {
		sealed[i], err = r.SealString(purpose, rowID, "acct_1Planted")
		require.NoError(t, err)
		_, err = r.Open(purpose, rowID, sealed[i])
		require.NoError(t, err)
	}
	require.EqualValues(t, 2, kms.unwraps.Load(), "the KMS is never called per value")

	// The KMS rotates its wrapping key: every key is re-wrapped (other
	// bytes), and nothing sealed changes.
	rewrap := func(w []byte) []byte {
		k, err := kms.Unwrap(ctx, w)
		require.NoError(t, err)
		again, err := kms.Wrap(ctx, k)
		require.NoError(t, err)
		require.NotEqual(t, w, again)
		return again
	}
	rewrapped, err := keyring.New(ctx, keyring.Envelope{Wrapper: kms, Data: [][]byte{rewrap(oldKey)}, Index: rewrap(index)})
	require.NoError(t, err)
	require.Equal(t, r.SealingKeyID(), rewrapped.SealingKeyID())
	require.Equal(t, r.IndexString("auth.email", "a@b.c"), rewrapped.IndexString("auth.email", "a@b.c"))
	_, err = rewrapped.Open(purpose, rowID, sealed[0])
	require.NoError(t, err)

	// A data key rotation, wrapped.
	rotated, err := keyring.New(ctx, keyring.Envelope{Wrapper: kms, Data: [][]byte{newKey, oldKey}, Index: index})
	require.NoError(t, err)
	require.NotEqual(t, r.SealingKeyID(), rotated.SealingKeyID())
	_, err = rotated.Open(purpose, rowID, sealed[0])
	require.NoError(t, err)

	// Failures name the key and wrap the KMS's error.
	_, err = keyring.New(ctx, keyring.Envelope{Wrapper: kms, Data: [][]byte{newKey, oldKey[:len(oldKey)-1]}, Index: index})
	require.ErrorContains(t, err, "unwrap data key 1")
	_, err = keyring.New(ctx, keyring.Envelope{Wrapper: kms, Data: [][]byte{newKey}, Index: index[1:]})
	require.ErrorContains(t, err, "unwrap the index key")
	kms.down.Store(true)
	_, err = keyring.New(ctx, keyring.Envelope{Wrapper: kms, Data: [][]byte{newKey}, Index: index})
	require.ErrorIs(t, err, errKMSDown)
	_, err = keyring.NewWrappedKey(ctx, kms)
	require.ErrorIs(t, err, errKMSDown)
	_, err = keyring.New(ctx, keyring.Envelope{Data: [][]byte{newKey}, Index: index})
	require.ErrorContains(t, err, "needs a Wrapper")
}

// hangingKMS answers only when its context ends.
type hangingKMS struct{}

func (hangingKMS) Wrap(ctx context.Context, _ []byte) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (hangingKMS) Unwrap(ctx context.Context, _ []byte) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

var _ keyring.Wrapper = hangingKMS{}

func TestEnvelopeTimeout(t *testing.T) {
	t.Parallel()
	start := time.Now()
	_, err := keyring.New(context.Background(), keyring.Envelope{Wrapper: hangingKMS{}, Data: [][]byte{{1}}, Index: []byte{2},
		Timeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestNewKeyIsRandom(t *testing.T) {
	t.Parallel()
	a, b := keyring.NewKey(), keyring.NewKey()
	require.Len(t, a, keyring.KeySize)
	require.NotEqual(t, a, b)
	require.NotEqual(t, strings.Repeat("\x00", keyring.KeySize), string(a))
}
