package transport

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
)

// Scenario 1: an ad is served, seen, clicked and converts; the owner's,
// the advertiser's and a stranger's reports say so.
func TestAnalyticsFillToConversionOverHTTP(t *testing.T) {
	t.Parallel()
	forEachAnalyticsBackend(t, func(t *testing.T, b *analyticsBundle) {
		owner := b.register(t, "owner@example.com")
		stranger := b.register(t, "stranger@example.com")
		adv := b.role(t, "adv@example.com", auth.RoleAdvertiser)
		mod := b.role(t, "mod@example.com", auth.RoleModerator)
		ad := b.approvedContent(t, adv.AccessToken, mod.AccessToken, contentBody("Fresh beans")) // CPM 2.00
		require.Equal(t, "cpm", ad.Bid.Model)

		f := b.fill(t, owner.User.ID, "", "")
		require.True(t, f.Billable)
		require.Len(t, f.Ads, 1)
		served := f.Ads[0]

		// The app reports the impression the second it became viewable.
		event := impression(served.Tracking.Token, time.Now().Add(-time.Second))
		res := b.report(t, "", event, nil)
		require.Equal(t, resultJSON{TrackingID: &served.ID, Status: "accepted", Valid: true, Billable: true}, res)
		again := b.report(t, "", event, nil)
		require.Equal(t, "duplicate", again.Status, "a retry counts nothing")
		require.Equal(t, &served.ID, again.TrackingID)

		// The tap goes through our link to the ad's landing page.
		r := b.click(t, served.Tracking.ClickURL).requireStatus(t, http.StatusFound)
		require.Equal(t, ad.ClickURL, r.header.Get("Location"))

		conv := b.report(t, "", map[string]any{"type": "conversion", "token": served.Tracking.Token, "name": "Signup", "value_micros": 4_990_000}, nil)
		require.Equal(t, resultJSON{TrackingID: &served.ID, Status: "accepted", Valid: true}, conv)

		b.analytics.FlushFills(t.Context())
		rep := b.performance(t, owner.AccessToken, aroundNow("owner"))
		require.Equal(t, "hour", rep.Granularity)
		require.Equal(t, "UTC", rep.TimeZone)
		require.NotEmpty(t, rep.Rows)
		spend := ad.Bid.Micros / 1000
		require.Equal(t, totalsJSON{
			Requested: 1, Filled: 1, FillRate: 1,
			Impressions: 1, ValidImpressions: 1, BillableImpressions: 1,
			Clicks: 1, ValidClicks: 1, BillableClicks: 1, CTR: 1, Conversions: 1, // valid on a billable showing, though a CPM click costs nothing
			InvalidByRule: map[string]int64{},
			SpendMicros:   spend, OwnerEarningsMicros: spend * 5000 / 10_000, // the free tier's 50%
		}, rep.Totals)

		rev := b.revenue(t, owner.AccessToken, aroundNow("owner"))
		require.Equal(t, revenueRowJSON{GrossMicros: spend, OwnerMicros: spend / 2, PlatformMicros: spend - spend/2}, rev.Estimated)
		require.NotEmpty(t, rev.Rows)
		require.Nil(t, rev.Final, "no billing configured")

		// The advertiser sees their ad's showing; a stranger sees nothing
		// of the owner's.
		mine := b.performance(t, adv.AccessToken, aroundNow("advertiser"))
		require.Equal(t, int64(1), mine.Totals.Impressions)
		require.Equal(t, int64(1), mine.Totals.Clicks)
		require.Equal(t, spend, mine.Totals.SpendMicros)
		none := b.performance(t, stranger.AccessToken, aroundNow("owner"))
		require.Zero(t, none.Totals.Impressions)
		require.Zero(t, none.Totals.Requested)
		require.Zero(t, none.Totals.SpendMicros)
		require.Empty(t, none.Rows)

		// The local engine's ads have no ad server pixels to fire.
		fired, clicks := b.pixels.recorded()
		require.Empty(t, fired)
		require.Empty(t, clicks)

		// A conversion counts only after a valid impression: none does on
		// an ad that was on screen too briefly, whatever its name.
		conversion := func(token, name string, value int64) map[string]any {
			return map[string]any{"type": "conversion", "token": token, "name": name, "value_micros": value}
		}
		now := time.Now().UTC()
		unseen := b.reseal(t, served.Tracking.Token, func(tr *tracking.Payload) { tr.IssuedAt = now })
		require.Equal(t, analytics.RuleNotViewable, b.report(t, "", impression(unseen, now), nil).Rule)
		for _, name := range []string{"signup", "purchase"} {
			res := b.report(t, "", conversion(unseen, name, 10_000_000_000), nil)
			require.Equal(t, "accepted", res.Status, name)
			require.False(t, res.Valid, name)
			require.Equal(t, analytics.RuleConversionNoImp, res.Rule, name)
		}
		// A value over ten thousand units is refused at its field.
		var out struct {
			Results []resultJSON `json:"results"`
		}
		b.postEvents(t, "", map[string]any{"events": []map[string]any{
			conversion(served.Tracking.Token, "purchase", 10_000_000_000),
			conversion(served.Tracking.Token, "upgrade", 10_000_000_001),
		}}, nil).requireStatus(t, http.StatusOK).decode(t, &out)
		require.Equal(t, []resultJSON{{TrackingID: &served.ID, Status: "accepted", Valid: true}, {Status: "rejected",
			Error: &eventError{Code: "invalid_event", Detail: analytics.ErrInvalidReport.Message,
				Errors: []FieldProblem{{Pointer: "#/events/1/value_micros", Detail: "must be from 0 to 10000000000 (10,000 units of the currency)"}}}},
		}, out.Results)
		rep = b.performance(t, owner.AccessToken, aroundNow("owner"))
		require.Equal(t, int64(4), rep.Totals.Conversions, "every conversion is counted, flagged or not")
		require.Equal(t, map[string]int64{analytics.RuleNotViewable: 1, analytics.RuleConversionNoImp: 2}, rep.Totals.InvalidByRule)
	})
}

