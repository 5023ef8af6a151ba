package kevel

import (
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/adshare/adshare/decision"
)

// Source is the value of decision.Ad.Source for Kevel's ads.
const Source = "kevel"

// errMalformed marks an answer that is not a DecisionResponse.
var errMalformed = errors.New("kevel: malformed decision response")

// callMeta is what parseResponse needs besides the answer: the decision's
// time (for ExpiresAt) and the call's id (for decision ids of ads without
// an impression URL).
type callMeta struct {
	Now    time.Time
	CallID string
}

// parseReport says what parseResponse left out.
type parseReport struct {
	// Unknown lists the divNames Kevel answered that were not asked for.
	Unknown []string
	// Filtered counts ads dropped by Exclude, by reason ("advertiser",
	// "category", "creative"), and "over_count" for ads beyond the
	// placement's count.
	Filtered map[string]int
}

func (r *parseReport) filter(reason string) {
	if r.Filtered == nil {
		r.Filtered = map[string]int{}
	}
	r.Filtered[reason]++
}

// parseResponse maps a 2xx body onto a decision.Response (pure). Every
// placement of req gets an entry, empty for no fill; decisions for a
// divName req did not ask for are ignored and reported. It returns an
// error wrapping errMalformed when body is not a DecisionResponse.
//
// Each decision becomes an Ad:
//   - ID: "kvl_" and 26 base32 characters of SHA-256(divName, index,
//     impressionUrl). Kevel has no decision id, but its impression URLs are
//     unique per decision, so the id is unique and stable: the same
//     decision always maps to the same id. Without an impression URL the
//     call's id is hashed in too.
//   - Source "kevel"; AdID, CreativeID, CampaignID, FlightID and
//     AdvertiserID in decimal ("" when Kevel sent none).
//   - Creative from contents (see creativeOf); Categories from
//     customData.categories (Kevel has no ad categories of its own).
//   - Price from pricing (see priceOf).
//   - Tracking: impressionUrl, clickUrl, events by id, and ExpiresAt =
//     meta.Now + DecisionTTL.
//
// Exclude.Advertisers, Exclude.Categories and Exclude.Creatives are then
// applied, and a placement's ads are capped at its count.
func parseResponse(body []byte, req decision.Request, meta callMeta) (decision.Response, parseReport, error) {
	var rep parseReport
	if !json.Valid(body) {
		return decision.Response{}, rep, fmt.Errorf("%w: invalid JSON", errMalformed)
	}
	var wire DecisionResponse
	if err := wire.decode(body); err != nil {
		return decision.Response{}, rep, fmt.Errorf("%w: %w", errMalformed, err)
	}
	resp := decision.Response{Ads: make(map[string][]decision.Ad, len(req.Placements))}
	counts := make(map[string]int, len(req.Placements))
	for _, p := range req.Placements {
		resp.Ads[p.ID] = []decision.Ad{}
		counts[p.ID] = p.CountOrOne()
	}
	if wire.User != nil && req.Consent.MayTrack() {
		resp.UserKey = wire.User.Key
	}
	for div, ds := range wire.Decisions {
		if _, ok := resp.Ads[div]; !ok {
			rep.Unknown = append(rep.Unknown, div)
			continue
		}
		for i, d := range ds {
			ad := adOf(div, i, d, meta)
			if reason := excludedBy(ad, req.Exclude); reason != "" {
				rep.filter(reason)
				continue
			}
			if len(resp.Ads[div]) == counts[div] {
				rep.filter("over_count")
				continue
			}
			resp.Ads[div] = append(resp.Ads[div], ad)
		}
	}
	slices.Sort(rep.Unknown)
	return resp, rep, nil
}

// decodeResponse turns one exchange into the answer or a domain error
// (pure): a 2xx body is parsed, then interpret translates whatever went
// wrong. ctxErr, when not nil, reports the call context's state after a
// failure (a deadline makes it a timeout).
func decodeResponse(o outcome, req decision.Request, meta callMeta, ctxErr func() error) (decision.Response, parseReport, error) {
	var resp decision.Response
	var rep parseReport
	if o.err == nil && o.status >= 200 && o.status < 300 {
		resp, rep, o.err = parseResponse(o.body, req, meta)
	}
	if o.err != nil && ctxErr != nil {
		o.ctxErr = ctxErr()
	}
	if err := interpret(o); err != nil {
		return decision.Response{}, parseReport{}, err
	}
	return resp, rep, nil
}

// decisionID derives an Ad.ID (see parseResponse).
func decisionID(div string, index int, impressionURL, callID string) string {
	h := sha256.New()
	h.Write([]byte(div))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(index), 10))
	h.Write([]byte{0})
	h.Write([]byte(impressionURL))
	if impressionURL == "" {
		h.Write([]byte{0})
		h.Write([]byte(callID))
	}
	var sum [sha256.Size]byte
	return "kvl_" + strings.ToLower(b32.EncodeToString(h.Sum(sum[:0])[:16]))
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func adOf(div string, index int, d Decision, meta callMeta) decision.Ad {
	ad := decision.Ad{
		ID:           decisionID(div, index, d.ImpressionURL, meta.CallID),
		Source:       Source,
		AdID:         idString(d.AdID),
		CreativeID:   idString(d.CreativeID),
		CampaignID:   idString(d.CampaignID),
		FlightID:     idString(d.FlightID),
		AdvertiserID: idString(d.AdvertiserID),
		Creative:     creativeOf(d.Contents),
		Price:        priceOf(d.Pricing),
		Tracking: decision.Tracking{
			ImpressionURL: d.ImpressionURL,
			ClickURL:      d.ClickURL,
			ExpiresAt:     meta.Now.Add(DecisionTTL),
		},
	}
	ad.Categories = categoriesOf(ad.Creative.Data)
	for _, e := range d.Events {
		if e.URL == "" {
			continue
		}
		if ad.Tracking.Events == nil {
			ad.Tracking.Events = make(map[int]string, len(d.Events))
		}
		ad.Tracking.Events[e.ID] = e.URL
	}
	return ad
}

