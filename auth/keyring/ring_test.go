package keyring_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth/keyring"
)

const (
	purpose = "billing.connected_account"
	rowID   = "0192f5a4-7c1e-7b9a-8c3d-4e5f60718293"
)

// newRing returns a ring over data (the first seals) and index.
func newRing(tb testing.TB, index []byte, data ...[]byte) *keyring.Ring {
	tb.Helper()
	r, err := keyring.New(context.Background(), keyring.Keys{Data: data, Index: index})
	require.NoError(tb, err)
	return r
}

// typedErrors are every error Open may return for a value it refuses.
var typedErrors = []error{keyring.ErrTampered, keyring.ErrUnknownKey, keyring.ErrWrongPurpose}

func requireTyped(tb testing.TB, err error, msgAndArgs ...any) {
	tb.Helper()
	for _, e := range typedErrors {
		if errors.Is(err, e) {
			return
		}
	}
	require.Fail(tb, "not one of the ring's errors", "%v %v", err, msgAndArgs)
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	r := newRing(t, keyring.NewKey(), keyring.NewKey())
	for _, tc := range []struct {
		description string
		plain       []byte
	}{
		{"empty", nil},
		{"a connected account id", []byte("acct_1PlantedConnected9x")},
		{"binary with zeros", []byte{0, 1, 2, 0, 255}},
		{"a payout detail of 4 KiB", bytes.Repeat([]byte("DE89 3704 0044 0532 0130 00;"), 150)},
	} {
		t.Run(tc.description, func(t *testing.T) {
			t.Parallel()
			sealed, err := r.Seal(purpose, rowID, tc.plain)
			require.NoError(t, err)
			require.Len(t, sealed, len(tc.plain)+keyring.Overhead)
			if len(tc.plain) > 0 {
				require.False(t, bytes.Contains(sealed, tc.plain), "no plaintext in the sealed value")
			}
			got, err := r.Open(purpose, rowID, sealed)
			require.NoError(t, err)
			require.Equal(t, string(tc.plain), string(got))

			again, err := r.Seal(purpose, rowID, tc.plain)
			require.NoError(t, err)
			require.NotEqual(t, sealed, again, "every seal has a nonce of its own")
		})
	}

	sealed, err := r.SealString(purpose, rowID, "acct_1Planted")
	require.NoError(t, err)
	s, err := r.OpenString(purpose, rowID, sealed)
	require.NoError(t, err)
	require.Equal(t, "acct_1Planted", s)
}

func TestRotation(t *testing.T) {
	t.Parallel()
	index, oldKey, newKey := keyring.NewKey(), keyring.NewKey(), keyring.NewKey()
	before := newRing(t, index, oldKey)
	during := newRing(t, index, newKey, oldKey)
	after := newRing(t, index, newKey)

	old, err := before.Seal(purpose, rowID, []byte("acct_old"))
	require.NoError(t, err)
	oldID, err := keyring.KeyID(old)
	require.NoError(t, err)
	require.Equal(t, before.SealingKeyID(), oldID)

	// The new key seals, the old one still opens.
	got, err := during.Open(purpose, rowID, old)
	require.NoError(t, err)
	require.Equal(t, "acct_old", string(got))
	fresh, err := during.Seal(purpose, rowID, []byte("acct_new"))
	require.NoError(t, err)
	freshID, err := keyring.KeyID(fresh)
	require.NoError(t, err)
	require.Equal(t, after.SealingKeyID(), freshID)
	require.Equal(t, during.SealingKeyID(), freshID)
	require.NotEqual(t, oldID, freshID)
	require.Equal(t, []string{freshID, oldID}, during.KeyIDs(), "the sealing key first")
	require.Equal(t, []string{oldID, freshID}, newRing(t, index, oldKey, newKey).KeyIDs(),
		"a key's id is the key's, whatever its place")

	// Re-encryption: an old value is sealed again under the new key, a
	// current one is left as it is.
	resealed, changed, err := during.Reseal(purpose, rowID, old)
	require.NoError(t, err)
	require.True(t, changed)
	id, err := keyring.KeyID(resealed)
	require.NoError(t, err)
	require.Equal(t, freshID, id)
	same, changed, err := during.Reseal(purpose, rowID, fresh)
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, fresh, same)
	_, _, err = during.Reseal("billing.payout_details", rowID, old)
	require.ErrorIs(t, err, keyring.ErrWrongPurpose, "Reseal checks the binding as Open does")

	// Once the old key retires, what it sealed no longer opens; what was
	// re-encrypted does.
	_, err = after.Open(purpose, rowID, old)
	require.ErrorIs(t, err, keyring.ErrUnknownKey)
	require.ErrorContains(t, err, oldID, "the error names the missing key")
	got, err = after.Open(purpose, rowID, resealed)
	require.NoError(t, err)
	require.Equal(t, "acct_old", string(got))
}

