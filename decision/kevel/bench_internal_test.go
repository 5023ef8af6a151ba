package kevel

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
)

// benchRequest is a typical request: two placements, one multi-winner,
// keywords, properties, consent and the viewer's context.
var benchRequest = decision.Request{
	Placements: []decision.Placement{
		{ID: "feed", AdTypes: []int{5, 7}, ZoneIDs: []int64{10}, Count: 3, EventIDs: []int{30}, Properties: map[string]string{"slot": "feed"}},
		{ID: "footer", AdTypes: []int{4}},
	},
	UserKey: "ue1-7b2f0c", Keywords: []string{"running", "shoes", "trail"},
	Properties: map[string]string{"locale": "fr-FR", "app": "2.4.1"},
	Exclude:    decision.Exclusions{Creatives: []string{"9001", "9002"}, Advertisers: []string{"77"}},
	Consent:    decision.Consent{GDPRApplies: true, GDPR: true, TCString: "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"},
	IP:         "203.0.113.7", UserAgent: "Mozilla/5.0 (iPhone)", URL: "https://app.example/spaces/42",
}

// BenchmarkBuildRequest maps a request and encodes its body.
func BenchmarkBuildRequest(b *testing.B) {
	cfg, err := Config{NetworkID: 23, SiteID: 667480, APIKey: "k"}.withDefaults()
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		out, err := buildRequest(&cfg, benchRequest)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(out.Body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseResponse decodes and maps the multi-winner golden answer
// (two ads with contents, events, pricing and customData).
func BenchmarkParseResponse(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "exemplary", "multi-winner.json"))
	require.NoError(b, err)
	var c struct {
		Request      decision.Request `json:"request"`
		MockResponse struct {
			Body json.RawMessage `json:"body"`
		} `json:"mockResponse"`
	}
	require.NoError(b, json.Unmarshal(raw, &c))
	meta := callMeta{Now: t0, CallID: "c-1"}
	b.SetBytes(int64(len(c.MockResponse.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseResponse(c.MockResponse.Body, c.Request, meta); err != nil {
			b.Fatal(err)
		}
	}
}
