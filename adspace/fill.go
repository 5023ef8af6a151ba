package adspace

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/internal/tracing"
	"github.com/adshare/adshare/internal/uuidv7"
)

// Limits on what an app sends with a fill.
const (
	MaxContextKeywords   = 10
	MaxContextProperties = 10
	maxContextValueLen   = 64
)

// ContextProperties are the context keys an app may send with a fill
// (screen, locale and the like); others are refused, so that nothing
// personal slips into ad requests.
var ContextProperties = []string{"screen", "locale", "os", "app_version", "orientation", "section", "theme"}

// FillRequest is a viewer asking for an owner's space.
type FillRequest struct {
	Owner uuid.UUID
	// Viewer is the signed-in viewer, nil for an anonymous one.
	Viewer *auth.Principal
	// Device identifies an anonymous viewer's app install (hashed before
	// any use); ignored for signed-in viewers.
	Device string
	// Consent of an anonymous viewer, as the app reports it; a signed-in
	// viewer's consent comes from their settings.
	GDPRApplies bool
	GDPRConsent bool
	DoNotSell   bool
	// GPC is true when the request carried a Global Privacy Control signal
	// (Sec-GPC: 1): honoured as DoNotSell for signed-in and anonymous
	// viewers alike.
	GPC bool
	// Keywords and Properties describe the screen the space is on.
	Keywords   []string
	Properties map[string]string
	// Count asks for fewer ads than the space allows (0: as many as allowed).
	Count int
}

// Fill is what a viewer gets.
type Fill struct {
	Space Space
	// Ads are the ads to show, best first; empty for no fill.
	Ads []ServedAd
	// Billable is false when nothing in this fill can earn (the owner
	// viewing their own space).
	Billable bool
}

// ServedAd is an ad with our own tracking.
type ServedAd struct {
	decision.Ad
	// Token is the sealed tracking token: the app posts it when the ad was
	// viewable, and the click link carries it.
	Token string
	// TrackingID is the token's single-use id.
	TrackingID uuid.UUID
	// House is true for the owner's own content shown as a fallback.
	House bool
	// Billable says whether a view of this ad can earn.
	Billable bool
	// ExpiresAt is when the token stops being accepted.
	ExpiresAt time.Time
}

var errInvalidFill = errs.New(errs.Invalid, "invalid_fill_request", "the fill request is not valid")

// Fill chooses ads for an owner's space, for a viewer. It loads the space
// and the owner's tier (cached, so a fill costs no database round trip
// when warm), derives the viewer's pseudonymous key and consent, asks the
// Decider within DecisionTimeout, filters the answer by the owner's blocks,
// falls back to the owner's own content when configured, and seals a
// tracking token per ad. No ad is a normal answer. An owner viewing their
// own space gets ads that never bill.
func (s *Service) Fill(ctx context.Context, r FillRequest) (Fill, error) {
	if !s.tracer.On() {
		return s.fill(ctx, r)
	}
	ctx, span := s.tracer.Start(ctx, "adspace.fill")
	f, err := s.fill(ctx, r)
	if span.IsRecording() && err == nil {
		house := len(f.Ads) > 0 && f.Ads[0].House
		span.SetAttributes(tracing.AttrAds.Int(len(f.Ads)), attribute.Bool("adshare.house", house),
			attribute.Bool("adshare.billable", f.Billable), attribute.Bool("adshare.enabled", f.Space.Settings.Enabled))
	}
	tracing.End(span, err)
	return f, err
}

