package kevel

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// The wire types below are the Decision API's JSON, field for field as in
// the OpenAPI spec (adzerk-api-specification, decision-openapi-3.yaml). They
// are exported so that Config.Customize can set the fields a
// decision.Request cannot express. Each keeps the keys it does not know in
// Extra: they are sent as they are (request) and kept when decoding
// (response), because Kevel's server runs ahead of its spec and generated
// clients have lost fields that way (skipFilters, user.segments...).
//
// Ids are int64: the spec leaves their width open.

// DecisionRequest is the body of POST /api/v2.
type DecisionRequest struct {
	// Placements are the slots to fill; required, at least one.
	Placements []Placement `json:"placements"`
	// User carries the UserDB key; nil lets Kevel generate one.
	User *User `json:"user,omitempty"`
	// Keywords for keyword targeting.
	Keywords []string `json:"keywords,omitempty"`
	// URL and Referrer describe the page.
	URL      string `json:"url,omitempty"`
	Referrer string `json:"referrer,omitempty"`
	// IP is the end user's address (geo-targeting).
	IP string `json:"ip,omitempty"`
	// BlockedCreatives are creative ids never to choose.
	BlockedCreatives []int64 `json:"blockedCreatives,omitempty"`
	// IsMobile is deprecated by Kevel.
	IsMobile *bool `json:"isMobile,omitempty"`
	// IncludePricingData adds Pricing to each decision.
	IncludePricingData *bool `json:"includePricingData,omitempty"`
	// NoTrack restricts the choice to ads that honour Do Not Track.
	NoTrack *bool `json:"notrack,omitempty"`
	// EnableBotFiltering is for requests made straight from a browser.
	EnableBotFiltering *bool `json:"enableBotFiltering,omitempty"`
	// EnableUserDBIP uses the IP stored on the UserDB record.
	EnableUserDBIP *bool `json:"enableUserDBIP,omitempty"`
	// Consent is the GDPR state of the request.
	Consent *Consent `json:"consent,omitempty"`
	// DeviceID is the IFA/IDFA, for RTB only.
	DeviceID string `json:"deviceID,omitempty"`
	// Parallel decides the placements in parallel (RTB only).
	Parallel *bool `json:"parallel,omitempty"`
	// IntendedLatitude, IntendedLongitude and Radius drive distance
	// targeting (beta).
	IntendedLatitude  *float64 `json:"intendedLatitude,omitempty"`
	IntendedLongitude *float64 `json:"intendedLongitude,omitempty"`
	Radius            *float64 `json:"radius,omitempty"`
	// IncludeMatchedPoints returns MatchedPoints in each decision.
	IncludeMatchedPoints *bool `json:"includeMatchedPoints,omitempty"`
	// SearchTerm drives search-term targeting.
	SearchTerm string `json:"searchTerm,omitempty"`
	// Extra holds fields this type does not know; sent as they are.
	Extra map[string]json.RawMessage `json:"-"`
}

