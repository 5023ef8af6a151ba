package decision

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/adshare/adshare/internal/errs"
)

// Decider chooses ads.
type Decider interface {
	// Decide returns ads for the request's placements. A placement with no
	// ad maps to an empty list. Errors: ErrInvalidRequest when the request
	// breaks a rule (see Request.Validate), ErrTimeout when ctx or the
	// implementation's own deadline ran out, ErrRateLimited when the ad
	// server refuses for load, ErrUnavailable when it cannot answer. All
	// implementations return within ctx's deadline.
	Decide(ctx context.Context, req Request) (Response, error)
}

// Immediate is implemented by a Decider, or a FrequencyCounter, that
// answers from memory without waiting on anything: the local engine over
// an in-process frequency counter. A caller may skip the deadline it
// would set on each call to one that reports true (adspace does: a timer
// per fill is a measurable share of its cost); Decide still honours the
// context it is given.
type Immediate interface {
	// Immediate reports whether calls now answer without waiting.
	Immediate() bool
}

// IsImmediate reports whether v implements Immediate and reports true.
func IsImmediate(v any) bool {
	i, ok := v.(Immediate)
	return ok && i.Immediate()
}

// Errors every Decider returns (wrapped with details; compare with errors.Is).
var (
	ErrInvalidRequest = errs.New(errs.Invalid, "invalid_decision_request", "the decision request is not valid")
	ErrTimeout        = errs.New(errs.Unavailable, "decision_timeout", "the ad server did not answer in time")
	ErrUnavailable    = errs.New(errs.Unavailable, "decision_unavailable", "the ad server is unavailable")
	ErrRateLimited    = errs.New(errs.RateLimited, "decision_rate_limited", "the ad server is refusing requests for load")
)

// Limits of a request.
const (
	MaxPlacements = 10
	MaxCount      = 20 // ads per placement (Kevel's multi-winner maximum)
	MaxKeywords   = 50
	MaxProperties = 50
	maxStringLen  = 512
)

// Request asks for ads.
type Request struct {
	// Placements are the slots to fill, at least one and at most
	// MaxPlacements, with unique IDs.
	Placements []Placement
	// UserKey is the viewer's pseudonymous key for frequency capping and
	// targeting; empty when consent or an opt-out forbids tracking the viewer.
	UserKey string
	// Keywords are matched against ads' keywords (normalised by the caller).
	Keywords []string
	// Categories describe the context (the space's categories), for engines
	// that target by category.
	Categories []string
	// Properties are context key/values (screen, locale, app version...).
	Properties map[string]string
	// Exclude lists what must not be chosen (the owner's blocks).
	Exclude Exclusions
	// Consent is the viewer's privacy state.
	Consent Consent
	// IP and UserAgent are the viewer's (forwarded, never the server's).
	IP        string
	UserAgent string
	// URL and Referrer describe the page or screen, when meaningful.
	URL      string
	Referrer string
	// Time is the moment of the request (the engine's clock when zero).
	Time time.Time
}

// Placement is one slot to fill.
type Placement struct {
	// ID names the slot; unique within the request (Kevel's divName).
	ID string
	// AdTypes are the ad server's ad type (size) ids the slot renders.
	AdTypes []int
	// Formats are the first-party formats the slot renders, such as
	// "banner" or "native"; used by the local engine.
	Formats []string
	// SiteID and ZoneIDs restrict where the ad server looks (0 / none: the
	// configured default).
	SiteID  int64
	ZoneIDs []int64
	// Count is how many ads to return, 1 to MaxCount (0 means 1).
	Count int
	// Properties are slot-level key/values.
	Properties map[string]string
	// EventIDs are custom events whose tracking URLs to return.
	EventIDs []int
}

// Exclusions are what a decision must not include.
type Exclusions struct {
	// Advertisers by id (the owner's blocked advertisers).
	Advertisers []string
	// Categories of ads (the owner's blocked categories).
	Categories []string
	// Creatives by id (already shown, or reported).
	Creatives []string
	// Keywords an ad must not target (the owner's blocked keywords);
	// honoured by engines that know ads' keywords.
	Keywords []string
}

// Consent is the viewer's privacy state.
type Consent struct {
	// GDPRApplies is true when the viewer is in GDPR scope.
	GDPRApplies bool
	// GDPR is true when the viewer consented to personalised advertising.
	GDPR bool
	// TCString is the IAB TCF consent string, when the app has one.
	TCString string
	// DoNotSell is the viewer's CCPA/CPRA opt-out of sale and sharing.
	DoNotSell bool
}

// MayTrack reports whether a user key may be sent: not when the viewer
// opted out of sale or sharing, nor in GDPR scope without consent.
func (c Consent) MayTrack() bool {
	if c.DoNotSell {
		return false
	}
	return !c.GDPRApplies || c.GDPR
}

// CountOrOne returns the placement's count, 1 when unset.
func (p Placement) CountOrOne() int {
	if p.Count <= 0 {
		return 1
	}
	return p.Count
}