// fill is Fill, untraced.
func (s *Service) fill(ctx context.Context, r FillRequest) (Fill, error) {
	if r.Viewer == nil && !s.cfg.AllowAnonymous {
		return Fill{}, auth.ErrUnauthenticated.WithMessage("sign in to see this ad space")
	}
	if err := checkFillContext(r); err != nil {
		return Fill{}, err
	}
	cs, err := s.cachedSpace(ctx, r.Owner)
	if err != nil {
		return Fill{}, err
	}
	sp := cs.space
	fill := Fill{Space: sp, Ads: []ServedAd{}, Billable: r.Viewer == nil || r.Viewer.UserID != r.Owner}
	if !sp.Settings.Enabled {
		return fill, nil
	}
	req, viewer, err := s.decisionRequest(ctx, r, cs)
	if err != nil {
		return Fill{}, err
	}
	resp, err := s.decide(ctx, req)
	var ads []decision.Ad
	switch {
	case err == nil:
		ads = s.funding.filter(ctx, s.ownerFilter(sp.Settings, resp.Ads[mainPlacement]))
	case errors.Is(err, decision.ErrInvalidRequest):
		return Fill{}, err // our own bug: surface it
	default:
		s.logger.WarnContext(ctx, "adspace: decider failed; filling with the fallback", slog.Any("error", err))
	}
	if s.cfg.Fills != nil {
		s.cfg.Fills.RecordFill(r.Owner, req.Placements[0].CountOrOne(), len(ads))
	}
	house := false
	if len(ads) == 0 && sp.Settings.HouseFallback == HouseOwn {
		ads, house = s.houseAds(ctx, sp, req.Placements[0].CountOrOne()), true
	}
	now := s.now().UTC()
	for _, ad := range ads {
		s.sizeByFormat(&ad.Creative)
		billable := fill.Billable && !house && !(ad.Source == "kevel" && ad.Tracking.ImpressionURL == "")
		t := tracking.Payload{
			ID: uuidv7.New(),
			Ad: tracking.Ad{
				Owner: r.Owner, ViewerKey: viewer.key, Placement: mainPlacement,
				Source: ad.Source, AdID: ad.AdID, CreativeID: ad.CreativeID, CampaignID: ad.CampaignID,
				AdvertiserID: ad.AdvertiserID, PriceModel: string(ad.Price.Model), PriceMicros: ad.Price.Micros,
				Billable: billable, IssuedAt: now,
			},
			Upstream:   tracking.Upstream{ImpressionURL: ad.Tracking.ImpressionURL, ClickURL: ad.Tracking.ClickURL},
			LandingURL: ad.Creative.LandingURL, ExpiresAt: now.Add(s.cfg.TrackingTTL),
		}
		if r.Viewer != nil {
			t.Viewer = r.Viewer.UserID
		}
		t.NoViewerAnalytics = !viewer.analytics
		token, err := s.cfg.Sealer.Seal(t)
		if err != nil {
			return Fill{}, err
		}
		ad.Tracking = decision.Tracking{} // the ad server's pixels stay on the server
		fill.Ads = append(fill.Ads, ServedAd{Ad: ad, Token: token, TrackingID: t.ID, House: house, Billable: billable, ExpiresAt: t.ExpiresAt})
	}
	return fill, nil
}

// decide asks the Decider within DecisionTimeout (unless it answers from
// memory: decision.Immediate), in a span "decision.decide" when tracing.
func (s *Service) decide(ctx context.Context, req decision.Request) (decision.Response, error) {
	if !decision.IsImmediate(s.cfg.Decider) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.DecisionTimeout)
		defer cancel()
	}
	if !s.tracer.On() {
		return s.cfg.Decider.Decide(ctx, req)
	}
	ctx, span := s.tracer.Start(ctx, "decision.decide", trace.WithAttributes(tracing.AttrPlacements.Int(len(req.Placements))))
	resp, err := s.cfg.Decider.Decide(ctx, req)
	if span.IsRecording() {
		n := 0
		for _, ads := range resp.Ads {
			n += len(ads)
		}
		span.SetAttributes(tracing.AttrAds.Int(n), tracing.AttrOutcome.String(tracing.Outcome(err)))
	}
	tracing.End(span, err)
	return resp, err
}

// sizeByFormat gives a creative without a size of its own (a user's image
// of unknown size, an ad server's ad without one) its format's size, so
// that the app can lay it out before the image loads.
func (s *Service) sizeByFormat(c *decision.Creative) {
	f, ok := s.formats[c.Format]
	if !ok {
		return
	}
	if c.Width == 0 {
		c.Width = f.Width
	}
	if c.Height == 0 {
		c.Height = f.Height
	}
}

// mainPlacement names the one placement of a space's fill.
const mainPlacement = "main"

func checkFillContext(r FillRequest) error {
	var f errs.Fields
	if len(r.Keywords) > MaxContextKeywords {
		f.Add("keywords", "at most 10 keywords")
	}
	for _, k := range r.Keywords {
		if !utf8.ValidString(k) || len(k) > maxContextValueLen || NormalizeTerm(k) == "" {
			f.Add("keywords", "keywords must be 1 to 64 bytes of valid UTF-8")
		}
	}
	if len(r.Properties) > MaxContextProperties {
		f.Add("properties", "at most 10 properties")
	}
	for k, v := range r.Properties {
		if !slices.Contains(ContextProperties, k) {
			f.Add("properties", "unknown property "+strings.ToValidUTF8(k, "?")+"; allowed: "+strings.Join(ContextProperties, ", "))
		} else if !utf8.ValidString(v) || len(v) > maxContextValueLen {
			f.Add("properties", "values must be at most 64 bytes of valid UTF-8")
		}
	}
	if len(r.Device) > 128 || !utf8.ValidString(r.Device) {
		f.Add("device", "must be at most 128 bytes of valid UTF-8")
	}
	f.Check(r.Count >= 0 && r.Count <= MaxAdsPerViewLimit, "count", "must be between 1 and 10")
	return f.Err(errInvalidFill)
}

