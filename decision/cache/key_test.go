package cache

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
)

func TestKeyHasExactlyThePartsThatChangeTheAnswer(t *testing.T) {
	t.Parallel()
	base := func() decision.Request {
		return decision.Request{
			Placements: []decision.Placement{{
				ID: "top", AdTypes: []int{5, 9}, Formats: []string{"banner", "native"}, SiteID: 1, ZoneIDs: []int64{3, 4},
				Count: 1, Properties: map[string]string{"pos": "1", "theme": "dark"}, EventIDs: []int{30, 40},
			}},
			UserKey: "u1", Keywords: []string{"a", "b"}, Categories: []string{"c1", "c2"},
			Properties: map[string]string{"locale": "en", "screen": "s"},
			Exclude:    decision.Exclusions{Advertisers: []string{"x1", "x2"}, Categories: []string{"y"}, Creatives: []string{"z"}},
			Consent:    decision.Consent{GDPRApplies: true, GDPR: true, TCString: "CP"},
			IP:         "198.51.100.1", UserAgent: "UA", URL: "https://a.example/", Referrer: "https://r.example/", Time: time.Unix(1, 0),
		}
	}
	keyOf := func(req decision.Request) Key {
		var s [decision.MaxPlacements]slot
		requestKeys(&req, s[:len(req.Placements)])
		return s[0].key
	}
	want := keyOf(base())

	for _, c := range []struct {
		description string
		change      func(r *decision.Request)
	}{
		{"IP", func(r *decision.Request) { r.IP = "203.0.113.2" }},
		{"user agent", func(r *decision.Request) { r.UserAgent = "other" }},
		{"URL", func(r *decision.Request) { r.URL = "https://b.example/" }},
		{"referrer", func(r *decision.Request) { r.Referrer = "" }},
		{"time", func(r *decision.Request) { r.Time = time.Now() }},
		{"placement ID", func(r *decision.Request) { r.Placements[0].ID = "bottom" }},
		{"count", func(r *decision.Request) { r.Placements[0].Count = 3 }},
		{"keyword order", func(r *decision.Request) { r.Keywords = []string{"b", "a"} }},
		{"category order", func(r *decision.Request) { r.Categories = []string{"c2", "c1"} }},
		{"ad type order", func(r *decision.Request) { r.Placements[0].AdTypes = []int{9, 5} }},
		{"format order", func(r *decision.Request) { r.Placements[0].Formats = []string{"native", "banner"} }},
		{"zone order", func(r *decision.Request) { r.Placements[0].ZoneIDs = []int64{4, 3} }},
		{"event order", func(r *decision.Request) { r.Placements[0].EventIDs = []int{40, 30} }},
		{"exclusion order", func(r *decision.Request) { r.Exclude.Advertisers = []string{"x2", "x1"} }},
	} {
		r := base()
		c.change(&r)
		require.Equal(t, want, keyOf(r), "%s is not in the key", c.description)
	}

	for _, c := range []struct {
		description string
		change      func(r *decision.Request)
	}{
		{"user key", func(r *decision.Request) { r.UserKey = "u2" }},
		{"no user key", func(r *decision.Request) { r.UserKey = "" }},
		{"GDPR applies", func(r *decision.Request) { r.Consent.GDPRApplies = false }},
		{"GDPR consent", func(r *decision.Request) { r.Consent.GDPR = false }},
		{"TC string", func(r *decision.Request) { r.Consent.TCString = "CQ" }},
		{"do not sell", func(r *decision.Request) { r.Consent.DoNotSell = true }},
		{"keywords", func(r *decision.Request) { r.Keywords = []string{"a"} }},
		{"keyword boundaries", func(r *decision.Request) { r.Keywords = []string{"ab"} }},
		{"categories", func(r *decision.Request) { r.Categories = nil }},
		{"request properties", func(r *decision.Request) { r.Properties["locale"] = "fr" }},
		{"property moved to the placement", func(r *decision.Request) {
			delete(r.Properties, "screen")
			r.Placements[0].Properties["screen"] = "s"
		}},
		{"excluded advertisers", func(r *decision.Request) { r.Exclude.Advertisers = nil }},
		{"excluded categories", func(r *decision.Request) { r.Exclude.Categories = []string{"y", "w"} }},
		{"excluded creatives", func(r *decision.Request) { r.Exclude.Creatives = nil }},
		{"ad types", func(r *decision.Request) { r.Placements[0].AdTypes = []int{5} }},
		{"formats", func(r *decision.Request) { r.Placements[0].Formats = []string{"banner"} }},
		{"site", func(r *decision.Request) { r.Placements[0].SiteID = 2 }},
		{"zones", func(r *decision.Request) { r.Placements[0].ZoneIDs = nil }},
		{"placement properties", func(r *decision.Request) { r.Placements[0].Properties["pos"] = "2" }},
		{"event ids", func(r *decision.Request) { r.Placements[0].EventIDs = []int{30} }},
	} {
		r := base()
		c.change(&r)
		require.NotEqual(t, want, keyOf(r), "%s is in the key", c.description)
	}
}

func TestKeysOfTwoPlacementsDifferOnlyByWhatTheyAskFor(t *testing.T) {
	t.Parallel()
	req := decision.Request{Placements: []decision.Placement{
		{ID: "a", Formats: []string{"banner"}},
		{ID: "b", Formats: []string{"banner"}, Count: 2},
		{ID: "c", Formats: []string{"native"}},
	}}
	var s [3]slot
	requestKeys(&req, s[:])
	require.Equal(t, s[0].key, s[1].key, "identical slots share a pool")
	require.NotEqual(t, s[0].key, s[2].key)
}
