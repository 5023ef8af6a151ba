package kevelfake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision/kevel/kevelfake"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testBundle struct {
	srv   *kevelfake.Server
	clock *clock
	http  *http.Client
}

func setup(t *testing.T, cfg kevelfake.Config) *testBundle {
	t.Helper()
	c := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg.Now = c.Now
	srv := kevelfake.StartTB(t, cfg)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &testBundle{srv: srv, clock: c, http: noRedirect}
}

// do sends a request and returns the status and body.
func (b *testBundle) do(t *testing.T, method, path, body string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	url := path
	if !strings.HasPrefix(path, "http") {
		url = b.srv.URL() + path
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, got
}

// decide posts a decision request and decodes the answer.
func (b *testBundle) decide(t *testing.T, body string) map[string]any {
	t.Helper()
	status, _, got := b.do(t, http.MethodPost, "/api/v2", body, map[string]string{"Content-Type": "application/json"})
	require.Equal(t, http.StatusOK, status, string(got))
	var out map[string]any
	d := json.NewDecoder(bytes.NewReader(got))
	d.UseNumber()
	require.NoError(t, d.Decode(&out))
	return out
}

const placement = `{"divName": "p", "networkId": 23, "siteId": 1, "adTypes": [5]`

func TestDecisionRequestsAreValidated(t *testing.T) {
	t.Parallel()
	b := setup(t, kevelfake.Config{SiteIDs: []int64{1}})
	for _, tt := range []struct {
		description string
		body        string
		expectErr   string
	}{
		{"no body", ``, "no request body"},
		{"invalid JSON", `{"placements": [`, "invalid JSON"},
		{"not an object", `[1]`, "invalid JSON"},
		{"no placements", `{}`, "no placements"},
		{"empty placements", `{"placements": []}`, "no placements"},
		{"no adTypes", `{"placements": [{"divName": "p", "networkId": 23, "siteId": 1}]}`, "adTypes is required"},
		{"count 0", `{"placements": [` + placement + `, "count": 0}]}`, "count must be between 1 and 20"},
		{"count 21", `{"placements": [` + placement + `, "count": 21}]}`, "count must be between 1 and 20"},
		{"eventMultiplier 0", `{"placements": [` + placement + `, "eventMultiplier": 0}]}`, "eventMultiplier"},
		{"eventMultiplier 1e8+1", `{"placements": [` + placement + `, "eventMultiplier": 100000001}]}`, "eventMultiplier"},
		{"keywords a number", `{"placements": [` + placement + `}], "keywords": 5}`, "keywords must be a string or an array of strings"},
		{"keywords of numbers", `{"placements": [` + placement + `}], "keywords": [1, 2]}`, "keywords must be"},
		{"unknown network", `{"placements": [{"divName": "p", "networkId": 24, "siteId": 1, "adTypes": [5]}]}`, "no valid placements"},
		{"no site", `{"placements": [{"divName": "p", "networkId": 23, "adTypes": [5]}]}`, "no valid placements"},
		{"unknown site", `{"placements": [{"divName": "p", "networkId": 23, "siteId": 2, "adTypes": [5]}]}`, "no valid placements"},
		{"a wrong type", `{"placements": [{"divName": "p", "networkId": "23", "siteId": 1, "adTypes": [5]}]}`, "invalid JSON"},
	} {
		status, _, body := b.do(t, http.MethodPost, "/api/v2", tt.body, nil)
		require.Equal(t, http.StatusBadRequest, status, tt.description)
		require.Contains(t, string(body), tt.expectErr, tt.description)
	}
	require.Equal(t, 16, b.srv.Stats().BadRequests)
	// Accepted: keywords as one string, count at the bounds, text/plain.
	for _, body := range []string{
		`{"placements": [` + placement + `, "count": 1}], "keywords": "one"}`,
		`{"placements": [` + placement + `, "count": 20, "eventMultiplier": 100000000}], "keywords": null}`,
	} {
		status, _, got := b.do(t, http.MethodPost, "/api/v2", body, map[string]string{"Content-Type": "text/plain"})
		require.Equal(t, http.StatusOK, status, string(got))
	}
}

var ads = []kevelfake.Ad{
	{AdType: 5, Title: "Image", ImageURL: "https://static.example/a.png", Width: 300, Height: 250, Price: "1.5"},
	{AdType: 5, HTML: "<b>hi</b>", Price: "3", ZoneIDs: []int64{7}},
	{AdType: 5, Title: "Native", CustomData: map[string]any{"cta": "Go"}, Price: "2", Keywords: []string{"shoes"}, RateType: 3},
	{AdType: 6, Title: "Other type", Price: "9", SiteID: 2},
}

func TestDecisionShapes(t *testing.T) {
	t.Parallel()
	b := setup(t, kevelfake.Config{Ads: ads})
	out := b.decide(t, `{"placements": [
		`+placement+`},
		{"divName": "multi", "networkId": 23, "siteId": 1, "adTypes": [5], "count": 5},
		{"divName": "none", "networkId": 23, "siteId": 1, "adTypes": [99]},
		{"divName": "none-multi", "networkId": 23, "siteId": 1, "adTypes": [99], "count": 2},
		{"networkId": 23, "siteId": 1, "adTypes": [6]}], "user": {"key": "ue1-me"}}`)
	require.Equal(t, map[string]any{"key": "ue1-me"}, out["user"])
	d := out["decisions"].(map[string]any)
	one, ok := d["p"].(map[string]any)
	require.True(t, ok, "no count: one object")
	require.Equal(t, json.Number("1002"), one["adId"], "best price first; no keyword → the keyword ad is out")
	multi, ok := d["multi"].([]any)
	require.True(t, ok, "count: an array")
	require.Len(t, multi, 2)
	require.Nil(t, d["none"], "no match: null")
	require.Nil(t, d["none-multi"])
	require.Contains(t, d, "none")
	require.Nil(t, d["div4"], "ad 4 is for site 2 only; divName defaults to div{index}")
	require.Contains(t, d, "div4")
	require.NotContains(t, one, "pricing", "only with includePricingData")
}

func TestDecisionTargeting(t *testing.T) {
	t.Parallel()
	b := setup(t, kevelfake.Config{Ads: ads})
	ids := func(body string) []string {
		out := b.decide(t, body)
		var got []string
		for _, x := range out["decisions"].(map[string]any)["p"].([]any) {
			got = append(got, x.(map[string]any)["adId"].(json.Number).String())
		}
		return got
	}
	p := `{"divName": "p", "networkId": 23, "siteId": 1, "adTypes": [5], "count": 5`
	require.Equal(t, []string{"1002", "1003", "1001"}, ids(`{"placements": [`+p+`}], "keywords": ["shoes"]}`))
	require.Equal(t, []string{"1002", "1003", "1001"}, ids(`{"placements": [`+p+`}], "keywords": "shoes"}`))
	require.Equal(t, []string{"1002", "1001"}, ids(`{"placements": [`+p+`, "zoneIds": [7]}]}`))
	require.Equal(t, []string{"1001"}, ids(`{"placements": [`+p+`, "zoneIds": [8]}]}`))
	require.Equal(t, []string{"1001"}, ids(`{"placements": [`+p+`}], "blockedCreatives": [2002]}`))
	require.Equal(t, []string{"1002"}, ids(`{"placements": [`+p+`, "adId": 1002}]}`))
	require.Equal(t, []string{"1001"}, ids(`{"placements": [`+p+`, "flightId": 3001}]}`))
	require.Equal(t, []string{"1002"}, ids(`{"placements": [`+p+`, "campaignId": 4002}]}`))
}

func TestDecisionContents(t *testing.T) {
	t.Parallel()
	b := setup(t, kevelfake.Config{Ads: append(ads[:3:3], kevelfake.Ad{AdType: 8, Price: "4", ClearPrice: "3.5", MatchedPoints: []kevelfake.MatchedPoint{{Lat: "1", Lon: "2"}}})})
	out := b.decide(t, `{"placements": [{"divName": "p", "networkId": 23, "siteId": 1, "adTypes": [5, 8], "count": 5, "eventIds": [30, 40]}],
		"keywords": ["shoes"], "includePricingData": true, "includeMatchedPoints": true}`)
	require.True(t, strings.HasPrefix(out["user"].(map[string]any)["key"].(string), "ue1-"), "a key is generated")
	list := out["decisions"].(map[string]any)["p"].([]any)
	require.Len(t, list, 4)
	byID := map[string]map[string]any{}
	for _, x := range list {
		d := x.(map[string]any)
		byID[d["adId"].(json.Number).String()] = d
		require.Len(t, d["events"], 2)
		require.Contains(t, d["impressionUrl"], b.srv.URL()+"/i.gif?e=")
		require.Contains(t, d["clickUrl"], b.srv.URL()+"/r?e=")
	}
	img := byID["1001"]["contents"].([]any)[0].(map[string]any)
	require.Equal(t, "image", img["template"])
	require.Equal(t, "https://static.example/a.png", img["data"].(map[string]any)["imageUrl"])
	require.Equal(t, map[string]any{"price": json.Number("1.5"), "revenue": json.Number("0.0015"), "rateType": json.Number("2"), "eCPM": json.Number("1.5")},
		byID["1001"]["pricing"])
	require.Equal(t, "<b>hi</b>", byID["1002"]["contents"].([]any)[0].(map[string]any)["body"])
	native := byID["1003"]["contents"].([]any)[0].(map[string]any)
	require.NotEmpty(t, native["customTemplate"])
	require.Equal(t, map[string]any{"cta": "Go"}, native["data"].(map[string]any)["customData"])
	require.Equal(t, json.Number("3"), byID["1003"]["pricing"].(map[string]any)["rateType"])
	require.Equal(t, json.Number("3.5"), byID["1004"]["pricing"].(map[string]any)["clearPrice"])
	require.Equal(t, []any{map[string]any{"lat": "1", "lon": "2"}}, byID["1004"]["matchedPoints"])
}

func TestPixels(t *testing.T) {
	t.Parallel()
	b := setup(t, kevelfake.Config{Ads: ads[:1]})
	d := b.decide(t, `{"placements": [`+placement+`, "eventIds": [30]}]}`)["decisions"].(map[string]any)["p"].(map[string]any)
	imp, click := d["impressionUrl"].(string), d["clickUrl"].(string)
	event := d["events"].([]any)[0].(map[string]any)["url"].(string)

	status, h, body := b.do(t, http.MethodGet, imp+"&override=1.5", "", map[string]string{"User-Agent": "UA/1"})
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "image/gif", h.Get("Content-Type"))
	require.True(t, bytes.HasPrefix(body, []byte("GIF89a")))
	status, _, _ = b.do(t, http.MethodPost, imp, "", nil)
	require.Equal(t, http.StatusOK, status, "a body-less POST fires too")
	require.Equal(t, 2, b.srv.Fires(imp), "Kevel does not deduplicate")

	status, h, _ = b.do(t, http.MethodGet, click, "", nil)
	require.Equal(t, http.StatusFound, status)
	require.Equal(t, "https://advertiser.example/ads/1001", h.Get("Location"))
	status, _, _ = b.do(t, http.MethodGet, click+"&noredirect", "", nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 2, b.srv.Fires(click))

	status, _, _ = b.do(t, http.MethodGet, event+"&eventMultiplier=3", "", nil)
	require.Equal(t, http.StatusOK, status)
	log := b.srv.FireLog()
	require.Equal(t, kevelfake.Fire{Kind: "impression", DivName: "p", AdID: 1001, Params: map[string]string{"override": "1.5"}, UserAgent: "UA/1"}, log[0])
	require.Equal(t, 30, log[len(log)-1].EventID)

	// Unsigned, altered, or of the wrong kind: refused.
	for _, u := range []string{"/i.gif", "/i.gif?e=abc&s=def", strings.Replace(imp, "&s=", "&s=x", 1), strings.Replace(imp, "/i.gif", "/e.gif", 1)} {
		status, _, _ = b.do(t, http.MethodGet, u, "", nil)
		require.Equal(t, http.StatusBadRequest, status, u)
	}
	require.Equal(t, 4, b.srv.Stats().BadPixels)

	// Expired: 200, nothing recorded.
	b.clock.Advance(24 * time.Hour)
	status, _, _ = b.do(t, http.MethodGet, imp, "", nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 2, b.srv.Fires(imp))
	require.Equal(t, 1, b.srv.Stats().ExpiredFires)
	require.Equal(t, kevelfake.Stats{Decisions: 1, Impressions: 2, Clicks: 2, Events: 1, ExpiredFires: 1, BadPixels: 4}, b.srv.Stats())
}