// Scenario 2: batches answer per event, in order; bad requests are
// refused as a whole.
func TestAnalyticsEventBatchesOverHTTP(t *testing.T) {
	t.Parallel()
	forEachAnalyticsBackend(t, func(t *testing.T, b *analyticsBundle) {
		owner := b.register(t, "owner@example.com")
		adv := b.role(t, "adv@example.com", auth.RoleAdvertiser)
		mod := b.role(t, "mod@example.com", auth.RoleModerator)
		viewer := b.register(t, "viewer@example.com")
		reporter := b.register(t, "reporter@example.com")
		b.approvedContent(t, adv.AccessToken, mod.AccessToken, contentBody("Fresh beans"))

		good := b.servedAd(t, owner.User.ID, "", "")
		other := b.servedAd(t, owner.User.ID, "", "")
		otherKey, err := tracking.NewSealer([][]byte{[]byte("another key, 32 bytes long......")}, nil)
		require.NoError(t, err)
		forged, err := otherKey.Seal(b.tracking(t, good.Tracking.Token))
		require.NoError(t, err)
		expired := b.reseal(t, good.Tracking.Token, func(tr *tracking.Payload) { tr.ExpiresAt = time.Now().Add(-time.Second) })

		var out struct {
			Results []resultJSON `json:"results"`
		}
		b.postEvents(t, "", map[string]any{"events": []map[string]any{
			impression(good.Tracking.Token, time.Time{}),
			impression(forged, time.Time{}),
			impression(expired, time.Time{}),
			impression(good.Tracking.Token, time.Time{}),
			{"type": "view", "token": good.Tracking.Token},
			impression(other.Tracking.Token, time.Time{}),
			{"type": "impression", "token": other.Tracking.Token, "occurred_at": "yesterday"},
			{"type": "impression", "token": other.Tracking.Token, "occurred_at": 1795801740},
		}}, nil).requireStatus(t, http.StatusOK).decode(t, &out)
		expiredTracking, err := b.sealer.Open(expired)
		require.ErrorIs(t, err, tracking.ErrExpiredToken)
		require.Equal(t, []resultJSON{
			{TrackingID: &good.ID, Status: "accepted", Valid: true, Billable: true},
			{Status: "rejected", Error: &eventError{Code: "invalid_tracking_token", Detail: tracking.ErrInvalidToken.Message}},
			{TrackingID: &expiredTracking.ID, Status: "rejected", Error: &eventError{Code: "expired_tracking_token", Detail: tracking.ErrExpiredToken.Message}},
			{TrackingID: &good.ID, Status: "duplicate", Valid: true, Billable: true}, // as its first
			{Status: "rejected", Error: &eventError{Code: "invalid_event", Detail: analytics.ErrInvalidReport.Message,
				Errors: []FieldProblem{{Pointer: "#/events/4/type", Detail: "must be impression, click or conversion"}}}},
			{TrackingID: &other.ID, Status: "accepted", Valid: true, Billable: true},
			// A time the device garbled rejects its own event, not the batch.
			{Status: "rejected", Error: &eventError{Code: "invalid_event", Detail: analytics.ErrInvalidReport.Message,
				Errors: []FieldProblem{{Pointer: "#/events/6/occurred_at", Detail: "must be an RFC 3339 date-time, such as 2026-11-27T09:30:00.250Z"}}}},
			{Status: "rejected", Error: &eventError{Code: "invalid_event", Detail: analytics.ErrInvalidReport.Message,
				Errors: []FieldProblem{{Pointer: "#/events/7/occurred_at", Detail: "must be an RFC 3339 date-time, such as 2026-11-27T09:30:00.250Z"}}}},
		}, out.Results)

		// A repeat within a batch answers as its first did, flagged or not.
		crawled := b.servedAd(t, owner.User.ID, "", "")
		out.Results = nil
		b.postEvents(t, "", map[string]any{"events": []map[string]any{
			impression(crawled.Tracking.Token, time.Time{}), impression(crawled.Tracking.Token, time.Time{}),
		}}, http.Header{"User-Agent": {"Googlebot/2.1 (+http://www.google.com/bot.html)"}}).requireStatus(t, http.StatusOK).decode(t, &out)
		require.Equal(t, []resultJSON{
			{TrackingID: &crawled.ID, Status: "accepted", Rule: analytics.RuleBotUserAgent},
			{TrackingID: &crawled.ID, Status: "duplicate", Rule: analytics.RuleBotUserAgent},
		}, out.Results)

		// Over the limit, as a whole.
		many := make([]map[string]any, analytics.DefaultMaxBatch+1)
		for i := range many {
			many[i] = impression(good.Tracking.Token, time.Time{})
		}
		b.postEvents(t, "", map[string]any{"events": many}, nil).problem(t, http.StatusRequestEntityTooLarge, "too_many_events")

		// Neither one event nor a batch, both at once, an empty batch.
		p := b.postEvents(t, "", map[string]any{}, nil).problem(t, http.StatusUnprocessableEntity, "invalid_event")
		require.Equal(t, []string{"#/token", "#/type"}, pointers(p))
		p = b.postEvents(t, "", map[string]any{"type": "impression", "token": other.Tracking.Token,
			"events": []map[string]any{impression(other.Tracking.Token, time.Time{})}}, nil).
			problem(t, http.StatusUnprocessableEntity, "invalid_body")
		require.Equal(t, []string{"#/events"}, pointers(p))
		p = b.postEvents(t, "", map[string]any{"events": []any{}}, nil).problem(t, http.StatusUnprocessableEntity, "invalid_body")
		require.Equal(t, []string{"#/events"}, pointers(p))
		b.postEvents(t, "", `{"type": "impression", "token": `, nil).problem(t, http.StatusBadRequest, "malformed_json")
		b.postEvents(t, "", map[string]any{"type": "impression", "token": other.Tracking.Token, "viewer": "me"}, nil).
			problem(t, http.StatusUnprocessableEntity, "invalid_body")

		// One rejected event is a problem.
		b.postEvents(t, "", impression(forged, time.Time{}), nil).problem(t, http.StatusUnprocessableEntity, "invalid_tracking_token")
		b.postEvents(t, "", impression(expired, time.Time{}), nil).problem(t, http.StatusUnprocessableEntity, "expired_tracking_token")
		p = b.postEvents(t, "", impression(other.Tracking.Token, time.Now().Add(time.Hour)), nil).
			problem(t, http.StatusUnprocessableEntity, "invalid_event")
		require.Equal(t, []string{"#/occurred_at"}, pointers(p))
		p = b.postEvents(t, "", map[string]any{"type": "impression", "token": other.Tracking.Token, "occurred_at": "27/11/2026 10:00"}, nil).
			problem(t, http.StatusUnprocessableEntity, "invalid_event")
		require.Equal(t, []string{"#/occurred_at"}, pointers(p))

		// A signed-in reporter may report only what was served to them.
		theirs := b.servedAd(t, owner.User.ID, "", viewer.AccessToken)
		b.postEvents(t, reporter.AccessToken, impression(theirs.Tracking.Token, time.Time{}), nil).
			problem(t, http.StatusForbidden, "foreign_tracking_token")
		b.postEvents(t, "not.a.token", impression(theirs.Tracking.Token, time.Time{}), nil).
			problem(t, http.StatusUnauthorized, "invalid_token")
		res := b.report(t, viewer.AccessToken, impression(theirs.Tracking.Token, time.Time{}), nil)
		require.Equal(t, "accepted", res.Status)
		require.True(t, res.Valid)

		// Only the two good impressions, the crawler's and the viewer's
		// counted.
		rep := b.performance(t, owner.AccessToken, aroundNow("owner"))
		require.Equal(t, int64(4), rep.Totals.Impressions)
		require.Equal(t, int64(3), rep.Totals.BillableImpressions)
		require.Equal(t, map[string]int64{analytics.RuleBotUserAgent: 1}, rep.Totals.InvalidByRule)
	})
}

