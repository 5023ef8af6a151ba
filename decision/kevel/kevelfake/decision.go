package kevelfake

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

func (f *Fake) routes() {
	f.mux.HandleFunc("POST /api/v2", f.decide)
	f.mux.HandleFunc("/i.gif", f.pixel("impression"))
	f.mux.HandleFunc("/r", f.pixel("click"))
	f.mux.HandleFunc("/e.gif", f.pixel("event"))
	f.mux.HandleFunc("GET /udb/{nid}/read", f.userdb(false, f.udbRead))
	f.mux.HandleFunc("POST /udb/{nid}/custom", f.userdb(true, f.udbCustom))
	f.mux.HandleFunc("GET /udb/{nid}/optout/i.gif", f.userdb(false, f.udbOptOut))
	f.mux.HandleFunc("POST /udb/{nid}/consent", f.userdb(true, f.udbConsent))
	f.mux.HandleFunc("DELETE /udb/{nid}", f.userdb(true, f.udbForget))
}

// The fake's own view of the request: deliberately not kevel's wire
// types, so that a wrong JSON name on the client side shows up as a
// failure here.
type request struct {
	Placements []placement `json:"placements"`
	User       *struct {
		Key string `json:"key"`
	} `json:"user"`
	BlockedCreatives     []int64 `json:"blockedCreatives"`
	IncludePricingData   bool    `json:"includePricingData"`
	IncludeMatchedPoints bool    `json:"includeMatchedPoints"`

	kw []string // keywords, from a string or an array
}

type placement struct {
	DivName         string  `json:"divName"`
	NetworkID       int64   `json:"networkId"`
	SiteID          int64   `json:"siteId"`
	AdTypes         []int   `json:"adTypes"`
	ZoneIDs         []int64 `json:"zoneIds"`
	CampaignID      int64   `json:"campaignId"`
	FlightID        int64   `json:"flightId"`
	AdID            int64   `json:"adId"`
	ClickURL        string  `json:"clickUrl"`
	EventIDs        []int   `json:"eventIds"`
	Count           *int    `json:"count"`
	EventMultiplier *int64  `json:"eventMultiplier"`
}

type decisionOut struct {
	AdID          int64          `json:"adId"`
	AdvertiserID  int64          `json:"advertiserId"`
	CreativeID    int64          `json:"creativeId"`
	FlightID      int64          `json:"flightId"`
	CampaignID    int64          `json:"campaignId"`
	PriorityID    int64          `json:"priorityId"`
	ClickURL      string         `json:"clickUrl"`
	Contents      []contentOut   `json:"contents"`
	ImpressionURL string         `json:"impressionUrl"`
	Events        []eventOut     `json:"events,omitempty"`
	MatchedPoints []MatchedPoint `json:"matchedPoints,omitempty"`
	Pricing       *pricingOut    `json:"pricing,omitempty"`
}

type contentOut struct {
	Type           string         `json:"type"`
	Template       string         `json:"template,omitempty"`
	CustomTemplate string         `json:"customTemplate,omitempty"`
	Data           map[string]any `json:"data,omitempty"`
	Body           string         `json:"body,omitempty"`
}

type eventOut struct {
	ID  int    `json:"id"`
	URL string `json:"url"`
}

type pricingOut struct {
	Price      json.Number `json:"price"`
	ClearPrice json.Number `json:"clearPrice,omitempty"`
	Revenue    json.Number `json:"revenue,omitempty"`
	RateType   int         `json:"rateType"`
	ECPM       json.Number `json:"eCPM,omitempty"`
}

// maxBody bounds a decision request.
const maxBody = 1 << 20