func idString(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

// creativeOf reads what to render from a decision's contents:
//   - an image content (template "image", or data.imageUrl) gives
//     ImageURL, Width and Height from data, and Format "banner";
//   - an html or raw content that is not an image gives HTML (its body)
//     and Format "html";
//   - a custom template gives Format "native";
//   - Title is data.title of the first content that has one;
//   - data.customData becomes Data (numbers as json.Number) and may carry
//     title (which wins over data.title), body (or description), cta (or
//     callToAction, ctaText) and imageUrl, which fill the fields still
//     empty; with customData and no other format, Format is "native".
//
// Other content types (css, js) are ignored.
func creativeOf(contents []Content) decision.Creative {
	var c decision.Creative
	var custom map[string]any
	for _, ct := range contents {
		data := ct.Data
		if m, ok := data["customData"].(map[string]any); ok && custom == nil {
			custom = m
		}
		switch {
		case ct.Template == "image" || str(data, "imageUrl") != "":
			c.Format = "banner"
			c.ImageURL = cmp.Or(c.ImageURL, str(data, "imageUrl"))
			c.Width = cmp.Or(c.Width, integer(data, "width"))
			c.Height = cmp.Or(c.Height, integer(data, "height"))
		case (ct.Type == "html" || ct.Type == "raw") && ct.Body != "":
			c.HTML = cmp.Or(c.HTML, ct.Body)
			c.Format = cmp.Or(c.Format, "html")
		case ct.CustomTemplate != "":
			c.Format = cmp.Or(c.Format, "native")
		}
		c.Title = cmp.Or(c.Title, str(data, "title"))
	}
	if custom != nil {
		c.Data = custom
		c.Title = cmp.Or(str(custom, "title"), c.Title)
		c.Body = cmp.Or(c.Body, str(custom, "body"), str(custom, "description"))
		c.CallToAction = cmp.Or(c.CallToAction, str(custom, "cta"), str(custom, "callToAction"), str(custom, "ctaText"))
		c.ImageURL = cmp.Or(c.ImageURL, str(custom, "imageUrl"))
		if c.Format == "" {
			c.Format = "native"
		}
	}
	return c
}

// str returns m[key] as text when it is a string or a number.
func str(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// integer returns m[key] as an int when it is an integral number or text.
func integer(m map[string]any, key string) int {
	n, err := strconv.Atoi(str(m, key))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// categoriesOf reads customData.categories: an array of strings, or one
// comma-separated string.
func categoriesOf(custom map[string]any) []string {
	var out []string
	switch v := custom["categories"].(type) {
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	case string:
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// excludedBy returns why ad is excluded ("" when it is not).
func excludedBy(ad decision.Ad, ex decision.Exclusions) string {
	switch {
	case ad.AdvertiserID != "" && slices.Contains(ex.Advertisers, ad.AdvertiserID):
		return "advertiser"
	case ad.CreativeID != "" && slices.Contains(ex.Creatives, ad.CreativeID):
		return "creative"
	case slices.ContainsFunc(ad.Categories, func(c string) bool { return slices.Contains(ex.Categories, c) }):
		return "category"
	}
	return ""
}

// priceOf maps pricing onto a decision.Price. Model from rateType: 1 flat,
// 2 CPM, 3 CPC, 4 to 6 CPA, others "". Micros is the rate the ad pays in
// its model: clearPrice (what an auction cleared at) when positive, else
// price, else for CPM revenue (one impression's) times 1000. Amounts are
// decimal text (json.Number) converted exactly to micros, rounding half to
// even once, here; unusable amounts (negative, too large) give 0.
func priceOf(p *Pricing) decision.Price {
	if p == nil {
		return decision.Price{}
	}
	var model decision.PricingModel
	switch p.RateType {
	case 1:
		model = decision.Flat
	case 2:
		model = decision.CPM
	case 3:
		model = decision.CPC
	case 4, 5, 6:
		model = decision.CPA
	}
	for _, n := range []json.Number{p.ClearPrice, p.Price} {
		if m, ok := toMicros(n, 1); ok && m > 0 {
			return decision.Price{Model: model, Micros: m}
		}
	}
	if model == decision.CPM {
		if m, ok := toMicros(p.Revenue, 1000); ok && m > 0 {
			return decision.Price{Model: model, Micros: m}
		}
	}
	return decision.Price{Model: model}
}

// maxExponent bounds a decimal exponent, so that a hostile "1e999999999"
// cannot make big.Rat allocate gigabytes.
const maxExponent = 30

var million = big.NewInt(1_000_000)

// toMicros converts a decimal amount times scale to micros, exactly,
// rounding half to even. ok is false for empty, malformed, negative or
// out-of-range amounts.
func toMicros(n json.Number, scale int64) (micros int64, ok bool) {
	s := string(n)
	if s == "" || len(s) > 64 {
		return 0, false
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(s[i+1:])
		if err != nil || exp > maxExponent || exp < -maxExponent {
			return 0, false
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 {
		return 0, false
	}
	num := new(big.Int).Mul(r.Num(), million)
	num.Mul(num, big.NewInt(scale))
	den := r.Denom()
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	switch m.Lsh(m, 1).Cmp(den) {
	case 1:
		q.Add(q, big.NewInt(1))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(1))
		}
	}
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}