// Placement is one slot of a DecisionRequest.
type Placement struct {
	// DivName names the slot; the key of its decisions in the response.
	DivName string `json:"divName"`
	// NetworkID and SiteID say where to look; both required by Kevel.
	NetworkID int64 `json:"networkId,omitempty"`
	SiteID    int64 `json:"siteId,omitempty"`
	// AdTypes are the ad sizes the slot accepts; at least one.
	AdTypes []int `json:"adTypes"`
	// ZoneIDs restrict the choice to zones.
	ZoneIDs []int64 `json:"zoneIds,omitempty"`
	// CampaignID, FlightID and AdID restrict the choice to one campaign,
	// flight or ad.
	CampaignID int64 `json:"campaignId,omitempty"`
	FlightID   int64 `json:"flightId,omitempty"`
	AdID       int64 `json:"adId,omitempty"`
	// ClickURL overrides the ad's click-through URL.
	ClickURL string `json:"clickUrl,omitempty"`
	// Properties are custom-targeting key/values.
	Properties map[string]json.RawMessage `json:"properties,omitempty"`
	// EventIDs are the custom events to get tracking URLs for.
	EventIDs []int `json:"eventIds,omitempty"`
	// Overrides are advertiser/campaign/flight/ad overrides (header bidding).
	Overrides json.RawMessage `json:"overrides,omitempty"`
	// ContentKeys are ContentDB lookups, schema name to content key.
	ContentKeys map[string]string `json:"contentKeys,omitempty"`
	// Count is the multi-winner maximum, 1 to 20 (beta); 0 omits it, and
	// the placement's decision is then a single object.
	Count int `json:"count,omitempty"`
	// Proportionality fills multi-winner slots in proportion to goals.
	Proportionality *bool `json:"proportionality,omitempty"`
	// EcpmPartition is deprecated for EcpmPartitions.
	EcpmPartition  string   `json:"ecpmPartition,omitempty"`
	EcpmPartitions []string `json:"ecpmPartitions,omitempty"`
	// EventMultiplier multiplies the placement's events.
	EventMultiplier int `json:"eventMultiplier,omitempty"`
	// SkipSelection and AdQuery are in the spec without a description.
	SkipSelection *bool           `json:"skipSelection,omitempty"`
	AdQuery       json.RawMessage `json:"adQuery,omitempty"`
	// FloorPrice and FloorCPC are price floors.
	FloorPrice *float64 `json:"floorPrice,omitempty"`
	FloorCPC   *float64 `json:"floorCpc,omitempty"`
	// SkipFilters turns targeting filters off.
	SkipFilters *SkipFilters `json:"skipFilters,omitempty"`
	// Extra holds fields this type does not know; sent as they are.
	Extra map[string]json.RawMessage `json:"-"`
}

// User is the request's (and the response's) user.
type User struct {
	// Key is the UserDB key.
	Key string `json:"key,omitempty"`
	// Group is the user's cohort.
	Group *int64 `json:"group,omitempty"`
	// Segments replace the UserDB record's segments for this request.
	Segments []int32 `json:"segments,omitempty"`
	// Extra holds fields this type does not know.
	Extra map[string]json.RawMessage `json:"-"`
}

// Consent is the request's consent object (free-form in the spec; these
// are the documented keys).
type Consent struct {
	// GDPR is true when the user consented (Kevel's default is false).
	GDPR *bool `json:"gdpr,omitempty"`
	// GDPRConsentString is the IAB TCF string, passed on to RTB.
	GDPRConsentString string `json:"gdprConsentString,omitempty"`
	// GDPRConsentRequired forces GDPR scope whatever the IP's country.
	GDPRConsentRequired *bool `json:"gdprConsentRequired,omitempty"`
	// GDPRVendorID lets Kevel derive GDPR from the TCF string.
	GDPRVendorID *int64 `json:"gdprVendorId,omitempty"`
	// Extra holds fields this type does not know.
	Extra map[string]json.RawMessage `json:"-"`
}

// SkipFilters turns targeting filters off for a placement.
type SkipFilters struct {
	Distance       *bool `json:"distance,omitempty"`
	Facet          *bool `json:"facet,omitempty"`
	Geodistance    *bool `json:"geodistance,omitempty"`
	Geolocation    *bool `json:"geolocation,omitempty"`
	Keyword        *bool `json:"keyword,omitempty"`
	Location       *bool `json:"location,omitempty"`
	PlacementLimit *bool `json:"placementLimit,omitempty"`
	SearchTerm     *bool `json:"searchTerm,omitempty"`
	SiteZone       *bool `json:"siteZone,omitempty"`
	// Extra holds filters this type does not know.
	Extra map[string]json.RawMessage `json:"-"`
}

// DecisionResponse is the answer of POST /api/v2.
type DecisionResponse struct {
	// User.Key is the key Kevel used: the one sent, or a generated one.
	User *User `json:"user,omitempty"`
	// Decisions maps divName to its decisions.
	Decisions map[string]Decisions `json:"decisions"`
	// Explain is present in explainer mode only.
	Explain json.RawMessage `json:"explain,omitempty"`
	// Extra holds fields this type does not know.
	Extra map[string]json.RawMessage `json:"-"`
}

// Decisions is one placement's decisions. Kevel sends null (or nothing)
// for no ad, an object without count, and an array with count; all three
// decode to a slice (null entries in an array are skipped).
type Decisions []Decision

// UnmarshalJSON implements json.Unmarshaler.
func (d *Decisions) UnmarshalJSON(b []byte) error {
	if !json.Valid(b) {
		return errInvalidJSON
	}
	return d.decode(b)
}