// Validate checks the request: 1 to MaxPlacements placements with unique
// non-empty IDs and at least one ad type or format each, counts within 1 to
// MaxCount, bounded keywords and properties, valid UTF-8 everywhere, and no
// user key when consent forbids one. It returns nil or an error matching
// ErrInvalidRequest with a message per field.
func (r Request) Validate() error {
	var f errs.Fields
	switch {
	case len(r.Placements) == 0:
		f.Add("placements", "at least one placement is required")
	case len(r.Placements) > MaxPlacements:
		f.Add("placements", msgPlacements)
	}
	for i, p := range r.Placements {
		// Field names and messages are built only for what failed: a
		// valid request, the one every fill sends, formats nothing.
		check := func(ok bool, field, msg string) {
			if !ok {
				f.Add("placements/"+strconv.Itoa(i)+"/"+field, msg)
			}
		}
		check(p.ID != "" && validString(p.ID), "id", "is required")
		check(!slices.ContainsFunc(r.Placements[:i], func(q Placement) bool { return q.ID == p.ID }), "id", "must be unique")
		check(len(p.AdTypes) > 0 || len(p.Formats) > 0, "ad_types", "at least one ad type or format is required")
		check(p.Count >= 0 && p.Count <= MaxCount, "count", msgCount)
		check(validMap(p.Properties), "properties", msgProperties)
		check(allValid(p.Formats), "formats", "must be valid UTF-8")
	}
	f.Check(len(r.Keywords) <= MaxKeywords && allValid(r.Keywords), "keywords", msgKeywords)
	f.Check(len(r.Categories) <= MaxKeywords && allValid(r.Categories), "categories", msgCategories)
	f.Check(validMap(r.Properties), "properties", msgProperties)
	f.Check(validString(r.UserKey) && validString(r.IP) && validString(r.UserAgent) && validString(r.URL) && validString(r.Referrer),
		"context", "strings must be valid UTF-8 and at most 512 bytes")
	f.Check(r.UserKey == "" || r.Consent.MayTrack(), "user_key", "must be empty when consent does not allow tracking the viewer")
	return f.Err(ErrInvalidRequest)
}

// Validate's messages that name a limit, formatted once.
var (
	msgPlacements = fmt.Sprintf("at most %d placements", MaxPlacements)
	msgCount      = fmt.Sprintf("must be between 1 and %d", MaxCount)
	msgProperties = fmt.Sprintf("at most %d valid UTF-8 entries", MaxProperties)
	msgKeywords   = fmt.Sprintf("at most %d valid UTF-8 keywords", MaxKeywords)
	msgCategories = fmt.Sprintf("at most %d valid UTF-8 categories", MaxKeywords)
)

func validString(s string) bool { return len(s) <= maxStringLen && utf8.ValidString(s) }

func allValid(ss []string) bool {
	return !slices.ContainsFunc(ss, func(s string) bool { return !validString(s) })
}

func validMap(m map[string]string) bool {
	if len(m) > MaxProperties {
		return false
	}
	for k, v := range m {
		if k == "" || !validString(k) || !validString(v) {
			return false
		}
	}
	return true
}

// Response is a Decider's answer.
type Response struct {
	// UserKey is the key the ad server used (generated when none was sent,
	// and consent allows keeping it).
	UserKey string
	// Ads maps each placement ID to its ads, best first; empty for no fill.
	Ads map[string][]Ad
}

// Ad is one chosen ad with what the app renders and what the server tracks.
type Ad struct {
	// ID identifies this decision (unique per decision, not per ad).
	ID string
	// Source is the engine that chose the ad: "kevel", "local" or "house".
	Source string
	// AdID, CreativeID, CampaignID, FlightID and AdvertiserID identify what
	// was chosen, in the engine's own id space.
	AdID, CreativeID, CampaignID, FlightID, AdvertiserID string
	// Creative is what the app renders.
	Creative Creative
	// Categories of the ad, for the owner's blocks.
	Categories []string
	// Price is what one impression (CPM/1000) or click (CPC) earns.
	Price Price
	// Tracking holds the ad server's own pixels; never sent to clients.
	Tracking Tracking
}

// Creative is what the app renders.
type Creative struct {
	Format       string // "banner", "native", "html", ...
	Title        string
	Body         string
	ImageURL     string
	Width        int
	Height       int
	CallToAction string
	// LandingURL is where a click ends, when the engine knows it (the ad
	// server's click tracking URL redirects there otherwise).
	LandingURL string
	// HTML is raw markup for HTML creatives; apps must render it sandboxed.
	HTML string
	// Data holds engine-specific fields (Kevel's data.customData).
	Data map[string]any
}

// PricingModel says what an ad is paid for.
type PricingModel string

// Pricing models.
const (
	CPM  PricingModel = "cpm"
	CPC  PricingModel = "cpc"
	Flat PricingModel = "flat"
	CPA  PricingModel = "cpa"
)

// Price is the ad's price in micros of the currency unit (no floats).
type Price struct {
	Model PricingModel
	// Micros per thousand impressions (CPM) or per click (CPC).
	Micros int64
}

// Tracking holds the ad server's tracking URLs.
type Tracking struct {
	ImpressionURL string
	ClickURL      string
	// Events maps custom event ids to their URLs.
	Events map[int]string
	// ExpiresAt is when the ad server stops counting these URLs.
	ExpiresAt time.Time
}
