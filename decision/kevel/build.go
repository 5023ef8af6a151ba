package kevel

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/errs"
)

// apiKeyHeader carries the API key (the spec's ApiKeyAuth scheme).
const apiKeyHeader = "X-Adzerk-ApiKey"

// outgoing is one decision call, ready to send.
type outgoing struct {
	URL    string
	Header http.Header
	Body   DecisionRequest
}

// buildRequest maps a valid decision.Request onto Kevel's (pure: no I/O,
// no clock). cfg has its defaults applied. It returns an error matching
// decision.ErrInvalidRequest when Kevel cannot express the request: a
// placement without ad types or site, or an IP that is not one.
//
// The mapping:
//   - Placement.ID → divName; AdTypes, ZoneIDs, EventIDs as they are;
//     SiteID, else Config.SiteID; networkId from Config; Count → count
//     only above 1 (without it Kevel answers one object, the common case,
//     and count is beta); Formats are not Kevel's (ignored).
//   - Request.Properties and Placement.Properties → each placement's
//     properties (strings), the placement's value winning.
//   - UserKey → user.key, only when Consent.MayTrack (otherwise no user:
//     Kevel generates a key, which parseResponse then drops).
//   - Keywords, URL, Referrer, IP → the same fields; UserAgent → the
//     User-Agent header (Kevel's header-based targeting reads it).
//   - Exclude.Creatives → blockedCreatives (numeric ids; others ignored).
//     Exclude.Advertisers and Exclude.Categories cannot be sent: they are
//     applied to the answer (parseResponse).
//   - Consent → consent{gdpr, gdprConsentString, gdprConsentRequired}.
//   - enableBotFiltering false (server-side calls are not bots) and
//     includePricingData true (the price is needed).
//   - Categories and Time have no Kevel field (ignored).
//
// Config.Customize then edits the result.
func buildRequest(cfg *Config, req decision.Request) (outgoing, error) {
	var f errs.Fields
	body := DecisionRequest{
		Placements:         make([]Placement, 0, len(req.Placements)),
		Keywords:           req.Keywords,
		URL:                req.URL,
		Referrer:           req.Referrer,
		IP:                 req.IP,
		EnableBotFiltering: ptr(false),
		IncludePricingData: ptr(true),
	}
	if req.IP != "" {
		if _, err := netip.ParseAddr(req.IP); err != nil {
			f.Add("ip", "must be an IPv4 or IPv6 address")
		}
	}
	for i, p := range req.Placements {
		at := fmt.Sprintf("placements/%d/", i)
		f.Check(len(p.AdTypes) > 0, at+"ad_types", "Kevel needs at least one ad type")
		site := p.SiteID
		if site == 0 {
			site = cfg.SiteID
		}
		f.Check(site > 0, at+"site_id", "Kevel needs a site: set Placement.SiteID or the client's Config.SiteID")
		wp := Placement{
			DivName:   p.ID,
			NetworkID: cfg.NetworkID,
			SiteID:    site,
			AdTypes:   p.AdTypes,
			ZoneIDs:   p.ZoneIDs,
			EventIDs:  p.EventIDs,
		}
		if n := p.CountOrOne(); n > 1 {
			wp.Count = n
		}
		if len(req.Properties)+len(p.Properties) > 0 {
			props := make(map[string]string, len(req.Properties)+len(p.Properties))
			maps.Copy(props, req.Properties)
			maps.Copy(props, p.Properties)
			wp.Properties = make(map[string]json.RawMessage, len(props))
			for k, v := range props {
				wp.Properties[k] = jsonString(v)
			}
		}
		body.Placements = append(body.Placements, wp)
	}
	if err := f.Err(decision.ErrInvalidRequest); err != nil {
		return outgoing{}, err
	}
	for _, c := range req.Exclude.Creatives {
		if id, err := strconv.ParseInt(c, 10, 64); err == nil && id > 0 {
			body.BlockedCreatives = append(body.BlockedCreatives, id)
		}
	}
	if req.UserKey != "" && req.Consent.MayTrack() {
		body.User = &User{Key: req.UserKey}
	}
	if c := req.Consent; c.GDPRApplies || c.GDPR || c.TCString != "" {
		body.Consent = &Consent{GDPR: ptr(c.GDPR), GDPRConsentString: c.TCString}
		if c.GDPRApplies {
			body.Consent.GDPRConsentRequired = ptr(true)
		}
	}
	if cfg.Customize != nil {
		cfg.Customize(req, &body)
	}
	h := make(http.Header, 4)
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	ua := req.UserAgent
	if ua == "" {
		ua = cfg.UserAgent
	}
	h.Set("User-Agent", ua)
	if cfg.APIKey != "" {
		h.Set(apiKeyHeader, string(cfg.APIKey))
	}
	return outgoing{URL: cfg.BaseURL + "/api/v2", Header: h, Body: body}, nil
}

func ptr[T any](v T) *T { return &v }

// jsonString encodes s as a JSON string (never fails: invalid UTF-8 was
// refused by Request.Validate, and is replaced anyway).
func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
