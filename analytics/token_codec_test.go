package analytics

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func fullTracking() Tracking {
	issued := time.Date(2026, 11, 27, 12, 0, 0, 123456000, time.UTC)
	return Tracking{
		ID: uuid.Must(uuid.NewV7()), Owner: uuid.New(), Viewer: uuid.New(), ViewerKey: "vk-Ωmega",
		Placement: "main", Source: "local", AdID: "ad-1", CreativeID: "cr-2", CampaignID: "camp-3", AdvertiserID: "adv-4",
		PriceModel: "cpc", PriceMicros: 1_250_000, Billable: true,
		UpstreamImpressionURL: "https://e-23.adzerk.net/i.gif?e=abc", UpstreamClickURL: "https://e-23.adzerk.net/r?e=def",
		LandingURL: "https://example.com/landing?x=1", IssuedAt: issued, ExpiresAt: issued.Add(time.Hour),
	}
}

func TestTrackingCodecRoundTrips(t *testing.T) {
	t.Parallel()
	full := fullTracking()
	minimal := Tracking{ID: uuid.New(), Owner: uuid.New(), IssuedAt: time.UnixMicro(-5).UTC(), ExpiresAt: time.UnixMicro(0).UTC(), PriceMicros: -1}
	for _, in := range []Tracking{full, minimal} {
		out, ok := decodeTracking(encodeTracking(nil, in))
		require.True(t, ok)
		require.Equal(t, in, out)
	}

	nanos := full
	nanos.IssuedAt = nanos.IssuedAt.Add(789 * time.Nanosecond).In(time.FixedZone("X", 3600))
	out, ok := decodeTracking(encodeTracking(nil, nanos))
	require.True(t, ok)
	require.Equal(t, full.IssuedAt, out.IssuedAt, "times are kept to the microsecond, in UTC")
}

func TestTrackingCodecRefusesAnythingElse(t *testing.T) {
	t.Parallel()
	b := encodeTracking(nil, fullTracking())
	for n := range len(b) {
		_, ok := decodeTracking(b[:n])
		require.False(t, ok, "truncated to %d of %d bytes", n, len(b))
	}
	_, ok := decodeTracking(append(append([]byte(nil), b...), 0))
	require.False(t, ok, "a trailing byte")
	unknownFlag := append([]byte(nil), b...)
	unknownFlag[0] |= 0x80
	_, ok = decodeTracking(unknownFlag)
	require.False(t, ok, "an unknown flag")
	// A string length past the end of the payload.
	long := encodeTracking(nil, Tracking{ID: uuid.New(), Owner: uuid.New()})
	long[len(long)-11] = 0x7f // ViewerKey's length
	_, ok = decodeTracking(long)
	require.False(t, ok, "a length past the end")
}

func FuzzDecodeTracking(f *testing.F) {
	f.Add(encodeTracking(nil, fullTracking()))
	f.Add(encodeTracking(nil, Tracking{ID: uuid.New(), Owner: uuid.New()}))
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, ok := decodeTracking(b)
		if !ok {
			return
		}
		again, ok := decodeTracking(encodeTracking(nil, tr))
		require.True(t, ok)
		require.Equal(t, tr, again)
	})
}