// Scenario 3: invalid traffic is accepted, flagged by rule, reported and
// never billed.
func TestAnalyticsInvalidTrafficOverHTTP(t *testing.T) {
	t.Parallel()
	forEachAnalyticsBackend(t, func(t *testing.T, b *analyticsBundle) {
		owner := b.register(t, "owner@example.com")
		adv := b.role(t, "adv@example.com", auth.RoleAdvertiser)
		mod := b.role(t, "mod@example.com", auth.RoleModerator)
		ad := b.approvedContent(t, adv.AccessToken, mod.AccessToken, contentBody("Fresh beans")) // CPM 2.00
		ownerID := owner.User.ID

		tests := []struct {
			description string
			// events reports what happened, the flagged event last, and
			// returns its result.
			events   func(t *testing.T) resultJSON
			wantRule string
		}{
			{"a crawler", func(t *testing.T) resultJSON {
				ad := b.servedAd(t, ownerID, "", "")
				return b.report(t, "", impression(ad.Tracking.Token, time.Time{}),
					http.Header{"User-Agent": {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}})
			}, analytics.RuleBotUserAgent},
			{"a click with no impression", func(t *testing.T) resultJSON {
				ad := b.servedAd(t, ownerID, "", "")
				return b.report(t, "", map[string]any{"type": "click", "token": ad.Tracking.Token}, nil)
			}, analytics.RuleNoImpression},
			{"a click faster than a human", func(t *testing.T) resultJSON {
				ad := b.servedAd(t, ownerID, "", "")
				at := time.Now()
				require.True(t, b.report(t, "", impression(ad.Tracking.Token, at), nil).Valid)
				return b.report(t, "", map[string]any{"type": "click", "token": ad.Tracking.Token,
					"occurred_at": at.Add(100 * time.Millisecond).UTC().Format(time.RFC3339Nano)}, nil)
			}, analytics.RuleFastClick},
			{"an impression reported as the ad was served", func(t *testing.T) resultJSON {
				ad := b.servedAd(t, ownerID, "", "")
				now := time.Now().UTC()
				token := b.reseal(t, ad.Tracking.Token, func(tr *tracking.Payload) { tr.IssuedAt = now })
				return b.report(t, "", impression(token, now), nil)
			}, analytics.RuleNotViewable},
			{"the owner viewing their own space", func(t *testing.T) resultJSON {
				f := b.fill(t, ownerID, "", owner.AccessToken)
				require.False(t, f.Billable)
				require.Len(t, f.Ads, 1)
				return b.report(t, owner.AccessToken, impression(f.Ads[0].Tracking.Token, time.Time{}), nil)
			}, analytics.RuleOwnerView},
		}
		wantByRule := map[string]int64{}
		for _, tt := range tests {
			res := tt.events(t)
			require.Equal(t, "accepted", res.Status, tt.description)
			require.False(t, res.Valid, tt.description)
			require.Equal(t, tt.wantRule, res.Rule, tt.description)
			require.False(t, res.Billable, tt.description)
			wantByRule[tt.wantRule]++
		}

		rep := b.performance(t, owner.AccessToken, aroundNow("owner"))
		require.Equal(t, wantByRule, rep.Totals.InvalidByRule)
		require.Equal(t, int64(4), rep.Totals.Impressions, "crawler, fast clicker, too early, owner")
		require.Equal(t, int64(1), rep.Totals.ValidImpressions, "the fast clicker's impression itself was fine")
		require.Equal(t, int64(2), rep.Totals.Clicks)
		require.Zero(t, rep.Totals.ValidClicks)
		require.Equal(t, ad.Bid.Micros/1000, rep.Totals.SpendMicros, "only that impression is billed")
	})
}