func (f *Fake) decide(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.stats.Decisions++
	latency := f.latency
	f.mu.Unlock()
	if ft, ok := f.takeFault(r.URL.Path); ok {
		f.serveFault(w, r, ft)
		return
	}
	if !f.sleep(r.Context(), latency) {
		return
	}
	if f.cfg.RequireDecisionKey && !f.keyOK(r) {
		f.unauthorized(w)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return
	}
	f.record(r.Header, body)
	req, msg := f.validate(body)
	if msg != "" {
		f.mu.Lock()
		f.stats.BadRequests++
		f.mu.Unlock()
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	base := baseURL(r)
	f.mu.Lock()
	ads := f.ads
	f.mu.Unlock()
	var userKey string
	if req.User != nil && req.User.Key != "" {
		userKey = req.User.Key
	} else {
		var b [10]byte
		_, _ = rand.Read(b[:])
		userKey = "ue1-" + hex.EncodeToString(b[:])
	}
	decisions := make(map[string]any, len(req.Placements))
	for i, p := range req.Placements {
		div := p.DivName
		if div == "" {
			div = "div" + strconv.Itoa(i)
		}
		n := 1
		if p.Count != nil {
			n = *p.Count
		}
		var out []decisionOut
		for _, ad := range choose(ads, req, p, n) {
			out = append(out, f.decisionFor(base, div, ad, req, p))
		}
		switch {
		case len(out) == 0:
			decisions[div] = nil
		case p.Count == nil:
			decisions[div] = out[0]
		default:
			decisions[div] = out
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"user": map[string]string{"key": userKey}, "decisions": decisions})
}

func (f *Fake) record(h http.Header, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.recorded) == maxRecorded {
		f.recorded = slices.Delete(f.recorded, 0, 1)
	}
	f.recorded = append(f.recorded, Recorded{Header: h.Clone(), Body: slices.Clone(body)})
}

// validate applies the documented 400s; msg is the error text.
func (f *Fake) validate(body []byte) (req request, msg string) {
	if len(bytes.TrimSpace(body)) == 0 {
		return req, "no request body"
	}
	if len(body) > maxBody {
		return req, "request body too large"
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return req, "invalid JSON: " + err.Error()
	}
	if kw, ok := raw["keywords"]; ok && !keywordsOK(kw) {
		return req, "keywords must be a string or an array of strings"
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, "invalid JSON: " + err.Error()
	}
	if kw, ok := raw["keywords"]; ok {
		req.kw = keywordsOf(kw)
	}
	if len(req.Placements) == 0 {
		return req, "no placements"
	}
	for i, p := range req.Placements {
		switch {
		case len(p.AdTypes) == 0:
			return req, fmt.Sprintf("placement %d: adTypes is required", i)
		case p.Count != nil && (*p.Count < 1 || *p.Count > 20):
			return req, fmt.Sprintf("placement %d: count must be between 1 and 20", i)
		case p.EventMultiplier != nil && (*p.EventMultiplier < 1 || *p.EventMultiplier > 100_000_000):
			return req, fmt.Sprintf("placement %d: eventMultiplier must be between 1 and 100000000", i)
		case p.NetworkID != f.cfg.NetworkID:
			return req, fmt.Sprintf("no valid placements: placement %d: unknown networkId %d", i, p.NetworkID)
		case p.SiteID <= 0 || (len(f.cfg.SiteIDs) > 0 && !slices.Contains(f.cfg.SiteIDs, p.SiteID)):
			return req, fmt.Sprintf("no valid placements: placement %d: no active site %d", i, p.SiteID)
		}
	}
	return req, ""
}

func keywordsOK(b json.RawMessage) bool {
	var s string
	if json.Unmarshal(b, &s) == nil {
		return true
	}
	var ss []string
	if json.Unmarshal(b, &ss) == nil {
		return true
	}
	return bytes.Equal(bytes.TrimSpace(b), []byte("null"))
}

// keywordsOf returns the request's keywords (a string or an array).
func keywordsOf(body json.RawMessage) []string {
	var s string
	if json.Unmarshal(body, &s) == nil {
		return []string{s}
	}
	var ss []string
	_ = json.Unmarshal(body, &ss)
	return ss
}