// decode decodes valid JSON.
func (d *Decisions) decode(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*d = nil
	case b[0] == '{':
		var one Decision
		if err := one.decode(b); err != nil {
			return err
		}
		*d = Decisions{one}
	case b[0] == '[':
		out := Decisions{}
		var err error
		eachElement(b, func(v []byte) {
			if err != nil || bytes.Equal(v, []byte("null")) {
				return
			}
			var one Decision
			err = one.decode(v)
			out = append(out, one)
		})
		if err != nil {
			return err
		}
		*d = out
	default:
		return fmt.Errorf("kevel: a placement's decisions must be null, an object or an array, not %.20s", b)
	}
	return nil
}

// Decision is one chosen ad.
type Decision struct {
	AdID         int64 `json:"adId,omitempty"`
	AdvertiserID int64 `json:"advertiserId,omitempty"`
	CreativeID   int64 `json:"creativeId,omitempty"`
	FlightID     int64 `json:"flightId,omitempty"`
	CampaignID   int64 `json:"campaignId,omitempty"`
	PriorityID   int64 `json:"priorityId,omitempty"`
	// ClickURL records a click and redirects to the landing page.
	ClickURL string `json:"clickUrl,omitempty"`
	// Contents are what to render.
	Contents []Content `json:"contents,omitempty"`
	// ImpressionURL records one impression per GET (no deduplication;
	// expires 24 h after the decision).
	ImpressionURL string `json:"impressionUrl,omitempty"`
	// Events are the custom events' tracking URLs asked for by eventIds.
	Events []Event `json:"events,omitempty"`
	// MatchedPoints are there with includeMatchedPoints.
	MatchedPoints []MatchedPoint `json:"matchedPoints,omitempty"`
	// Pricing is there with includePricingData.
	Pricing *Pricing `json:"pricing,omitempty"`
	// Extra holds fields this type does not know.
	Extra map[string]json.RawMessage `json:"-"`
}

// Event is a custom event's tracking URL.
type Event struct {
	ID  int    `json:"id"`
	URL string `json:"url"`
}

// Content is one piece of a creative: type "html" with template "image"
// for image ads (Data holds imageUrl, title, width, height...), raw HTML
// in Body, or a custom template with Data["customData"]. Content and
// Pricing are decoded as part of a Decision, which fills their Extra and
// decodes Data's numbers as json.Number.
type Content struct {
	Type           string         `json:"type,omitempty"`
	Template       string         `json:"template,omitempty"`
	CustomTemplate string         `json:"customTemplate,omitempty"`
	Data           map[string]any `json:"data,omitempty"`
	Body           string         `json:"body,omitempty"`
	// Extra holds fields this type does not know.
	Extra map[string]json.RawMessage `json:"-"`
}

// MatchedPoint is a point that matched distance targeting. The spec says
// strings; numbers are accepted too.
type MatchedPoint struct {
	Lat LooseString `json:"lat"`
	Lon LooseString `json:"lon"`
}

// Pricing is a decision's price data (with includePricingData). Amounts
// stay decimal text (json.Number) until converted to micros, once.
type Pricing struct {
	Price      json.Number `json:"price,omitempty"`
	ClearPrice json.Number `json:"clearPrice,omitempty"`
	Revenue    json.Number `json:"revenue,omitempty"`
	// RateType: 1 flat, 2 CPM, 3 CPC, 4 CPA view, 5 CPA click, 6 CPA view
	// and click.
	RateType int         `json:"rateType,omitempty"`
	ECPM     json.Number `json:"eCPM,omitempty"`
	// Extra holds fields this type does not know.
	Extra map[string]json.RawMessage `json:"-"`
}

// JSONObject is a free-form JSON object whose numbers decode as
// json.Number, so that large integers and decimals keep their text.
type JSONObject map[string]any

// UnmarshalJSON implements json.Unmarshaler.
func (o *JSONObject) UnmarshalJSON(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return err
	}
	*o = m
	return nil
}

// LooseString decodes a JSON string or number as text.
type LooseString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *LooseString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = LooseString(v)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		*s = ""
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = LooseString(n)
	return nil
}

// Each type with Extra marshals through a plain copy of itself (no
// methods, so no recursion) and splices Extra in; it unmarshals into the
// plain copy and keeps the keys no field claimed.

