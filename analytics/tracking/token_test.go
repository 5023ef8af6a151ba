package tracking_test

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics/tracking"
)

func key(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

func sample(now time.Time) tracking.Payload {
	return tracking.Payload{
		ID: uuid.Must(uuid.NewV7()),
		Ad: tracking.Ad{Owner: uuid.New(), Placement: "main", Source: "kevel", AdID: "123",
			AdvertiserID: "77", PriceModel: "cpm", PriceMicros: 2_500_000, Billable: true, IssuedAt: now},
		Upstream:  tracking.Upstream{ImpressionURL: "https://e-23.adzerk.net/i.gif?e=abc&s=def"},
		ExpiresAt: now.Add(time.Hour),
	}
}

func TestSealOpenRoundTripAndSecrecy(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s, err := tracking.NewSealer([][]byte{key(t)}, func() time.Time { return now })
	require.NoError(t, err)
	in := sample(now)
	tok, err := s.Seal(in)
	require.NoError(t, err)
	out, err := s.Open(tok)
	require.NoError(t, err)
	require.Equal(t, in, out)

	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	require.NotContains(t, string(raw), "adzerk", "the ad server's pixel URL is not readable by the client")
	tok2, err := s.Seal(in)
	require.NoError(t, err)
	require.NotEqual(t, tok, tok2, "random nonces")
}

func TestOpenRefusesForgeriesAndExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s, err := tracking.NewSealer([][]byte{key(t)}, func() time.Time { return now })
	require.NoError(t, err)
	other, err := tracking.NewSealer([][]byte{key(t)}, func() time.Time { return now })
	require.NoError(t, err)
	tok, err := s.Seal(sample(now))
	require.NoError(t, err)
	forged, err := other.Seal(sample(now))
	require.NoError(t, err)
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-5] ^= 1

	for _, bad := range []string{"", "x", tok[:20], tok + "A", strings.Repeat("A", tracking.MaxTokenLen+1),
		base64.RawURLEncoding.EncodeToString(flipped), forged, "!!!not base64!!!"} {
		_, err := s.Open(bad)
		require.ErrorIs(t, err, tracking.ErrInvalidToken, "%.40q", bad)
	}

	expired := sample(now)
	expired.ExpiresAt = now
	etok, err := s.Seal(expired)
	require.NoError(t, err)
	got, err := s.Open(etok)
	require.ErrorIs(t, err, tracking.ErrExpiredToken)
	require.Equal(t, expired.ID, got.ID, "an expired token still says what it was")
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	now := time.Now()
	oldKey, newKey := key(t), key(t)
	before, err := tracking.NewSealer([][]byte{oldKey}, nil)
	require.NoError(t, err)
	tok, err := before.Seal(sample(now))
	require.NoError(t, err)

	after, err := tracking.NewSealer([][]byte{newKey, oldKey}, nil)
	require.NoError(t, err)
	_, err = after.Open(tok)
	require.NoError(t, err, "tokens sealed with the old key open during rotation")
	fresh, err := after.Seal(sample(now))
	require.NoError(t, err)
	_, err = before.Open(fresh)
	require.ErrorIs(t, err, tracking.ErrInvalidToken, "new tokens use the new key")

	retired, err := tracking.NewSealer([][]byte{newKey}, nil)
	require.NoError(t, err)
	_, err = retired.Open(tok)
	require.ErrorIs(t, err, tracking.ErrInvalidToken)

	_, err = tracking.NewSealer(nil, nil)
	require.Error(t, err)
	_, err = tracking.NewSealer([][]byte{[]byte("short")}, nil)
	require.Error(t, err)
}

func BenchmarkSeal(b *testing.B) {
	k := make([]byte, 32)
	s, _ := tracking.NewSealer([][]byte{k}, nil)
	tr := sample(time.Now())
	for b.Loop() {
		_, _ = s.Seal(tr)
	}
}

func BenchmarkOpen(b *testing.B) {
	k := make([]byte, 32)
	s, _ := tracking.NewSealer([][]byte{k}, nil)
	tok, _ := s.Seal(sample(time.Now()))
	for b.Loop() {
		if _, err := s.Open(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSealCostsOneAllocationItsToken(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Microsecond) // as tokens carry it
	s, err := tracking.NewSealer([][]byte{key(t)}, nil)
	require.NoError(t, err)
	in := sample(now)
	if !raceEnabled { // the race detector changes what escapes
		require.LessOrEqual(t, testing.AllocsPerRun(200, func() { _, _ = s.Seal(in) }), 1.0)
	}

	long := sample(now) // a payload past the pooled buffers' first size still seals, and opens
	long.LandingURL = "https://shop.example.com/" + strings.Repeat("a", 2500)
	tok, err := s.Seal(long)
	require.NoError(t, err)
	out, err := s.Open(tok)
	require.NoError(t, err)
	require.Equal(t, long.LandingURL, out.LandingURL)
	tok2, err := s.Seal(in)
	require.NoError(t, err)
	out, err = s.Open(tok2)
	require.NoError(t, err)
	require.Equal(t, in, out, "a buffer a long payload grew leaves no trace in the next token")
}