func TestOpenRefusesWhatItDidNotSealSo(t *testing.T) {
	t.Parallel()
	index := keyring.NewKey()
	r := newRing(t, index, keyring.NewKey())
	sealed, err := r.Seal(purpose, rowID, []byte("acct_1Planted"))
	require.NoError(t, err)
	stranger, err := newRing(t, index, keyring.NewKey()).Seal(purpose, rowID, []byte("acct_1Planted"))
	require.NoError(t, err)

	for _, tc := range []struct {
		description string
		purpose     string
		rowID       string
		sealed      []byte
		expectErr   error
	}{
		{"copied to another column", "billing.payout_details", rowID, sealed, keyring.ErrWrongPurpose},
		{"copied to another row", purpose, "0192f5a4-7c1e-7b9a-8c3d-4e5f60718294", sealed, keyring.ErrTampered},
		{"a row id moved into the purpose", purpose + rowID[:1], rowID[1:], sealed, keyring.ErrWrongPurpose},
		{"sealed by a key the ring lacks", purpose, rowID, stranger, keyring.ErrUnknownKey},
		{"nil", purpose, rowID, nil, keyring.ErrTampered},
		{"shorter than the overhead", purpose, rowID, sealed[:keyring.Overhead-1], keyring.ErrTampered},
		{"one byte short", purpose, rowID, sealed[:len(sealed)-1], keyring.ErrTampered},
		{"one byte more", purpose, rowID, append(bytes.Clone(sealed), 0), keyring.ErrTampered},
		{"a future format", purpose, rowID, append([]byte{2}, sealed[1:]...), keyring.ErrTampered},
	} {
		t.Run(tc.description, func(t *testing.T) {
			t.Parallel()
			_, err := r.Open(tc.purpose, tc.rowID, tc.sealed)
			require.ErrorIs(t, err, tc.expectErr)
		})
	}

	// Any one altered byte fails, with the error its place calls for.
	for i := range sealed {
		altered := bytes.Clone(sealed)
		altered[i] ^= 0x01
		_, err := r.Open(purpose, rowID, altered)
		switch {
		case i == 0:
			require.ErrorIs(t, err, keyring.ErrTampered, "byte %d: the version", i)
		case i <= 8:
			require.ErrorIs(t, err, keyring.ErrUnknownKey, "byte %d: the key id", i)
		case i <= 12:
			require.ErrorIs(t, err, keyring.ErrWrongPurpose, "byte %d: the purpose tag", i)
		default:
			require.ErrorIs(t, err, keyring.ErrTampered, "byte %d: the nonce, ciphertext or tag", i)
		}
	}
	_, err = r.Open(purpose, rowID, sealed)
	require.NoError(t, err, "Open altered nothing in place")
}