// Scenario 3, bursts: more impressions from one viewer than a person
// makes are flagged.
func TestAnalyticsViewerBurstOverHTTP(t *testing.T) {
	t.Parallel()
	opts := analyticsOpts{filters: analytics.FilterConfig{ViewerPerMinute: 2}}
	forEachAnalyticsBackendWith(t, opts, func(t *testing.T, b *analyticsBundle) {
		owner := b.register(t, "owner@example.com")
		adv := b.role(t, "adv@example.com", auth.RoleAdvertiser)
		mod := b.role(t, "mod@example.com", auth.RoleModerator)
		b.approvedContent(t, adv.AccessToken, mod.AccessToken, contentBody("Fresh beans"))

		var tokens []string
		for _, device := range []string{"install-1", "install-1", "install-1", "install-2"} {
			tokens = append(tokens, b.servedAd(t, owner.User.ID, "?gdpr_consent=true&device="+device, "").Tracking.Token)
		}
		// All seen at one moment: one minute's window, whatever the clock.
		seen := time.Now()
		var rules []string
		for _, tok := range tokens {
			res := b.report(t, "", impression(tok, seen), nil)
			require.Equal(t, "accepted", res.Status)
			rules = append(rules, res.Rule)
		}
		require.Equal(t, []string{"", "", analytics.RuleViewerBurst, ""}, rules, "the same device's third, not another's")

		rep := b.performance(t, owner.AccessToken, aroundNow("owner"))
		require.Equal(t, map[string]int64{analytics.RuleViewerBurst: 1}, rep.Totals.InvalidByRule)
		require.Equal(t, int64(3), rep.Totals.BillableImpressions)
	})
}

