package tracking

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func fullPayload() Payload {
	issued := time.Date(2026, 11, 27, 12, 0, 0, 123456000, time.UTC)
	return Payload{
		ID: uuid.Must(uuid.NewV7()),
		Ad: Ad{Owner: uuid.New(), Viewer: uuid.New(), ViewerKey: "vk-Ωmega",
			Placement: "main", Source: "local", AdID: "ad-1", CreativeID: "cr-2", CampaignID: "camp-3", AdvertiserID: "adv-4",
			PriceModel: "cpc", PriceMicros: 1_250_000, Billable: true, IssuedAt: issued},
		Upstream:   Upstream{ImpressionURL: "https://e-23.adzerk.net/i.gif?e=abc", ClickURL: "https://e-23.adzerk.net/r?e=def"},
		LandingURL: "https://example.com/landing?x=1", ExpiresAt: issued.Add(time.Hour),
	}
}

func TestPayloadCodecRoundTrips(t *testing.T) {
	t.Parallel()
	full := fullPayload()
	minimal := Payload{ID: uuid.New(), Ad: Ad{Owner: uuid.New(), IssuedAt: time.UnixMicro(-5).UTC(), PriceMicros: -1}, ExpiresAt: time.UnixMicro(0).UTC()}
	for _, in := range []Payload{full, minimal} {
		out, ok := decodePayload(encodePayload(nil, in))
		require.True(t, ok)
		require.Equal(t, in, out)
	}

	nanos := full
	nanos.IssuedAt = nanos.IssuedAt.Add(789 * time.Nanosecond).In(time.FixedZone("X", 3600))
	out, ok := decodePayload(encodePayload(nil, nanos))
	require.True(t, ok)
	require.Equal(t, full.IssuedAt, out.IssuedAt, "times are kept to the microsecond, in UTC")
}

func TestPayloadCodecRefusesAnythingElse(t *testing.T) {
	t.Parallel()
	b := encodePayload(nil, fullPayload())
	for n := range len(b) {
		_, ok := decodePayload(b[:n])
		require.False(t, ok, "truncated to %d of %d bytes", n, len(b))
	}
	_, ok := decodePayload(append(append([]byte(nil), b...), 0))
	require.False(t, ok, "a trailing byte")
	unknownFlag := append([]byte(nil), b...)
	unknownFlag[0] |= 0x80
	_, ok = decodePayload(unknownFlag)
	require.False(t, ok, "an unknown flag")
	// A string length past the end of the payload.
	long := encodePayload(nil, Payload{ID: uuid.New(), Ad: Ad{Owner: uuid.New()}})
	long[len(long)-11] = 0x7f // ViewerKey's length
	_, ok = decodePayload(long)
	require.False(t, ok, "a length past the end")
}

func FuzzDecodePayload(f *testing.F) {
	f.Add(encodePayload(nil, fullPayload()))
	f.Add(encodePayload(nil, Payload{ID: uuid.New(), Ad: Ad{Owner: uuid.New()}}))
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, ok := decodePayload(b)
		if !ok {
			return
		}
		again, ok := decodePayload(encodePayload(nil, tr))
		require.True(t, ok)
		require.Equal(t, tr, again)
	})
}

// goldenKey sealed goldenTokens with the code of release v2 (before the
// package moved out of analytics); the tokens hold goldenPayloads.
var goldenKey = []byte("adshare golden tracking key, v2.")

var goldenTokens = []string{
	"ArUC1i5713N02rxXT9nBiS7VDACUTT6tMhnuNGwWTSQXh_un_H4qSB840c6AVIc774hXtFRMRTBILZPoVau0OnmULtAEWBPNMhUVjc1HlHNFLUrs-_m8gny7dIRDE-wgNjg1dvfXhp6s_lLNKUO2rGyP75KF97yAoBlTfZ474Zm_GJ9GaapUppGQd0ZSXKRpfP0_FYQ24SUDnaWfyKGPOkQkgrRkNh8u3xOVa_VThhmvN1tQXMRIM_7AxVEQ9NRlhEtpoPH0gWBr4bYhNliyB_3frAyHTZK4OF4zKNLBLcitIycbiJKHugKb6G7WbHxzEzcUtDYHaA",
	"ArUPi_bdVVH0HpavNgoTffdIO8AX1ap6IEc1mU5np7r5nazK7E-2FYoyM3Pus1ykus29c26pI4HyNh2xUCVF97xrAyHKzLOHXhwxAazEatHgKVtMjrEw86C9QVjKfg7Y2pFyQVRvROcPEtIdzpH1n85JtEgH5WHtyuk",
}

func goldenPayloads() []Payload {
	issued := time.Date(2026, 11, 27, 12, 0, 0, 123456000, time.UTC)
	full := Payload{
		ID: uuid.MustParse("019ac5d2-7b1e-7c3a-9f00-5a1b2c3d4e5f"),
		Ad: Ad{Owner: uuid.MustParse("6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e"),
			Viewer: uuid.MustParse("0d9e8f7a-6b5c-4d3e-9f2a-1b0c9d8e7f6a"), ViewerKey: "vk-Ωmega",
			Placement: "main", Source: "kevel", AdID: "ad-1", CreativeID: "cr-2", CampaignID: "camp-3", AdvertiserID: "adv-4",
			PriceModel: "cpm", PriceMicros: 2_500_000, Billable: true, IssuedAt: issued},
		Upstream:   Upstream{ImpressionURL: "https://e-23.adzerk.net/i.gif?e=abc", ClickURL: "https://e-23.adzerk.net/r?e=def"},
		LandingURL: "https://example.com/landing?x=1", ExpiresAt: issued.Add(time.Hour),
	}
	anonymous := full
	anonymous.Viewer, anonymous.ViewerKey, anonymous.Billable, anonymous.PriceMicros = uuid.Nil, "", false, -7
	anonymous.Upstream, anonymous.LandingURL = Upstream{}, ""
	return []Payload{full, anonymous}
}

// TestTokensSealedBeforeStillOpen pins the wire format: tokens sealed by
// an earlier release (version byte, key id, nonce, additional data and
// payload codec) open to the same payload, and the payload encodes to the
// very bytes they hold.
func TestTokensSealedBeforeStillOpen(t *testing.T) {
	t.Parallel()
	want := goldenPayloads()
	s, err := NewSealer([][]byte{goldenKey}, func() time.Time { return want[0].IssuedAt.Add(time.Minute) })
	require.NoError(t, err)
	for i, tok := range goldenTokens {
		got, err := s.Open(tok)
		require.NoError(t, err, "golden token %d", i)
		require.Equal(t, want[i], got, "golden token %d", i)

		raw, err := base64.RawURLEncoding.DecodeString(tok)
		require.NoError(t, err)
		require.Equal(t, []byte{tokenVersion, keyID(goldenKey)}, raw[:2])
		gcm := s.aeads[raw[1]][0]
		nonce, sealed := raw[2:2+gcm.NonceSize()], raw[2+gcm.NonceSize():]
		plain, err := gcm.Open(nil, nonce, sealed, []byte("adshare tracking token v2"))
		require.NoError(t, err, "the additional data is unchanged")
		require.Equal(t, plain, encodePayload(nil, want[i]), "golden token %d: the codec writes what it wrote then", i)
	}
}