func TestSealAndOpenNeedAPurposeAndARow(t *testing.T) {
	t.Parallel()
	r := newRing(t, keyring.NewKey(), keyring.NewKey())
	sealed, err := r.Seal(purpose, rowID, []byte("x"))
	require.NoError(t, err)
	for _, b := range [][2]string{{"", rowID}, {purpose, ""}, {"", ""}} {
		_, err := r.Seal(b[0], b[1], []byte("x"))
		require.ErrorContains(t, err, "needs a purpose", "%q", b)
		_, err = r.Open(b[0], b[1], sealed)
		require.ErrorContains(t, err, "needs a purpose", "%q", b)
		_, _, err = r.Reseal(b[0], b[1], sealed)
		require.ErrorContains(t, err, "needs a purpose", "%q", b)
	}
}

func TestKeyIDRefusesWhatIsNotASealedValue(t *testing.T) {
	t.Parallel()
	r := newRing(t, keyring.NewKey(), keyring.NewKey())
	sealed, err := r.Seal(purpose, rowID, nil)
	require.NoError(t, err)
	for _, bad := range [][]byte{nil, sealed[:keyring.Overhead-1], append([]byte{0}, sealed[1:]...)} {
		_, err := keyring.KeyID(bad)
		require.ErrorIs(t, err, keyring.ErrTampered)
	}
	id, err := keyring.KeyID(sealed)
	require.NoError(t, err)
	require.Len(t, id, 16, "8 bytes in hex")
}

func TestNewRefusesBadKeys(t *testing.T) {
	t.Parallel()
	a, b, index := keyring.NewKey(), keyring.NewKey(), keyring.NewKey()
	down := errors.New("kms: connection refused")
	for _, tc := range []struct {
		description string
		src         keyring.Source
		expectMsg   string
	}{
		{"no source", nil, "needs a Source"},
		{"no data key", keyring.Keys{Index: index}, "no data key"},
		{"a short data key", keyring.Keys{Data: [][]byte{a, b[:31]}, Index: index}, "data key 1 is 31 bytes"},
		{"a long data key", keyring.Keys{Data: [][]byte{append(bytes.Clone(a), 0)}, Index: index}, "data key 0 is 33 bytes"},
		{"no index key", keyring.Keys{Data: [][]byte{a}}, "the index key is 0 bytes"},
		{"the index key is a data key", keyring.Keys{Data: [][]byte{a, index}, Index: index}, "data key 1 is also the index key"},
		{"a key twice", keyring.Keys{Data: [][]byte{a, b, a}, Index: index}, "data key 2 repeats"},
		{"the source fails", sourceFunc(func(context.Context) (keyring.Keys, error) { return keyring.Keys{}, down }), "kms: connection refused"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			t.Parallel()
			r, err := keyring.New(context.Background(), tc.src)
			require.ErrorContains(t, err, tc.expectMsg)
			require.Nil(t, r)
		})
	}
	_, err := keyring.New(context.Background(), sourceFunc(func(context.Context) (keyring.Keys, error) { return keyring.Keys{}, down }))
	require.ErrorIs(t, err, down, "the source's error is wrapped")
}

// sourceFunc is a Source made of a function.
type sourceFunc func(context.Context) (keyring.Keys, error)

func (f sourceFunc) Load(ctx context.Context) (keyring.Keys, error) { return f(ctx) }

var _ keyring.Source = sourceFunc(nil)

// switchable is a Source whose keys a test changes.
type switchable struct {
	mu   sync.Mutex
	keys keyring.Keys
	err  error
}

func (s *switchable) set(k keyring.Keys, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys, s.err = k, err
}

func (s *switchable) Load(context.Context) (keyring.Keys, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys, s.err
}

var _ keyring.Source = (*switchable)(nil)