// Scenario 4: the click link refuses forgeries, still takes late taps
// where they meant to go, and never redirects anywhere unsafe.
func TestAnalyticsClickLinkOverHTTP(t *testing.T) {
	t.Parallel()
	forEachAnalyticsBackend(t, func(t *testing.T, b *analyticsBundle) {
		owner := b.register(t, "owner@example.com")
		adv := b.role(t, "adv@example.com", auth.RoleAdvertiser)
		mod := b.role(t, "mod@example.com", auth.RoleModerator)
		ad := b.approvedContent(t, adv.AccessToken, mod.AccessToken, contentBody("Fresh beans"))
		served := b.servedAd(t, owner.User.ID, "", "")

		b.do(t, http.MethodGet, "/c/forged", "", nil).problem(t, http.StatusNotFound, "route_not_found")
		otherKey, err := tracking.NewSealer([][]byte{[]byte("another key, 32 bytes long......")}, nil)
		require.NoError(t, err)
		forged, err := otherKey.Seal(b.tracking(t, served.Tracking.Token))
		require.NoError(t, err)
		b.do(t, http.MethodGet, "/c/"+forged, "", nil).problem(t, http.StatusNotFound, "route_not_found")

		late := b.reseal(t, served.Tracking.Token, func(tr *tracking.Payload) { tr.ExpiresAt = time.Now().Add(-time.Minute) })
		r := b.do(t, http.MethodGet, "/c/"+late, "", nil).requireStatus(t, http.StatusFound)
		require.Equal(t, ad.ClickURL, r.header.Get("Location"))

		// A link with nowhere safe to go sends no one anywhere, and counts
		// nothing: no advertiser pays for a click that cannot reach them.
		evil := b.reseal(t, served.Tracking.Token, func(tr *tracking.Payload) {
			tr.LandingURL, tr.PriceModel, tr.PriceMicros = "javascript:alert(1)", "cpc", 1_000_000
		})
		require.True(t, b.report(t, "", impression(evil, time.Now().Add(-time.Second)), nil).Valid)
		b.do(t, http.MethodGet, "/c/"+evil, "", nil).problem(t, http.StatusNotFound, "no_destination")

		// An ad server's ad goes where its click URL redirects, fired once
		// for a valid click on a billable showing.
		upstream := "https://e-23.adzerk.net/r?e=click"
		kevel := b.reseal(t, served.Tracking.Token, func(tr *tracking.Payload) {
			tr.Source, tr.LandingURL, tr.Upstream.ClickURL = "kevel", "", upstream
		})
		require.True(t, b.report(t, "", impression(kevel, time.Now().Add(-time.Second)), nil).Valid)
		r = b.do(t, http.MethodGet, "/c/"+kevel, "", nil).requireStatus(t, http.StatusFound)
		require.Equal(t, testUpstreamLanding, r.header.Get("Location"))
		_, clicks := b.pixels.recorded()
		require.Equal(t, []string{upstream}, clicks)

		// Only the ad server's link counted a click: the late one took the
		// viewer on without counting, the javascript: one went nowhere. The
		// spend is the ad server's CPM showing alone.
		rep := b.performance(t, owner.AccessToken, aroundNow("owner"))
		require.Equal(t, int64(1), rep.Totals.Clicks)
		require.Equal(t, int64(2), rep.Totals.Impressions)
		require.Equal(t, ad.Bid.Micros/1000, rep.Totals.SpendMicros)
	})
}