type (
	plainDecisionRequest  DecisionRequest
	plainPlacement        Placement
	plainUser             User
	plainConsent          Consent
	plainSkipFilters      SkipFilters
	plainDecisionResponse DecisionResponse
	plainDecision         Decision
	plainContent          Content
	plainPricing          Pricing
)

// MarshalJSON implements json.Marshaler.
func (r DecisionRequest) MarshalJSON() ([]byte, error) {
	return marshalExtra(plainDecisionRequest(r), r.Extra)
}

// UnmarshalJSON implements json.Unmarshaler; it merges into r.
func (r *DecisionRequest) UnmarshalJSON(b []byte) error {
	return unmarshalExtra(b, (*plainDecisionRequest)(r), &r.Extra)
}

// MarshalJSON implements json.Marshaler.
func (p Placement) MarshalJSON() ([]byte, error) { return marshalExtra(plainPlacement(p), p.Extra) }

// UnmarshalJSON implements json.Unmarshaler; it merges into p.
func (p *Placement) UnmarshalJSON(b []byte) error {
	return unmarshalExtra(b, (*plainPlacement)(p), &p.Extra)
}

// MarshalJSON implements json.Marshaler.
func (u User) MarshalJSON() ([]byte, error) { return marshalExtra(plainUser(u), u.Extra) }

// UnmarshalJSON implements json.Unmarshaler; it merges into u.
func (u *User) UnmarshalJSON(b []byte) error { return unmarshalExtra(b, (*plainUser)(u), &u.Extra) }

// MarshalJSON implements json.Marshaler.
func (c Consent) MarshalJSON() ([]byte, error) { return marshalExtra(plainConsent(c), c.Extra) }

// UnmarshalJSON implements json.Unmarshaler; it merges into c.
func (c *Consent) UnmarshalJSON(b []byte) error {
	return unmarshalExtra(b, (*plainConsent)(c), &c.Extra)
}

// MarshalJSON implements json.Marshaler.
func (s SkipFilters) MarshalJSON() ([]byte, error) {
	return marshalExtra(plainSkipFilters(s), s.Extra)
}

// UnmarshalJSON implements json.Unmarshaler; it merges into s.
func (s *SkipFilters) UnmarshalJSON(b []byte) error {
	return unmarshalExtra(b, (*plainSkipFilters)(s), &s.Extra)
}

// MarshalJSON implements json.Marshaler.
func (r DecisionResponse) MarshalJSON() ([]byte, error) {
	return marshalExtra(plainDecisionResponse(r), r.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *DecisionResponse) UnmarshalJSON(b []byte) error {
	if !json.Valid(b) {
		return errInvalidJSON
	}
	return r.decode(b)
}

// decode decodes valid JSON. It walks the keys itself rather than
// through encoding/json so that the decisions, most of the bytes, are
// validated and decoded once each, not once per nesting level.
func (r *DecisionResponse) decode(b []byte) error {
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		return errors.New("kevel: a decision response must be a JSON object")
	}
	*r = DecisionResponse{}
	var err error
	eachKey(b, func(key string, val []byte) {
		if err != nil {
			return
		}
		switch key {
		case "user":
			err = json.Unmarshal(val, &r.User)
		case "explain":
			r.Explain = slices.Clip(val)
		case "decisions":
			if bytes.Equal(val, []byte("null")) {
				return
			}
			if val[0] != '{' {
				err = errors.New("kevel: decisions must be an object")
				return
			}
			r.Decisions = map[string]Decisions{}
			eachKey(val, func(div string, dv []byte) {
				if err != nil {
					return
				}
				var ds Decisions
				err = ds.decode(dv)
				r.Decisions[div] = ds
			})
		default:
			addExtra(&r.Extra, key, val)
		}
	})
	return err
}

// MarshalJSON implements json.Marshaler.
func (d Decision) MarshalJSON() ([]byte, error) { return marshalExtra(plainDecision(d), d.Extra) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Decision) UnmarshalJSON(b []byte) error {
	if !json.Valid(b) {
		return errInvalidJSON
	}
	return d.decode(b)
}

