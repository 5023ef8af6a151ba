package kevel_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/kevel"
	"github.com/adshare/adshare/decision/kevel/kevelfake"
)

var benchAds = []kevelfake.Ad{
	{AdType: 5, Title: "Run faster", ImageURL: "https://static.adzerk.net/run.png", Width: 320, Height: 50, Price: "2.5"},
	{AdType: 5, HTML: "<b>Eat better</b>", Price: "1.5", CustomData: map[string]any{"categories": []any{"food"}}},
	{AdType: 5, Title: "Native", CustomData: map[string]any{"cta": "Go", "title": "Native"}, Price: "2"},
}

var benchReq = decision.Request{
	Placements: []decision.Placement{{ID: "feed", AdTypes: []int{5}, Count: 3, EventIDs: []int{30}}, {ID: "footer", AdTypes: []int{5}}},
	UserKey:    "ue1-7b2f0c", Keywords: []string{"running"}, IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (iPhone)",
}

// BenchmarkDecideRoundTrip is a whole Decide against the fake on
// loopback: mapping, encoding, the limiter and breaker, HTTP, decoding and
// mapping back. Compare with BenchmarkBaselinePost in the same run: the
// difference is the client's own cost.
func BenchmarkDecideRoundTrip(b *testing.B) {
	srv := kevelfake.StartTB(b, kevelfake.Config{NetworkID: 23, Ads: benchAds})
	c, err := kevel.New(kevel.Config{NetworkID: 23, SiteID: 1, BaseURL: srv.URL(), RatePerSecond: -1})
	require.NoError(b, err)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Decide(ctx, benchReq)
		if err != nil || len(resp.Ads["feed"]) != 3 {
			b.Fatal(err, resp)
		}
	}
}

// BenchmarkBaselinePost posts the body Decide sends to the same fake with
// a bare http.Client and reads the answer, without decoding it.
func BenchmarkBaselinePost(b *testing.B) {
	srv := kevelfake.StartTB(b, kevelfake.Config{NetworkID: 23, Ads: benchAds})
	c, err := kevel.New(kevel.Config{NetworkID: 23, SiteID: 1, BaseURL: srv.URL()})
	require.NoError(b, err)
	_, err = c.Decide(context.Background(), benchReq)
	require.NoError(b, err)
	body := srv.DecisionRequests()[0].Body
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/api/v2", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
	}
}