// Scenario 5: reports refuse bad queries, naming the parameter, and keep
// to the caller's rights.
func TestAnalyticsReportQueriesOverHTTP(t *testing.T) {
	t.Parallel()
	forEachAnalyticsBackend(t, func(t *testing.T, b *analyticsBundle) {
		owner := b.register(t, "owner@example.com")
		admin := b.role(t, "admin@example.com", auth.RoleAdmin)
		now := time.Now().UTC()
		at := func(t time.Time) string { return t.Format(time.RFC3339) }

		for _, tc := range []struct {
			description string
			path        string
			code        string
			pointer     string
		}{
			{"granularity minute", "/analytics/performance?granularity=minute", "invalid_report_query", "#/query/granularity"},
			{"ten years by the hour", "/analytics/performance?granularity=hour&from=" + at(now.AddDate(-10, 0, 0)) + "&to=" + at(now),
				"invalid_report_query", "#/query/granularity"},
			{"to before from", "/analytics/performance?from=" + at(now) + "&to=" + at(now.Add(-time.Hour)), "invalid_report_query", "#/query/to"},
			{"an unknown time zone", "/analytics/performance?tz=Mars/Base", "invalid_report_query", "#/query/tz"},
			{"an unknown dimension", "/analytics/performance?group_by=ad,viewer", "invalid_report_query", "#/query/group_by"},
			{"an unknown scope", "/analytics/performance?scope=everyone", "invalid_report_query", "#/query/scope"},
			{"a time that is not RFC 3339", "/analytics/performance?from=yesterday", "invalid_query", "#/query/from"},
			{"revenue by advertiser", "/analytics/revenue?scope=advertiser", "invalid_report_query", "#/query/scope"},
			{"revenue in an unknown time zone", "/analytics/revenue?tz=Local", "invalid_report_query", "#/query/tz"},
			// A given time is the caller's, even the zero time: it is
			// checked, never taken for "not given".
			{"from as the zero time", "/analytics/performance?from=0001-01-01T00:00:00Z", "invalid_report_query", "#/query/from"},
			{"from before 1970", "/analytics/performance?from=1969-12-31T23:59:59Z", "invalid_report_query", "#/query/from"},
			{"an empty from", "/analytics/performance?from=", "invalid_query", "#/query/from"},
			// A to whose bucket ends past year 9999 could not be written.
			{"to at the end of year 9999", "/analytics/performance?granularity=month&to=9999-12-31T00:00:00Z",
				"invalid_report_query", "#/query/to"},
			{"revenue to past 9000", "/analytics/revenue?to=9000-01-01T00:00:01Z", "invalid_report_query", "#/query/to"},
		} {
			t.Run(tc.description, func(t *testing.T) {
				p := b.do(t, http.MethodGet, tc.path, owner.AccessToken, nil).problem(t, http.StatusUnprocessableEntity, tc.code)
				require.Equal(t, []string{tc.pointer}, pointers(p))
			})
		}

		// Both given and both wrong: both are named. A to past the bound
		// with no from names to alone, though the week before it (the
		// default from) is past the bound too.
		p := b.do(t, http.MethodGet, "/analytics/performance?from=0001-01-01T00:00:00Z&to=9500-01-01T00:00:00Z", owner.AccessToken, nil).
			problem(t, http.StatusUnprocessableEntity, "invalid_report_query")
		require.Equal(t, []string{"#/query/from", "#/query/to"}, pointers(p))
		p = b.do(t, http.MethodGet, "/analytics/users?granularity=month&to=9999-12-31T00:00:00Z", admin.AccessToken, nil).
			problem(t, http.StatusUnprocessableEntity, "invalid_report_query")
		require.Equal(t, []string{"#/query/to"}, pointers(p))

		// The bounds themselves, rounded out to whole months in the time
		// zones furthest from UTC, still make an answer that is written
		// whole.
		edge := b.performance(t, owner.AccessToken, "?granularity=month&from=1970-01-01T00:00:00Z&to=1970-02-01T00:00:00Z&tz=Pacific/Pago_Pago")
		require.Equal(t, time.Date(1969, time.December, 1, 11, 0, 0, 0, time.UTC), edge.From.UTC())
		edge = b.performance(t, owner.AccessToken, "?granularity=month&from=8999-12-01T00:00:00Z&to=9000-01-01T00:00:00Z&tz=Pacific/Kiritimati")
		require.Equal(t, time.Date(9000, time.January, 31, 10, 0, 0, 0, time.UTC), edge.To.UTC())

		// Everyone's figures and the users report are for admins.
		b.do(t, http.MethodGet, "/analytics/performance?scope=all", owner.AccessToken, nil).problem(t, http.StatusForbidden, "forbidden")
		b.do(t, http.MethodGet, "/analytics/revenue?scope=all", owner.AccessToken, nil).problem(t, http.StatusForbidden, "forbidden")
		b.do(t, http.MethodGet, "/analytics/performance?scope=advertiser", owner.AccessToken, nil).problem(t, http.StatusForbidden, "forbidden")
		b.do(t, http.MethodGet, "/analytics/users", owner.AccessToken, nil).problem(t, http.StatusForbidden, "forbidden")
		all := b.performance(t, admin.AccessToken, "?scope=all&group_by=owner")
		require.Equal(t, "day", all.Granularity)
		p = b.do(t, http.MethodGet, "/analytics/users?granularity=hour", admin.AccessToken, nil).
			problem(t, http.StatusUnprocessableEntity, "invalid_report_query")
		require.Equal(t, []string{"#/query/granularity"}, pointers(p))

		var users usersReportJSON
		b.do(t, http.MethodGet, "/analytics/users?periods=3", admin.AccessToken, nil).requireStatus(t, http.StatusOK).decode(t, &users)
		today := owner.User.CreatedAt.UTC().Truncate(24 * time.Hour)
		require.Equal(t, []countJSON{{Bucket: today, N: 2}}, users.Signups, "the owner and the admin signed up today")
		require.Contains(t, users.UsersByTier, "free")
		require.Equal(t, int64(2), users.UsersByTier["free"])
		require.Len(t, users.Retention, 1)
		require.Equal(t, today, users.Retention[0].Bucket)
		require.Equal(t, int64(2), users.Retention[0].Size)
		require.NotEmpty(t, users.Retention[0].Active)

		for _, path := range []string{"/analytics/performance", "/analytics/revenue", "/analytics/users"} {
			b.do(t, http.MethodGet, path, "", nil).problem(t, http.StatusUnauthorized, "invalid_token")
		}
	})
}