// choose returns up to n ads for p, best price first.
func choose(ads []Ad, req request, p placement, n int) []Ad {
	var out []Ad
	for _, ad := range ads {
		switch {
		case !slices.Contains(p.AdTypes, ad.AdType),
			ad.SiteID != 0 && ad.SiteID != p.SiteID,
			len(p.ZoneIDs) > 0 && len(ad.ZoneIDs) > 0 && !slices.ContainsFunc(ad.ZoneIDs, func(z int64) bool { return slices.Contains(p.ZoneIDs, z) }),
			len(ad.Keywords) > 0 && !slices.ContainsFunc(ad.Keywords, func(k string) bool { return slices.Contains(req.keywords(), k) }),
			slices.Contains(req.BlockedCreatives, ad.CreativeID),
			p.CampaignID != 0 && p.CampaignID != ad.CampaignID,
			p.FlightID != 0 && p.FlightID != ad.FlightID,
			p.AdID != 0 && p.AdID != ad.AdID:
			continue
		}
		out = append(out, ad)
	}
	slices.SortStableFunc(out, func(a, b Ad) int { return ratOf(b.Price).Cmp(ratOf(a.Price)) })
	return out[:min(n, len(out))]
}

// keywords returns the request's keywords.
func (r request) keywords() []string { return r.kw }

func ratOf(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok || len(s) > 40 {
		return new(big.Rat)
	}
	return r
}

func (f *Fake) decisionFor(base, div string, ad Ad, req request, p placement) decisionOut {
	exp := f.cfg.Now().Add(f.cfg.PixelTTL).Unix()
	click := ad.ClickThroughURL
	if p.ClickURL != "" {
		click = p.ClickURL
	}
	d := decisionOut{
		AdID: ad.AdID, AdvertiserID: ad.AdvertiserID, CreativeID: ad.CreativeID,
		FlightID: ad.FlightID, CampaignID: ad.CampaignID, PriorityID: ad.PriorityID,
		ClickURL:      base + "/r?" + f.sign(payload{Kind: "click", Div: div, AdID: ad.AdID, Exp: exp, URL: click}),
		ImpressionURL: base + "/i.gif?" + f.sign(payload{Kind: "impression", Div: div, AdID: ad.AdID, Exp: exp}),
	}
	for _, id := range p.EventIDs {
		d.Events = append(d.Events, eventOut{ID: id, URL: base + "/e.gif?" + f.sign(payload{Kind: "event", Div: div, AdID: ad.AdID, Event: id, Exp: exp})})
	}
	data := map[string]any{}
	if ad.CustomData != nil {
		data["customData"] = ad.CustomData
	}
	switch {
	case ad.ImageURL != "":
		data["imageUrl"], data["title"], data["width"], data["height"] = ad.ImageURL, ad.Title, ad.Width, ad.Height
		data["fileName"] = ad.ImageURL[strings.LastIndexByte(ad.ImageURL, '/')+1:]
		d.Contents = []contentOut{{Type: "html", Template: "image", Data: data, Body: fmt.Sprintf(
			`<a href="%s" rel="nofollow"><img src="%s" title="%s" alt="%s" border="0" width="%d" height="%d"></a>`,
			html.EscapeString(d.ClickURL), html.EscapeString(ad.ImageURL), html.EscapeString(ad.Title), html.EscapeString(ad.Title), ad.Width, ad.Height)}}
	case ad.HTML != "":
		d.Contents = []contentOut{{Type: "html", Data: data, Body: ad.HTML}}
	default:
		if ad.Title != "" {
			data["title"] = ad.Title
		}
		d.Contents = []contentOut{{Type: "raw", CustomTemplate: "<div class=\"native\">{{title}}</div>", Data: data}}
	}
	if req.IncludeMatchedPoints {
		d.MatchedPoints = ad.MatchedPoints
	}
	if req.IncludePricingData && ad.Price != "" {
		pr := &pricingOut{Price: json.Number(ad.Price), ClearPrice: json.Number(ad.ClearPrice), RateType: ad.RateType}
		if ad.RateType == 2 {
			pr.ECPM = json.Number(ad.Price)
			rev := new(big.Rat).Quo(ratOf(cmpStr(ad.ClearPrice, ad.Price)), big.NewRat(1000, 1))
			pr.Revenue = json.Number(strings.TrimRight(strings.TrimRight(rev.FloatString(9), "0"), "."))
		}
		d.Pricing = pr
	}
	return d
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// baseURL is the scheme and host the client reached the fake at.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