func TestUserDB(t *testing.T) {
	t.Parallel()
	b := setup(t, kevelfake.Config{APIKey: "k"})
	key := map[string]string{kevelfake.APIKeyHeader: "k"}
	wrong := map[string]string{kevelfake.APIKeyHeader: "nope"}

	status, _, body := b.do(t, http.MethodGet, "/udb/23/read?userKey=u1", "", nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), `"isNew":true`, "internal fields, for clients to strip")

	for _, tt := range []struct {
		method, path, body string
	}{
		{http.MethodPost, "/udb/23/custom?userKey=u1", `{"age": 30}`},
		{http.MethodPost, "/udb/23/consent", `{"userKey": "u1", "consent": {"gdpr": true}}`},
		{http.MethodDelete, "/udb/23?userKey=u1", ""},
	} {
		for _, h := range []map[string]string{nil, wrong} {
			status, _, _ := b.do(t, tt.method, tt.path, tt.body, h)
			require.Equal(t, http.StatusForbidden, status, tt.path)
		}
	}
	require.Equal(t, 6, b.srv.Stats().Unauthorized)

	status, _, _ = b.do(t, http.MethodPost, "/udb/23/custom?userKey=u1", `{"age": 30}`, key)
	require.Equal(t, http.StatusOK, status)
	status, _, _ = b.do(t, http.MethodGet, "/udb/23/optout/i.gif?userKey=u1", "", nil)
	require.Equal(t, http.StatusOK, status, "opt-out needs no key")
	status, _, _ = b.do(t, http.MethodPost, "/udb/23/consent", `{"userKey": "u1", "consent": {"gdpr": true}}`, key)
	require.Equal(t, http.StatusOK, status)
	rec, ok := b.srv.User("u1")
	require.True(t, ok)
	require.Equal(t, map[string]any{"key": "u1", "interests": []any{}, "custom": map[string]any{"age": 30.0}, "optOut": true, "consent": map[string]any{"gdpr": true}}, rec)

	status, _, _ = b.do(t, http.MethodDelete, "/udb/23?userKey=u1", "", key)
	require.Equal(t, http.StatusOK, status)
	_, ok = b.srv.User("u1")
	require.False(t, ok)

	status, _, _ = b.do(t, http.MethodGet, "/udb/24/read?userKey=u1", "", nil)
	require.Equal(t, http.StatusNotFound, status, "another network")
	status, _, _ = b.do(t, http.MethodGet, "/udb/23/read", "", nil)
	require.Equal(t, http.StatusBadRequest, status, "userKey is required")
	status, _, _ = b.do(t, http.MethodPost, "/udb/23/custom?userKey=u1", `[1]`, key)
	require.Equal(t, http.StatusBadRequest, status)
}