// cachedSpace returns the owner's space and tier, from memory when fresh.
func (s *Service) cachedSpace(ctx context.Context, owner uuid.UUID) (cachedSpace, error) {
	if cs, ok := s.cache.get(owner); ok {
		return cs, nil
	}
	// Past its TTL, a copy still fills when the store fails (stale if
	// error), and the read is not let hold the fill long.
	stale, haveStale := s.cache.stale(owner)
	if haveStale {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, staleReadTimeout)
		defer cancel()
	}
	readStarted := time.Now()
	u, err := s.cfg.Users.UserByID(ctx, owner)
	if errors.Is(err, auth.ErrUserNotFound) {
		return cachedSpace{}, ErrSpaceNotFound
	}
	if err != nil {
		return s.staleOr(ctx, stale, haveStale, err)
	}
	sp, err := s.ensureSpace(ctx, owner)
	if err != nil {
		return s.staleOr(ctx, stale, haveStale, err)
	}
	cs := s.newCachedSpace(sp, u.Tier, readStarted)
	s.cache.put(owner, cs)
	return cs, nil
}

// staleOr answers a store read that failed for want of the store (not
// answering, unreachable, too slow) with the stale copy when there is
// one, logging it; else with the error.
func (s *Service) staleOr(ctx context.Context, stale cachedSpace, ok bool, err error) (cachedSpace, error) {
	if !ok || !(errs.Transient(err) || errs.KindOf(err) == errs.Unavailable) {
		return cachedSpace{}, err
	}
	s.logger.WarnContext(ctx, "adspace: store read failed; filling from the cached space", slog.Any("error", err),
		slog.Duration("age", time.Since(stale.fetched).Round(time.Second)))
	return stale, nil
}

// newCachedSpace is the owner's space as fills use it, with what every
// fill of it sends the Decider worked out once.
func (s *Service) newCachedSpace(sp Space, tier string, fetched time.Time) cachedSpace {
	set := sp.Settings
	cs := cachedSpace{space: sp, tier: tier, fetched: fetched}
	for _, name := range set.Formats {
		cs.adTypes = append(cs.adTypes, s.formats[name].AdTypes...)
	}
	slices.Sort(cs.adTypes)
	cs.adTypes = slices.Compact(cs.adTypes)
	cs.keywords = relevantKeywords(slices.Clone(set.Keywords), set.BlockedKeywords)
	// The owner's own content never runs as a paid ad in their space.
	cs.advertisers = append(slices.Clone(set.BlockedAdvertisers), sp.OwnerID.String())
	return cs
}

// relevantKeywords sorts keywords and drops repeats and blocked ones, in
// place.
func relevantKeywords(keywords, blocked []string) []string {
	slices.Sort(keywords)
	return slices.DeleteFunc(slices.Compact(keywords), func(k string) bool { return slices.Contains(blocked, k) })
}

// viewerState is who is looking, as the ad server may know it.
type viewerState struct {
	key     string
	consent decision.Consent
	// analytics is true when the viewer's events may be kept under their
	// identity (user id and key); otherwise the token says so and they
	// are stored without.
	analytics bool
}