func TestReload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	index, oldKey, newKey := keyring.NewKey(), keyring.NewKey(), keyring.NewKey()
	src := &switchable{keys: keyring.Keys{Data: [][]byte{oldKey}, Index: index}}
	r, err := keyring.New(ctx, src)
	require.NoError(t, err)
	oldID := r.SealingKeyID()
	old, err := r.Seal(purpose, rowID, []byte("acct_old"))
	require.NoError(t, err)
	idx := r.IndexString("auth.email", "ann@example.com")

	src.set(keyring.Keys{Data: [][]byte{newKey, oldKey}, Index: index}, nil)
	require.NoError(t, r.Reload(ctx))
	require.NotEqual(t, oldID, r.SealingKeyID(), "the new first key seals")
	_, err = r.Open(purpose, rowID, old)
	require.NoError(t, err)
	require.Equal(t, idx, r.IndexString("auth.email", "ann@example.com"))
	newID := r.SealingKeyID()

	for _, tc := range []struct {
		description string
		keys        keyring.Keys
		err         error
		expectMsg   string
	}{
		{"the source fails", keyring.Keys{}, errors.New("kms: throttled"), "kms: throttled"},
		{"the keys are invalid", keyring.Keys{Data: [][]byte{newKey[:16]}, Index: index}, nil, "data key 0 is 16 bytes"},
		{"the index key changed", keyring.Keys{Data: [][]byte{newKey}, Index: keyring.NewKey()}, nil, "the index key changed"},
	} {
		src.set(tc.keys, tc.err)
		require.ErrorContains(t, r.Reload(ctx), tc.expectMsg, tc.description)
		require.Equal(t, newID, r.SealingKeyID(), "%s: the ring keeps its keys", tc.description)
		_, err = r.Open(purpose, rowID, old)
		require.NoError(t, err, tc.description)
	}
}

func TestConcurrentUseWithReload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	index, a, b := keyring.NewKey(), keyring.NewKey(), keyring.NewKey()
	src := &switchable{keys: keyring.Keys{Data: [][]byte{a, b}, Index: index}}
	r, err := keyring.New(ctx, src)
	require.NoError(t, err)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				src.set(keyring.Keys{Data: [][]byte{b, a}, Index: index}, nil)
			} else {
				src.set(keyring.Keys{Data: [][]byte{a, b}, Index: index}, nil)
			}
			if err := r.Reload(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var users sync.WaitGroup
	for g := range 4 {
		users.Go(func() {
			for i := range 200 {
				plain := strings.Repeat("x", g+i)
				sealed, err := r.SealString(purpose, rowID, plain)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := r.OpenString(purpose, rowID, sealed); err != nil || got != plain {
					t.Errorf("open: %q, %v", got, err)
					return
				}
			}
		})
	}
	users.Wait()
	close(stop)
	wg.Wait()
}

// The sealed format and the index are what the database holds: a release
// that changed either would make every stored value unreadable or every
// index miss. These were computed once, by the first version.
var (
	goldenIndexKey = bytes.Repeat([]byte{0x11}, keyring.KeySize)
	goldenDataKey  = bytes.Repeat([]byte{0x22}, keyring.KeySize)
)

const (
	goldenKeyID  = "967be1863db00dbc"
	goldenSealed = "01967be1863db00dbc4cec53a12e86723e6b50f1fc5b9fb02d3064204d673e8e46374507de50deeb22cb7909e6dd5dd2da9c9d9d115a62d6ede6d13f"
	goldenIndex  = "a2b8c9187d04025a444f4653635207267e1669705bff30b65ee3315a463b50bc"
)

// TestGoldenFormat pins what stored values and indexes are. The values
// were also checked against an independent implementation of the format
// in the package doc (Python's cryptography AESGCM and hmac).
func TestGoldenFormat(t *testing.T) {
	t.Parallel()
	r := newRing(t, goldenIndexKey, goldenDataKey)
	require.Equal(t, goldenKeyID, r.SealingKeyID())
	sealed, err := hex.DecodeString(goldenSealed)
	require.NoError(t, err)
	id, err := keyring.KeyID(sealed)
	require.NoError(t, err)
	require.Equal(t, goldenKeyID, id)
	got, err := r.OpenString(purpose, rowID, sealed)
	require.NoError(t, err)
	require.Equal(t, "acct_1GoldenPlanted", got)
	require.Equal(t, goldenIndex, hex.EncodeToString(r.IndexString("auth.email", "ann@example.com")))
}