// decode decodes valid JSON in one encoding/json pass (numbers in
// contents' data as json.Number), then collects the unknown keys of the
// decision, its contents and its pricing with a plain scan.
func (d *Decision) decode(b []byte) error {
	*d = Decision{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode((*plainDecision)(d)); err != nil {
		return err
	}
	known := jsonNames(reflect.TypeFor[plainDecision]())
	eachKey(b, func(key string, val []byte) {
		switch {
		case key == "contents" && len(val) > 0 && val[0] == '[':
			i := 0
			eachElement(val, func(cv []byte) {
				if i < len(d.Contents) {
					collectExtra[plainContent](cv, &d.Contents[i].Extra)
				}
				i++
			})
		case key == "pricing" && d.Pricing != nil:
			collectExtra[plainPricing](val, &d.Pricing.Extra)
		case !known[key]:
			addExtra(&d.Extra, key, val)
		}
	})
	return nil
}

// MarshalJSON implements json.Marshaler.
func (c Content) MarshalJSON() ([]byte, error) { return marshalExtra(plainContent(c), c.Extra) }

// MarshalJSON implements json.Marshaler.
func (p Pricing) MarshalJSON() ([]byte, error) { return marshalExtra(plainPricing(p), p.Extra) }

var errInvalidJSON = errors.New("kevel: invalid JSON")

// knownKeys maps a struct type to the JSON names of its fields.
var knownKeys sync.Map // reflect.Type → map[string]bool

func jsonNames(t reflect.Type) map[string]bool {
	if v, ok := knownKeys.Load(t); ok {
		return v.(map[string]bool)
	}
	names := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		names[cmp.Or(name, f.Name)] = true
	}
	knownKeys.Store(t, names)
	return names
}

var errExtraNotJSON = errors.New("kevel: an Extra value is not valid JSON")

// marshalExtra marshals plain (a struct) and adds the extra keys that no
// field of plain claims, in sorted order.
func marshalExtra[T any](plain T, extra map[string]json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(plain)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	known := jsonNames(reflect.TypeFor[T]())
	keys := slices.Sorted(maps.Keys(extra))
	out := b[:len(b)-1] // without the closing brace
	for _, k := range keys {
		if known[k] {
			continue
		}
		v := extra[k]
		if !json.Valid(v) {
			return nil, fmt.Errorf("%w: %q", errExtraNotJSON, k)
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		kb, _ := json.Marshal(k)
		out = append(out, kb...)
		out = append(out, ':')
		out = append(out, v...)
	}
	return append(out, '}'), nil
}

// unmarshalExtra decodes b into plain (a pointer to a struct) and merges
// the keys no field claims into *extra. json.Unmarshal has validated b
// when the key scan runs, so the scan need not.
func unmarshalExtra[T any](b []byte, plain *T, extra *map[string]json.RawMessage) error {
	if err := json.Unmarshal(b, plain); err != nil {
		return err
	}
	collectExtra[T](b, extra)
	return nil
}

// collectExtra adds the keys of the object b (valid JSON) that no field
// of T claims to *extra.
func collectExtra[T any](b []byte, extra *map[string]json.RawMessage) {
	known := jsonNames(reflect.TypeFor[T]())
	eachKey(b, func(key string, val []byte) {
		if !known[key] {
			addExtra(extra, key, val)
		}
	})
}

func addExtra(extra *map[string]json.RawMessage, key string, val []byte) {
	if *extra == nil {
		*extra = map[string]json.RawMessage{}
	}
	(*extra)[key] = slices.Clip(val)
}

// eachElement calls fn with each element of the JSON array b (valid JSON).
func eachElement(b []byte, fn func(val []byte)) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == ']' {
			return
		}
		vs := i
		i = skipValue(b, i)
		fn(b[vs:i])
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i++
		}
	}
}

// eachKey calls fn with each key of the JSON object b and its raw value.
// b must be valid JSON; anything but an object calls nothing.
func eachKey(b []byte, fn func(key string, val []byte)) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return
		}
		ks := i
		i = skipString(b, i)
		key := string(b[ks+1 : i-1])
		if strings.IndexByte(key, '\\') >= 0 {
			_ = json.Unmarshal(b[ks:i], &key)
		}
		i = skipSpace(b, i) + 1 // the colon
		i = skipSpace(b, i)
		vs := i
		i = skipValue(b, i)
		fn(key, b[vs:i])
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i++
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch {
	case i >= len(b):
		return i
	case b[i] == '"':
		return skipString(b, i)
	case b[i] == '{' || b[i] == '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}