// decisionRequest builds the ad request for a fill.
func (s *Service) decisionRequest(ctx context.Context, r FillRequest, cs cachedSpace) (decision.Request, viewerState, error) {
	set := cs.space.Settings
	var v viewerState
	identity := ""
	if r.Viewer != nil {
		// A signed-in viewer's consent is what they set in their profile.
		e, ok := s.viewers.get(r.Viewer.UserID)
		if !ok {
			var err error
			if e, err = s.viewerConsent(ctx, r.Viewer.UserID); err != nil {
				return decision.Request{}, v, err
			}
			s.viewers.put(r.Viewer.UserID, e)
		}
		v.consent = decision.Consent{GDPRApplies: true, GDPR: e.personalized, DoNotSell: e.doNotSell || r.GPC}
		v.analytics = e.analytics
		identity = "user:" + r.Viewer.UserID.String()
	} else {
		v.consent = decision.Consent{GDPRApplies: r.GDPRApplies, GDPR: r.GDPRConsent, DoNotSell: r.DoNotSell || r.GPC}
		if r.Device != "" {
			identity = "device:" + r.Device
		}
	}
	if identity != "" && v.consent.MayTrack() {
		v.key = s.viewerKey(identity)
	}
	if r.Viewer == nil {
		// An anonymous viewer's only identity is the key; it is kept with
		// their events exactly when it may be used at all.
		v.analytics = v.key != ""
	}

	count := set.MaxAdsPerView
	if tier, err := s.cfg.Tiers.Get(cs.tier); err == nil {
		count = min(count, tier.MaxAdsPerView)
	}
	if r.Count > 0 {
		count = min(count, r.Count)
	}
	p := decision.Placement{ID: mainPlacement, Formats: set.Formats, Count: max(count, 1), AdTypes: cs.adTypes}
	if len(r.Properties) > 0 {
		p.Properties = maps.Clone(r.Properties)
	}
	keywords := cs.keywords
	if len(r.Keywords) > 0 {
		keywords = slices.Clone(cs.keywords)
		for _, k := range r.Keywords {
			keywords = append(keywords, NormalizeTerm(k))
		}
		keywords = relevantKeywords(keywords, set.BlockedKeywords)
	}

	req := decision.Request{
		Placements: []decision.Placement{p},
		UserKey:    v.key,
		Keywords:   keywords,
		Categories: set.AllowedCategories,
		Exclude: decision.Exclusions{
			// The owner's own content never runs as a paid ad in their space.
			Advertisers: cs.advertisers,
			Categories:  set.BlockedCategories,
			Keywords:    set.BlockedKeywords,
		},
		Consent:   v.consent,
		IP:        auth.ClientFromContext(ctx).IP,
		UserAgent: auth.ClientFromContext(ctx).UserAgent,
		Time:      s.now(),
	}
	return req, v, nil
}

// ownerFilter applies the owner's blocks to what the Decider answered, as
// a final word: an engine that cannot express a block must not get an ad
// past it. The Decider's slice may be shared (a cached answer) and is
// never written: when nothing is blocked it is returned as it is, and
// otherwise the ads kept are copied.
func (s *Service) ownerFilter(set Settings, ads []decision.Ad) []decision.Ad {
	return keepAds(ads, func(ad *decision.Ad) bool { return !s.blockedByOwner(set, ad) })
}

// blockedByOwner reports whether the owner's settings refuse ad.
func (s *Service) blockedByOwner(set Settings, ad *decision.Ad) bool {
	if slices.Contains(set.BlockedAdvertisers, ad.AdvertiserID) {
		return true
	}
	if _, ok := s.formats[ad.Creative.Format]; ok && !slices.Contains(set.Formats, ad.Creative.Format) {
		return true
	}
	for _, c := range ad.Categories {
		if slices.Contains(set.BlockedCategories, NormalizeTerm(c)) {
			return true
		}
	}
	return len(set.AllowedCategories) > 0 && !slices.ContainsFunc(ad.Categories, func(c string) bool {
		return slices.Contains(set.AllowedCategories, NormalizeTerm(c))
	})
}

// keepAds returns the ads keep accepts, in order, without writing ads:
// ads itself when keep accepts them all (the common case costs no copy),
// else a new slice.
func keepAds(ads []decision.Ad, keep func(*decision.Ad) bool) []decision.Ad {
	for i := range ads {
		if keep(&ads[i]) {
			continue
		}
		out := make([]decision.Ad, i, len(ads)-1)
		copy(out, ads[:i])
		for j := i + 1; j < len(ads); j++ {
			if keep(&ads[j]) {
				out = append(out, ads[j])
			}
		}
		return out
	}
	return ads
}

// houseAds returns up to n of the owner's own approved content, as
// non-billable house ads.
func (s *Service) houseAds(ctx context.Context, sp Space, n int) []decision.Ad {
	contents, err := s.cfg.Contents.AdvertiserContent(ctx, sp.OwnerID, ContentFilter{Status: StatusApproved, Limit: 50})
	if err != nil {
		s.logger.WarnContext(ctx, "adspace: house ads unavailable", slog.Any("error", err))
		return nil
	}
	var out []decision.Ad
	for _, c := range contents {
		if len(out) == n {
			break
		}
		if !slices.Contains(sp.Settings.Formats, c.Format) {
			continue
		}
		cand := candidate(c)
		out = append(out, decision.Ad{
			ID: uuid.Must(uuid.NewV7()).String(), Source: "house", AdID: cand.ID, CreativeID: cand.ID,
			AdvertiserID: cand.AdvertiserID, Creative: cand.Creative, Categories: cand.Categories,
			Price: decision.Price{Model: cand.Bid.Model},
		})
	}
	return out
}
