package transport

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// trickyPieces are what a string encoder gets wrong: quotes, backslashes,
// every control character, what HTML-safe JSON escapes, the line
// separators JavaScript chokes on, invalid and truncated UTF-8, and runes
// of every length.
var trickyPieces = func() []string {
	p := []string{`"`, `\`, "<", ">", "&", "\u2028", "\u2029", "\x7f", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80",
		"é", "€", "😀", "\u0301", "\ufffd", "/", "'", "plain text", " ", "https://shop.example.com/b?x=1&y=<2>"}
	for c := range 0x20 {
		p = append(p, string(rune(c)))
	}
	return p
}()

func randomString(r *rand.Rand) string {
	var sb strings.Builder
	for range r.IntN(8) {
		sb.WriteString(trickyPieces[r.IntN(len(trickyPieces))])
	}
	return sb.String()
}

func encodingJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.NewEncoder(&buf).Encode(v))
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestJSONStringsAreWhatEncodingJSONWrites(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := append([]string{""}, trickyPieces...)
	for range 5000 {
		cases = append(cases, randomString(r))
	}
	for _, s := range cases {
		require.Equal(t, string(encodingJSON(t, s)), string(appendJSONString(nil, s)), "%q", s)
	}
}

func FuzzJSONString(f *testing.F) {
	for _, p := range trickyPieces {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendJSONString(nil, s)))
	})
}

func TestFillAnswerIsWhatEncodingJSONWrites(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	randomAd := func() servedAdJSON {
		return servedAdJSON{
			ID: uuid.New(), Format: randomString(r), Title: randomString(r), Body: randomString(r), ImageURL: randomString(r),
			Width: r.IntN(2000) - 10, Height: r.IntN(2000), CallToAction: randomString(r), HTML: []string{"", randomString(r)}[r.IntN(2)],
			Advertiser: randomString(r), House: r.IntN(2) == 0,
			Tracking: trackingJSON{Token: randomString(r), ImpressionURL: randomString(r), ClickURL: randomString(r),
				ExpiresAt: time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In([]*time.Location{time.UTC, time.FixedZone("x", -3*3600)}[r.IntN(2)])},
		}
	}
	fills := []fillJSON{{}, {Formats: []string{}, Ads: []servedAdJSON{}}, {Ads: []servedAdJSON{{}}}}
	for range 500 {
		f := fillJSON{OwnerID: uuid.New(), Enabled: r.IntN(2) == 0, RefreshIntervalSeconds: r.IntN(1000), Billable: r.IntN(2) == 0}
		for range r.IntN(4) {
			f.Formats = append(f.Formats, randomString(r))
		}
		for range r.IntN(4) {
			f.Ads = append(f.Ads, randomAd())
		}
		fills = append(fills, f)
	}
	for _, f := range fills {
		require.Equal(t, string(encodingJSON(t, f)), string(f.appendJSON(nil)))
		// The fill's own form: the click URL as a prefix and the token.
		prefixed := f
		prefixed.Ads = slices.Clone(f.Ads)
		for i := range prefixed.Ads {
			tr := &prefixed.Ads[i].Tracking
			prefix := []string{"https://api.example.com/c/", "/" + randomString(r), "caf\xc3"}[r.IntN(3)] // never empty: empty means ClickURL
			f.Ads[i].Tracking.ClickURL = prefix + tr.Token
			tr.ClickURL, tr.clickPrefix = "", prefix
		}
		require.Equal(t, string(encodingJSON(t, f)), string(prefixed.appendJSON(nil)))
	}
}

func FuzzJSONStringPair(f *testing.F) {
	for _, p := range trickyPieces {
		f.Add(p, p)
		f.Add("https://api.example.com/c/", p)
	}
	f.Fuzz(func(t *testing.T, a, c string) {
		want, err := json.Marshal(a + c)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendJSONStringPair(nil, a, c)))
	})
}

func TestWriteJSONUsesTheAppenderAndEndsWithANewline(t *testing.T) {
	f := fillJSON{OwnerID: uuid.New(), Formats: []string{"banner"}, Ads: []servedAdJSON{{Title: "<b>"}}}
	var buf bytes.Buffer
	require.NoError(t, json.NewEncoder(&buf).Encode(f))
	rec := httptest.NewRecorder()
	writeJSON(rec, 200, &f)
	require.Equal(t, buf.String(), rec.Body.String())
	require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
}

func BenchmarkFillAnswerAppend(b *testing.B) {
	f := benchFillAnswer()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = f.appendJSON(buf[:0])
	}
}

// BenchmarkFillAnswerEncodingJSONBaseline is BenchmarkFillAnswerAppend's
// baseline: encoding/json over the same answer.
func BenchmarkFillAnswerEncodingJSONBaseline(b *testing.B) {
	f := benchFillAnswer()
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(&f)
	}
}

// benchFillAnswer is a fill of three banners, as the example server serves.
func benchFillAnswer() fillJSON {
	f := fillJSON{OwnerID: uuid.New(), Enabled: true, Formats: []string{"banner", "native"}, RefreshIntervalSeconds: 30, Billable: true}
	token := strings.Repeat("AZOnyR0ueiuMTV5vep-cAQ", 9)
	for i := range 3 {
		f.Ads = append(f.Ads, servedAdJSON{ID: uuid.New(), Format: "banner", Title: "Fresh beans " + string(rune('0'+i)),
			Body: "Roasted weekly.", Width: 320, Height: 50, CallToAction: "Shop now", Advertiser: uuid.NewString(),
			Tracking: trackingJSON{Token: token, ImpressionURL: "https://api.example.com/events", ClickURL: "https://api.example.com/c/" + token,
				ExpiresAt: time.Now().Add(time.Hour)}})
	}
	return f
}