func TestKnobs(t *testing.T) {
	t.Parallel()
	b := setup(t, kevelfake.Config{Ads: ads[:1], APIKey: "k", RequireDecisionKey: true})
	body := `{"placements": [` + placement + `}]}`
	key := map[string]string{kevelfake.APIKeyHeader: "k"}
	status, _, _ := b.do(t, http.MethodPost, "/api/v2", body, nil)
	require.Equal(t, http.StatusForbidden, status, "RequireDecisionKey")

	b.srv.QueueFaults(
		kevelfake.Fault{Status: 429, RetryAfter: "7"},
		kevelfake.Fault{Body: []byte("not json")},
		kevelfake.Fault{Path: "/udb/23/read", Status: 503},
		kevelfake.Fault{Size: 1 << 20},
	)
	status, h, _ := b.do(t, http.MethodPost, "/api/v2", body, key)
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Equal(t, "7", h.Get("Retry-After"))
	status, _, got := b.do(t, http.MethodPost, "/api/v2", body, key)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "not json", string(got))
	status, _, got = b.do(t, http.MethodPost, "/api/v2", body, key)
	require.Equal(t, http.StatusOK, status)
	require.Greater(t, len(got), 1<<20)
	require.False(t, json.Valid(got))
	status, _, _ = b.do(t, http.MethodGet, "/udb/23/read?userKey=u", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	status, _, _ = b.do(t, http.MethodPost, "/api/v2", body, key)
	require.Equal(t, http.StatusOK, status, "faults are used once")
	require.Equal(t, 4, b.srv.Stats().Faults)

	// A dropped connection.
	b.srv.QueueFaults(kevelfake.Fault{Drop: true})
	req, _ := http.NewRequest(http.MethodPost, b.srv.URL()+"/api/v2", strings.NewReader(body))
	_, err := b.http.Do(req)
	require.Error(t, err)

	// Latency ends with the client's patience, or at Stop.
	b.srv.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, b.srv.URL()+"/api/v2", strings.NewReader(body))
	_, err = b.http.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, b.srv.DecisionRequests(), 1, "recorded only past the faults, the latency and the key check")
}

// TestFakeIsAHandler mounts the fake in another mux, as the example
// server does.
func TestFakeIsAHandler(t *testing.T) {
	t.Parallel()
	f := kevelfake.NewFake(kevelfake.Config{Ads: ads[:1]})
	defer func() { _ = f.Stop(context.Background()) }()
	mux := http.NewServeMux()
	mux.Handle("/", f)
	rec := &recorder{header: http.Header{}}
	req, _ := http.NewRequest(http.MethodPost, "http://kevel.local/api/v2", strings.NewReader(`{"placements": [`+placement+`}]}`))
	mux.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.status)
	require.Contains(t, rec.body.String(), `"impressionUrl":"http://kevel.local/i.gif?e=`)
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(s int) { r.status = s }
