package transport

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
)

// Scenario 1: an owner reads and replaces their space's settings.
func TestAdSpaceSettingsOverHTTP(t *testing.T) {
	t.Parallel()
	forEachSpacesBackend(t, func(t *testing.T, b *spacesBundle) {
		owner := b.register(t, "owner@example.com")

		sp, tag := b.settings(t, owner.AccessToken)
		require.Equal(t, `"1"`, tag)
		require.Equal(t, owner.User.ID, sp.OwnerID)
		require.Equal(t, int64(1), sp.Version)
		require.Equal(t, settingsOf(adspace.DefaultSettings()), sp.Settings)

		// Every field at once, valid, normalised on the way in.
		blocked := uuid.New()
		put := b.send(t, request{method: http.MethodPut, path: "/ad-space/settings", token: owner.AccessToken,
			header: http.Header{"If-Match": {`"1"`}},
			body: map[string]any{
				"enabled": true, "refresh_interval_seconds": 120, "max_ads_per_view": 1,
				"formats":             []string{"Native", " banner ", "banner"},
				"keywords":            []string{" Coffee ", "cycling", "COFFEE", "Specialty   Coffee"},
				"blocked_keywords":    []string{"Gambling"},
				"allowed_categories":  []string{"Food", "travel"},
				"blocked_categories":  []string{"Alcohol"},
				"blocked_advertisers": []string{" kevel:1234 ", blocked.String(), blocked.String()},
				"house_fallback":      "own",
			},
		}).requireStatus(t, http.StatusOK)
		require.Equal(t, `"2"`, put.header.Get("ETag"))
		var updated spaceJSON
		put.decode(t, &updated)
		want := settingsJSON{
			Enabled: true, RefreshIntervalSeconds: 120, MaxAdsPerView: 1,
			Formats:            []string{"banner", "native"},
			Keywords:           []string{"coffee", "cycling", "specialty coffee"},
			BlockedKeywords:    []string{"gambling"},
			AllowedCategories:  []string{"food", "travel"},
			BlockedCategories:  []string{"alcohol"},
			BlockedAdvertisers: slices.Sorted(slices.Values([]string{"kevel:1234", blocked.String()})),
			HouseFallback:      adspace.HouseOwn,
		}
		require.Equal(t, want, updated.Settings)
		require.Equal(t, int64(2), updated.Version)
		require.True(t, updated.UpdatedAt.After(sp.UpdatedAt) || updated.UpdatedAt.Equal(sp.UpdatedAt))
		stored, tag := b.settings(t, owner.AccessToken)
		require.Equal(t, `"2"`, tag)
		require.Equal(t, updated, stored)

		// A writer holding the old version is refused.
		b.send(t, request{method: http.MethodPut, path: "/ad-space/settings", token: owner.AccessToken,
			header: http.Header{"If-Match": {`"1"`}}, body: defaultSettingsBody(),
		}).problem(t, http.StatusConflict, "version_conflict")
		b.send(t, request{method: http.MethodPut, path: "/ad-space/settings", token: owner.AccessToken,
			header: http.Header{"If-Match": {"yesterday"}}, body: defaultSettingsBody(),
		}).problem(t, http.StatusUnprocessableEntity, "invalid_query")

		valid := with(defaultSettingsBody(), map[string]any{"blocked_categories": []string{"alcohol"}})
		many := make([]string, adspace.MaxTerms+1)
		for i := range many {
			many[i] = "keyword " + string(rune('a'+i%26)) + string(rune('a'+i/26))
		}
		for _, tc := range []struct {
			description string
			body        any
			status      int
			code        string
			pointer     string
		}{
			{"refresh interval below the floor", with(valid, map[string]any{"refresh_interval_seconds": 10}),
				http.StatusUnprocessableEntity, "invalid_settings", "#/refresh_interval_seconds"},
			{"refresh interval above an hour", with(valid, map[string]any{"refresh_interval_seconds": 7200}),
				http.StatusUnprocessableEntity, "invalid_settings", "#/refresh_interval_seconds"},
			{"refresh interval missing", with(valid, map[string]any{"refresh_interval_seconds": 0}),
				http.StatusUnprocessableEntity, "invalid_body", "#/refresh_interval_seconds"},
			{"more ads per view than the free tier allows", with(valid, map[string]any{"max_ads_per_view": 2}),
				http.StatusUnprocessableEntity, "invalid_settings", "#/max_ads_per_view"},
			{"more ads per view than any space may show", with(valid, map[string]any{"max_ads_per_view": 11}),
				http.StatusUnprocessableEntity, "invalid_settings", "#/max_ads_per_view"},
			{"unknown format", with(valid, map[string]any{"formats": []string{"banner", "video"}}),
				http.StatusUnprocessableEntity, "invalid_settings", "#/formats"},
			{"no format", with(valid, map[string]any{"formats": []string{}}),
				http.StatusUnprocessableEntity, "invalid_body", "#/formats"},
			{"allowed category also blocked", with(valid, map[string]any{"allowed_categories": []string{"Alcohol"}}),
				http.StatusUnprocessableEntity, "invalid_settings", "#/allowed_categories"},
			{"blocked advertiser that is not an id", with(valid, map[string]any{"blocked_advertisers": []string{"acme inc!"}}),
				http.StatusUnprocessableEntity, "invalid_settings", "#/blocked_advertisers"},
			{"unknown house fallback", with(valid, map[string]any{"house_fallback": "everyone"}),
				http.StatusUnprocessableEntity, "invalid_settings", "#/house_fallback"},
			{"too many keywords", with(valid, map[string]any{"keywords": many}),
				http.StatusUnprocessableEntity, "invalid_settings", "#/keywords"},
			{"keyword too long", with(valid, map[string]any{"keywords": []string{strings.Repeat("k", adspace.MaxTermLen+1)}}),
				http.StatusUnprocessableEntity, "invalid_settings", "#/keywords"},
			{"keyword with a control character", with(valid, map[string]any{"keywords": []string{"bell\u0007"}}),
				http.StatusUnprocessableEntity, "invalid_settings", "#/keywords"},
			{"empty blocked keyword", with(valid, map[string]any{"blocked_keywords": []string{"  "}}),
				http.StatusUnprocessableEntity, "invalid_settings", "#/blocked_keywords"},
			{"unknown field", with(valid, map[string]any{"colour": "blue"}),
				http.StatusUnprocessableEntity, "invalid_body", "#/colour"},
			{"wrong type", with(valid, map[string]any{"refresh_interval_seconds": "60"}),
				http.StatusUnprocessableEntity, "invalid_body", "#/refresh_interval_seconds"},
			{"list given as a string", with(valid, map[string]any{"formats": "banner"}),
				http.StatusUnprocessableEntity, "invalid_body", "#/formats"},
			// JSON is UTF-8 (RFC 8259): invalid bytes refuse the whole body
			// before any field is read, so there is no pointer.
			{"keyword of invalid UTF-8", `{"enabled":true,"refresh_interval_seconds":60,"max_ads_per_view":1,"formats":["banner"],"keywords":["caf` + "\xe9" + `"]}`,
				http.StatusBadRequest, "malformed_json", ""},
		} {
			t.Run(tc.description, func(t *testing.T) {
				p := b.do(t, http.MethodPut, "/ad-space/settings", owner.AccessToken, tc.body).problem(t, tc.status, tc.code)
				if tc.pointer != "" {
					require.Equal(t, []string{tc.pointer}, pointers(p))
				} else {
					require.Empty(t, p.Errors)
				}
				now, tag := b.settings(t, owner.AccessToken)
				require.Equal(t, `"2"`, tag, "a refused change leaves the space alone")
				require.Equal(t, stored, now)
			})
		}

		// Only the owner, signed in, reads or writes their settings.
		b.do(t, http.MethodGet, "/ad-space/settings", "", nil).problem(t, http.StatusUnauthorized, "invalid_token")
		b.do(t, http.MethodPut, "/ad-space/settings", "", valid).problem(t, http.StatusUnauthorized, "invalid_token")
		b.do(t, http.MethodGet, "/ad-space/settings", "not.a.token", nil).problem(t, http.StatusUnauthorized, "invalid_token")
		now, _ := b.settings(t, owner.AccessToken)
		require.Equal(t, stored, now)
	})
}

// Scenario 2: advertisers create, list, read, edit and move their content;
// nobody else can see or touch it.
func TestAdContentOverHTTP(t *testing.T) {
	t.Parallel()
	forEachSpacesBackend(t, func(t *testing.T, b *spacesBundle) {
		user := b.register(t, "user@example.com")
		adv := b.role(t, "adv@example.com", auth.RoleAdvertiser)
		rival := b.role(t, "rival@example.com", auth.RoleAdvertiser)

		b.do(t, http.MethodPost, "/ad-space/content", user.AccessToken, contentBody("Fresh beans")).problem(t, http.StatusForbidden, "forbidden")
		b.do(t, http.MethodGet, "/ad-space/content", user.AccessToken, nil).problem(t, http.StatusForbidden, "forbidden")
		b.do(t, http.MethodPost, "/ad-space/content", "", contentBody("Fresh beans")).problem(t, http.StatusUnauthorized, "invalid_token")

		draft := b.createContent(t, adv.AccessToken, contentBody("Fresh beans"))
		require.Equal(t, adv.User.ID, draft.AdvertiserID)
		require.Equal(t, string(adspace.StatusDraft), draft.Status)
		require.Equal(t, int64(1), draft.Version)
		require.Equal(t, "Fresh beans", draft.Title)
		require.Equal(t, bidJSON{Model: "cpm", Micros: 2_000_000}, draft.Bid)
		require.Nil(t, draft.SubmittedAt)
		require.NotNil(t, draft.Schedule.Start, "a schedule without a start starts now")
		submitted := b.createContent(t, adv.AccessToken, with(contentBody("Roasted today"), map[string]any{"submit": true}))
		require.Equal(t, string(adspace.StatusPendingReview), submitted.Status)
		require.NotNil(t, submitted.SubmittedAt)

		got := b.do(t, http.MethodGet, "/ad-space/content/"+draft.ID.String(), adv.AccessToken, nil).requireStatus(t, http.StatusOK)
		require.Equal(t, `"1"`, got.header.Get("ETag"))
		var read contentJSON
		got.decode(t, &read)
		require.Equal(t, draft, read)

		// The same creative twice is refused, whatever its case and spacing.
		b.do(t, http.MethodPost, "/ad-space/content", adv.AccessToken, with(contentBody("Fresh beans"), map[string]any{"title": "FRESH   beans"})).
			problem(t, http.StatusConflict, "duplicate_content")

		// Titles are plain text: markup is stripped, scripts dropped.
		html := b.createContent(t, adv.AccessToken, with(contentBody("html"), map[string]any{
			"title": "<b>Fresh</b> <i>beans</i><script>alert(1)</script> &amp; more",
			"body":  "<p>Ground<br>to order</p>",
		}))
		require.Equal(t, "Fresh beans & more", html.Title)
		require.Equal(t, "Ground to order", html.Body)

		// The free tier holds three live contents.
		b.do(t, http.MethodPost, "/ad-space/content", adv.AccessToken, contentBody("One too many")).
			problem(t, http.StatusForbidden, "content_limit")

		// Listing: oldest first, by status, in pages.
		ids := func(cs []contentJSON) []uuid.UUID {
			out := make([]uuid.UUID, 0, len(cs))
			for _, c := range cs {
				out = append(out, c.ID)
			}
			return out
		}
		require.Equal(t, []uuid.UUID{draft.ID, submitted.ID, html.ID}, ids(b.listContent(t, adv.AccessToken, "")))
		require.Equal(t, []uuid.UUID{draft.ID, html.ID}, ids(b.listContent(t, adv.AccessToken, "?status=draft")))
		require.Equal(t, []uuid.UUID{submitted.ID}, ids(b.listContent(t, adv.AccessToken, "?status=pending_review")))
		require.Empty(t, b.listContent(t, adv.AccessToken, "?status=approved"))
		require.Equal(t, []uuid.UUID{draft.ID}, ids(b.listContent(t, adv.AccessToken, "?limit=1")))
		require.Equal(t, []uuid.UUID{submitted.ID}, ids(b.listContent(t, adv.AccessToken, "?limit=1&after="+draft.ID.String())))
		require.Equal(t, []uuid.UUID{html.ID}, ids(b.listContent(t, adv.AccessToken, "?limit=1&after="+submitted.ID.String())))
		require.Empty(t, b.listContent(t, adv.AccessToken, "?after="+html.ID.String()))
		require.Empty(t, b.listContent(t, rival.AccessToken, ""), "one advertiser never lists another's content")
		for query, pointer := range map[string]string{
			"?status=live": "#/query/status", "?limit=0": "#/query/limit", "?limit=201": "#/query/limit", "?after=first": "#/query/after",
		} {
			p := b.do(t, http.MethodGet, "/ad-space/content"+query, adv.AccessToken, nil).problem(t, http.StatusUnprocessableEntity, "invalid_query")
			require.Equal(t, []string{pointer}, pointers(p), query)
		}

		// Another advertiser's id is not found, exactly like a missing one,
		// on every endpoint; the content is untouched.
		for _, id := range []string{draft.ID.String(), uuid.NewString(), "not-a-uuid"} {
			b.do(t, http.MethodGet, "/ad-space/content/"+id, rival.AccessToken, nil).problem(t, http.StatusNotFound, "content_not_found")
			b.do(t, http.MethodPut, "/ad-space/content/"+id, rival.AccessToken, with(contentBody("Mine now"), map[string]any{"version": 1})).
				problem(t, http.StatusNotFound, "content_not_found")
			for _, action := range []string{"submit", "pause", "resume", "archive"} {
				b.do(t, http.MethodPost, "/ad-space/content/"+id+"/"+action, rival.AccessToken, nil).problem(t, http.StatusNotFound, "content_not_found")
			}
		}
		require.Equal(t, draft, b.contentAnswer(t, http.MethodGet, "/ad-space/content/"+draft.ID.String(), adv.AccessToken, nil))
		denied := b.lastEvent(t, auth.AuditAccessDenied)
		require.Equal(t, rival.User.ID, denied.ActorID)
		require.Equal(t, draft.ID.String(), denied.TargetID)

		// Bad input, field by field (the rival has room for content, so
		// only the field can be the problem). Nothing is stored.
		now := time.Now().UTC()
		for _, tc := range []struct {
			description string
			fields      map[string]any
			pointer     string
		}{
			{"javascript click URL", map[string]any{"click_url": "javascript:alert(document.cookie)"}, "#/click_url"},
			{"mixed-case javascript click URL", map[string]any{"click_url": "JaVaScRiPt:alert(1)"}, "#/click_url"},
			{"data click URL", map[string]any{"click_url": "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="}, "#/click_url"},
			{"plain http click URL", map[string]any{"click_url": "http://shop.example.com/beans"}, "#/click_url"},
			{"click URL with credentials", map[string]any{"click_url": "https://user:secret@shop.example.com/beans"}, "#/click_url"},
			{"click URL on a private address", map[string]any{"click_url": "https://10.0.0.7/admin"}, "#/click_url"},
			{"click URL on the loopback address", map[string]any{"click_url": "https://127.0.0.1/"}, "#/click_url"},
			{"click URL on a disguised loopback address", map[string]any{"click_url": "https://2130706433/"}, "#/click_url"},
			{"click URL on the metadata service", map[string]any{"click_url": "https://169.254.169.254/latest/meta-data"}, "#/click_url"},
			{"click URL on localhost", map[string]any{"click_url": "https://localhost/"}, "#/click_url"},
			{"click URL on a localhost subdomain", map[string]any{"click_url": "https://shop.localhost/"}, "#/click_url"},
			{"click URL on a private IPv6 address", map[string]any{"click_url": "https://[fd00::1]/"}, "#/click_url"},
			{"missing click URL", map[string]any{"click_url": nil}, "#/click_url"},
			{"javascript image URL", map[string]any{"image_url": "javascript:alert(1)"}, "#/image_url"},
			{"data image URL", map[string]any{"image_url": "data:image/png;base64,iVBORw0KGgo="}, "#/image_url"},
			{"plain http image URL", map[string]any{"image_url": "http://cdn.example.com/beans.png"}, "#/image_url"},
			{"image URL with credentials", map[string]any{"image_url": "https://user:secret@cdn.example.com/beans.png"}, "#/image_url"},
			{"image URL on a private address", map[string]any{"image_url": "https://192.168.1.1/beans.png"}, "#/image_url"},
			{"image URL on localhost", map[string]any{"image_url": "https://localhost/beans.png"}, "#/image_url"},
			{"title too long", map[string]any{"title": strings.Repeat("t", adspace.DefaultMaxTitleLen+1)}, "#/title"},
			{"title of markup only", map[string]any{"title": "<b></b><script>alert(1)</script>"}, "#/title"},
			{"title with a bidi override", map[string]any{"title": "Fresh \u202ebeans"}, "#/title"},
			{"body too long", map[string]any{"body": strings.Repeat("b", adspace.DefaultMaxBodyLen+1)}, "#/body"},
			{"call to action too long", map[string]any{"call_to_action": strings.Repeat("c", adspace.DefaultMaxCallToActionLen+1)}, "#/call_to_action"},
			{"negative bid", map[string]any{"bid": map[string]any{"model": "cpm", "micros": -1}}, "#/bid/micros"},
			{"absurd bid", map[string]any{"bid": map[string]any{"model": "cpm", "micros": int64(1) << 50}}, "#/bid/micros"},
			{"unknown bid model", map[string]any{"bid": map[string]any{"model": "cpa", "micros": 2_000_000}}, "#/bid/model"},
			{"negative total budget", map[string]any{"total_budget_micros": -100}, "#/total_budget_micros"},
			{"absurd total budget", map[string]any{"total_budget_micros": int64(1) << 60}, "#/total_budget_micros"},
			{"negative daily budget", map[string]any{"daily_budget_micros": -1}, "#/daily_budget_micros"},
			{"absurd daily budget", map[string]any{"daily_budget_micros": int64(1) << 60}, "#/daily_budget_micros"},
			{"daily budget above the total", map[string]any{"daily_budget_micros": 200_000_000}, "#/daily_budget_micros"},
			{"schedule ending before it starts", map[string]any{"schedule": map[string]any{
				"start": now.Add(48 * time.Hour), "end": now.Add(24 * time.Hour)}}, "#/schedule/end"},
			{"schedule starting last year", map[string]any{"schedule": map[string]any{"start": now.AddDate(-1, 0, 0)}}, "#/schedule/start"},
			{"unknown format", map[string]any{"format": "video"}, "#/format"},
			{"too many categories", map[string]any{"categories": strings.Split("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u", ",")}, "#/categories"},
			{"image of an unknown type", map[string]any{"image": map[string]any{"mime_type": "image/svg+xml", "width": 320, "height": 50, "bytes": 2000}}, "#/image/mime_type"},
		} {
			t.Run(tc.description, func(t *testing.T) {
				body := with(contentBody("Rival beans"), tc.fields)
				p := b.do(t, http.MethodPost, "/ad-space/content", rival.AccessToken, body).problem(t, http.StatusUnprocessableEntity, "invalid_content")
				require.Equal(t, []string{tc.pointer}, pointers(p))
			})
		}
		for _, tc := range []struct {
			description string
			body        any
			status      int
			code        string
			pointer     string
		}{
			{"unknown field", with(contentBody("Rival beans"), map[string]any{"advertiser_id": adv.User.ID}),
				http.StatusUnprocessableEntity, "invalid_body", "#/advertiser_id"},
			{"wrong type", with(contentBody("Rival beans"), map[string]any{"total_budget_micros": "lots"}),
				http.StatusUnprocessableEntity, "invalid_body", "#/total_budget_micros"},
			// JSON is UTF-8 (RFC 8259): invalid bytes refuse the body before
			// any field is read.
			{"title of invalid UTF-8", `{"format":"banner","title":"Caf` + "\xe9" + `","click_url":"https://shop.example.com/","bid":{"model":"cpm","micros":2000000},"total_budget_micros":100000000}`,
				http.StatusBadRequest, "malformed_json", ""},
		} {
			t.Run(tc.description, func(t *testing.T) {
				p := b.do(t, http.MethodPost, "/ad-space/content", rival.AccessToken, tc.body).problem(t, tc.status, tc.code)
				if tc.pointer == "" {
					require.Empty(t, p.Errors)
				} else {
					require.Equal(t, []string{tc.pointer}, pointers(p))
				}
			})
		}
		require.Empty(t, b.listContent(t, rival.AccessToken, ""), "refused content is not stored")

		// Editing needs the version being edited, and refuses a stale one.
		edit := with(contentBody("Fresh beans"), map[string]any{"title": "Fresher beans"})
		p := b.do(t, http.MethodPut, "/ad-space/content/"+draft.ID.String(), adv.AccessToken, edit).
			problem(t, http.StatusUnprocessableEntity, "invalid_body")
		require.Equal(t, []string{"#/version"}, pointers(p))
		b.do(t, http.MethodPut, "/ad-space/content/"+draft.ID.String(), adv.AccessToken, with(edit, map[string]any{"version": 7})).
			problem(t, http.StatusConflict, "version_conflict")
		p = b.do(t, http.MethodPut, "/ad-space/content/"+draft.ID.String(), adv.AccessToken,
			with(edit, map[string]any{"version": 1, "click_url": "javascript:alert(1)"})).problem(t, http.StatusUnprocessableEntity, "invalid_content")
		require.Equal(t, []string{"#/click_url"}, pointers(p))
		put := b.do(t, http.MethodPut, "/ad-space/content/"+draft.ID.String(), adv.AccessToken, with(edit, map[string]any{"version": 1})).
			requireStatus(t, http.StatusOK)
		require.Equal(t, `"2"`, put.header.Get("ETag"))
		var edited contentJSON
		put.decode(t, &edited)
		require.Equal(t, "Fresher beans", edited.Title)
		require.Equal(t, string(adspace.StatusDraft), edited.Status)
		require.Equal(t, int64(2), edited.Version)
		b.do(t, http.MethodPut, "/ad-space/content/"+draft.ID.String(), adv.AccessToken, with(edit, map[string]any{"version": 1})).
			problem(t, http.StatusConflict, "version_conflict")

		// Moves the state does not allow are conflicts.
		path := func(c contentJSON, action string) string { return "/ad-space/content/" + c.ID.String() + "/" + action }
		for _, action := range []string{"pause", "resume"} {
			b.do(t, http.MethodPost, path(draft, action), adv.AccessToken, nil).problem(t, http.StatusConflict, "invalid_transition")
			b.do(t, http.MethodPost, path(submitted, action), adv.AccessToken, nil).problem(t, http.StatusConflict, "invalid_transition")
		}
		b.do(t, http.MethodPost, path(submitted, "submit"), adv.AccessToken, nil).problem(t, http.StatusConflict, "invalid_transition")
		moved := b.contentAnswer(t, http.MethodPost, path(draft, "submit"), adv.AccessToken, nil)
		require.Equal(t, string(adspace.StatusPendingReview), moved.Status)
		require.Equal(t, int64(3), moved.Version)
		require.NotNil(t, moved.SubmittedAt)
		b.do(t, http.MethodPost, path(draft, "submit"), adv.AccessToken, nil).problem(t, http.StatusConflict, "invalid_transition")

		// Archiving is final, and frees a place under the tier's limit.
		archived := b.contentAnswer(t, http.MethodPost, path(html, "archive"), adv.AccessToken, nil)
		require.Equal(t, string(adspace.StatusArchived), archived.Status)
		for _, action := range []string{"submit", "pause", "resume", "archive"} {
			b.do(t, http.MethodPost, path(html, action), adv.AccessToken, nil).problem(t, http.StatusConflict, "invalid_transition")
		}
		b.do(t, http.MethodPut, "/ad-space/content/"+html.ID.String(), adv.AccessToken,
			with(contentBody("html"), map[string]any{"version": archived.Version})).problem(t, http.StatusConflict, "invalid_transition")
		b.createContent(t, adv.AccessToken, contentBody("One more"))
		require.Equal(t, []uuid.UUID{html.ID}, ids(b.listContent(t, adv.AccessToken, "?status=archived")))
	})
}

// Scenario 3: moderators work the review queue; everything they decide is
// audited.
func TestModerationOverHTTP(t *testing.T) {
	t.Parallel()
	forEachSpacesBackend(t, func(t *testing.T, b *spacesBundle) {
		adv := b.role(t, "adv@example.com", auth.RoleAdvertiser)
		mod := b.role(t, "mod@example.com", auth.RoleModerator)
		admin := b.role(t, "admin@example.com", auth.RoleAdmin)

		first := b.createContent(t, adv.AccessToken, with(contentBody("Fresh beans"), map[string]any{"submit": true}))
		second := b.createContent(t, adv.AccessToken, with(contentBody("Miracle beans"), map[string]any{"submit": true}))
		b.createContent(t, adv.AccessToken, contentBody("Draft beans")) // a draft is not for review
		own := b.createContent(t, mod.AccessToken, with(contentBody("Moderator beans"), map[string]any{"submit": true}))

		queue := func(query string) []uuid.UUID {
			t.Helper()
			var out struct {
				Contents []contentJSON `json:"contents"`
			}
			b.do(t, http.MethodGet, "/moderation/queue"+query, mod.AccessToken, nil).requireStatus(t, http.StatusOK).decode(t, &out)
			ids := make([]uuid.UUID, 0, len(out.Contents))
			for _, c := range out.Contents {
				require.Equal(t, string(adspace.StatusPendingReview), c.Status)
				ids = append(ids, c.ID)
			}
			return ids
		}
		require.Equal(t, []uuid.UUID{first.ID, second.ID, own.ID}, queue(""), "oldest first")
		require.Equal(t, []uuid.UUID{first.ID}, queue("?limit=1"))
		require.Equal(t, []uuid.UUID{second.ID, own.ID}, queue("?after="+url.QueryEscape(first.SubmittedAt.Format(time.RFC3339Nano))))
		require.Equal(t, []uuid.UUID{own.ID}, queue("?after="+url.QueryEscape(second.SubmittedAt.Format(time.RFC3339Nano))+"&after_id="+second.ID.String()),
			"the next page goes on from the last content seen")
		p := b.do(t, http.MethodGet, "/moderation/queue?after_id="+second.ID.String(), mod.AccessToken, nil).problem(t, http.StatusUnprocessableEntity, "invalid_query")
		require.Equal(t, []string{"#/query/after_id"}, pointers(p))
		p = b.do(t, http.MethodGet, "/moderation/queue?after=yesterday", mod.AccessToken, nil).problem(t, http.StatusUnprocessableEntity, "invalid_query")
		require.Equal(t, []string{"#/query/after"}, pointers(p))

		// Advertisers and users do not moderate.
		b.do(t, http.MethodGet, "/moderation/queue", adv.AccessToken, nil).problem(t, http.StatusForbidden, "forbidden")
		b.do(t, http.MethodPost, "/moderation/content/"+first.ID.String()+"/approve", adv.AccessToken, nil).problem(t, http.StatusForbidden, "forbidden")
		b.do(t, http.MethodPost, "/moderation/content/"+first.ID.String()+"/reject", adv.AccessToken, map[string]string{"reason": "mine"}).
			problem(t, http.StatusForbidden, "forbidden")
		b.do(t, http.MethodGet, "/moderation/queue", "", nil).problem(t, http.StatusUnauthorized, "invalid_token")

		approved := b.contentAnswer(t, http.MethodPost, "/moderation/content/"+first.ID.String()+"/approve", mod.AccessToken, nil)
		require.Equal(t, string(adspace.StatusApproved), approved.Status)
		require.NotNil(t, approved.ReviewedAt)
		require.Empty(t, approved.RejectReason)
		b.do(t, http.MethodPost, "/moderation/content/"+first.ID.String()+"/approve", mod.AccessToken, nil).
			problem(t, http.StatusConflict, "invalid_transition")
		b.do(t, http.MethodPost, "/moderation/content/"+uuid.NewString()+"/approve", mod.AccessToken, nil).
			problem(t, http.StatusNotFound, "content_not_found")

		// A rejection needs a reason, which the advertiser then sees.
		for _, body := range []any{map[string]string{}, map[string]string{"reason": " \t "}, map[string]string{"reason": strings.Repeat("r", adspace.MaxRejectReasonLen+1)}} {
			p := b.do(t, http.MethodPost, "/moderation/content/"+second.ID.String()+"/reject", mod.AccessToken, body).
				problem(t, http.StatusUnprocessableEntity, "invalid_content")
			require.Equal(t, []string{"#/reason"}, pointers(p))
		}
		rejected := b.contentAnswer(t, http.MethodPost, "/moderation/content/"+second.ID.String()+"/reject", mod.AccessToken,
			map[string]string{"reason": "  Health claims   need a source. "})
		require.Equal(t, string(adspace.StatusRejected), rejected.Status)
		require.Equal(t, "Health claims need a source.", rejected.RejectReason)
		seen := b.contentAnswer(t, http.MethodGet, "/ad-space/content/"+second.ID.String(), adv.AccessToken, nil)
		require.Equal(t, rejected, seen)

		// Nobody reviews their own content.
		b.do(t, http.MethodPost, "/moderation/content/"+own.ID.String()+"/approve", mod.AccessToken, nil).problem(t, http.StatusForbidden, "forbidden")
		b.do(t, http.MethodPost, "/moderation/content/"+own.ID.String()+"/reject", mod.AccessToken, map[string]string{"reason": "mine"}).
			problem(t, http.StatusForbidden, "forbidden")
		require.Equal(t, []uuid.UUID{own.ID}, queue(""))

		// The advertiser pauses and resumes approved content, and sends the
		// rejected one back to review.
		path := func(c contentJSON, action string) string { return "/ad-space/content/" + c.ID.String() + "/" + action }
		require.Equal(t, string(adspace.StatusPaused), b.contentAnswer(t, http.MethodPost, path(first, "pause"), adv.AccessToken, nil).Status)
		b.do(t, http.MethodPost, path(first, "pause"), adv.AccessToken, nil).problem(t, http.StatusConflict, "invalid_transition")
		require.Equal(t, string(adspace.StatusApproved), b.contentAnswer(t, http.MethodPost, path(first, "resume"), adv.AccessToken, nil).Status)
		b.do(t, http.MethodPost, path(first, "resume"), adv.AccessToken, nil).problem(t, http.StatusConflict, "invalid_transition")
		b.do(t, http.MethodPost, path(second, "pause"), adv.AccessToken, nil).problem(t, http.StatusConflict, "invalid_transition")
		resubmitted := b.contentAnswer(t, http.MethodPost, path(second, "submit"), adv.AccessToken, nil)
		require.Equal(t, string(adspace.StatusPendingReview), resubmitted.Status)
		require.Empty(t, resubmitted.RejectReason)
		require.Equal(t, []uuid.UUID{own.ID, second.ID}, queue(""))

		// The audit log names the moderator.
		b.do(t, http.MethodGet, "/audit-events", mod.AccessToken, nil).problem(t, http.StatusForbidden, "forbidden")
		p = b.do(t, http.MethodGet, "/audit-events?action=%FF", admin.AccessToken, nil).problem(t, http.StatusUnprocessableEntity, "invalid_query")
		require.Equal(t, []string{"#/query/action"}, pointers(p), "invalid UTF-8 never reaches the store")
		events := b.auditEvents(t, admin.AccessToken, "?action="+adspace.AuditContentApproved)
		require.Len(t, events, 1)
		require.Equal(t, &mod.User.ID, events[0].ActorID)
		require.Equal(t, "content", events[0].TargetType)
		require.Equal(t, first.ID.String(), events[0].TargetID)
		require.Equal(t, "success", events[0].Outcome)
		require.Equal(t, map[string]string{"advertiser": adv.User.ID.String()}, events[0].Details)
		events = b.auditEvents(t, admin.AccessToken, "?action="+adspace.AuditContentRejected)
		require.Len(t, events, 1)
		require.Equal(t, &mod.User.ID, events[0].ActorID)
		require.Equal(t, second.ID.String(), events[0].TargetID)
		require.Equal(t, "Health claims need a source.", events[0].Reason)
		var denials []string
		for _, e := range b.auditEvents(t, admin.AccessToken, "?action="+auth.AuditAccessDenied+"&actor_id="+mod.User.ID.String()) {
			if e.TargetType == "content" {
				denials = append(denials, e.TargetID+" "+e.Reason)
			}
		}
		require.Equal(t, []string{own.ID.String() + " own_content", own.ID.String() + " own_content"}, denials)
	})
}

// Scenario 4: viewers fill an owner's space.
func TestAdSpaceFillOverHTTP(t *testing.T) {
	t.Parallel()
	forEachSpacesBackend(t, func(t *testing.T, b *spacesBundle) {
		owner := b.register(t, "owner@example.com")
		adv := b.role(t, "adv@example.com", auth.RoleAdvertiser)
		mod := b.role(t, "mod@example.com", auth.RoleModerator)
		ad := b.approvedContent(t, adv.AccessToken, mod.AccessToken, contentBody("Fresh beans"))
		ownerID := owner.User.ID

		// An anonymous viewer, with a device id and consent.
		f := b.fill(t, ownerID, "?device=install-1&gdpr_applies=true&gdpr_consent=true&screen=home&locale=en-US&keywords=coffee,Espresso", "")
		require.True(t, f.Enabled)
		require.True(t, f.Billable)
		require.Equal(t, []string{"banner"}, f.Formats)
		require.Equal(t, 60, f.RefreshIntervalSeconds)
		require.Len(t, f.Ads, 1)
		served := f.Ads[0]
		require.NotEqual(t, uuid.Nil, served.ID)
		require.Equal(t, "banner", served.Format)
		require.Equal(t, ad.Title, served.Title)
		require.Equal(t, ad.Body, served.Body)
		require.Equal(t, ad.ImageURL, served.ImageURL)
		require.Equal(t, ad.CallToAction, served.CallToAction)
		require.Equal(t, adv.User.ID.String(), served.Advertiser)
		require.False(t, served.House)
		tr := served.Tracking
		require.NotEmpty(t, tr.Token)
		require.Equal(t, testPublicBaseURL+"/c/"+tr.Token, tr.ClickURL)
		require.True(t, strings.HasSuffix(tr.ClickURL, tr.Token))
		require.Equal(t, testPublicBaseURL+"/events", tr.ImpressionURL)
		require.True(t, tr.ExpiresAt.After(time.Now()))
		// The token is opaque: neither it nor its bytes show where a click
		// leads, who owns the space, or who advertises.
		raw, err := base64.RawURLEncoding.DecodeString(tr.Token)
		require.NoError(t, err)
		for _, secret := range []string{ad.ClickURL, "shop.example.com", ownerID.String(), adv.User.ID.String()} {
			require.NotContains(t, tr.Token, secret)
			require.NotContains(t, string(raw), secret)
		}
		require.NotContains(t, string(raw), `"l":`, "the token's JSON is sealed, not merely encoded")

		// The X-Adshare-Device header stands in for the query parameter;
		// each showing has its own tracking.
		var viaHeader fillJSON
		b.send(t, request{method: http.MethodGet, path: "/ad-space/" + ownerID.String(), header: http.Header{"X-Adshare-Device": {"install-2"}}}).
			requireStatus(t, http.StatusOK).decode(t, &viaHeader)
		require.Len(t, viaHeader.Ads, 1)
		require.NotEqual(t, tr.Token, viaHeader.Ads[0].Tracking.Token)
		require.NotEqual(t, served.ID, viaHeader.Ads[0].ID)

		// The owner looking at their own space never bills; a signed-in
		// viewer does.
		mine := b.fill(t, ownerID, "", owner.AccessToken)
		require.False(t, mine.Billable)
		require.Len(t, mine.Ads, 1)
		theirs := b.fill(t, ownerID, "", mod.AccessToken)
		require.True(t, theirs.Billable)
		require.Len(t, theirs.Ads, 1)

		// A token that is sent must be good; the space must exist.
		b.do(t, http.MethodGet, "/ad-space/"+ownerID.String(), "not.a.token", nil).problem(t, http.StatusUnauthorized, "invalid_token")
		b.do(t, http.MethodGet, "/ad-space/"+uuid.NewString(), "", nil).problem(t, http.StatusNotFound, "space_not_found")
		b.do(t, http.MethodGet, "/ad-space/not-a-uuid", "", nil).problem(t, http.StatusNotFound, "space_not_found")

		// Bad queries name the parameter.
		eleven := strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",")
		for _, tc := range []struct {
			description string
			query       string
			code        string
			pointer     string
		}{
			{"no ads asked for", "?count=0", "invalid_query", "#/query/count"},
			{"too many ads asked for", "?count=99", "invalid_query", "#/query/count"},
			{"count that is not a number", "?count=two", "invalid_query", "#/query/count"},
			{"count given twice", "?count=1&count=2", "invalid_query", "#/query/count"},
			{"too many keywords", "?keywords=" + strings.Join(eleven, ","), "invalid_fill_request", "#/query/keywords"},
			{"keyword too long", "?keywords=" + strings.Repeat("k", 65), "invalid_fill_request", "#/query/keywords"},
			{"empty keyword", "?keywords=coffee,,tea", "invalid_fill_request", "#/query/keywords"},
			{"consent that is not a boolean", "?gdpr_consent=maybe", "invalid_query", "#/query/gdpr_consent"},
			{"context property too long", "?screen=" + strings.Repeat("s", 65), "invalid_query", "#/query/screen"},
			{"device id too long", "?device=" + strings.Repeat("d", 129), "invalid_query", "#/query/device"},
			{"device id of invalid UTF-8", "?device=%FF", "invalid_query", "#/query/device"},
			{"keyword of invalid UTF-8", "?keywords=caf%E9", "invalid_query", "#/query/keywords"},
			{"context property of invalid UTF-8", "?screen=%FF", "invalid_query", "#/query/screen"},
		} {
			t.Run(tc.description, func(t *testing.T) {
				p := b.do(t, http.MethodGet, "/ad-space/"+ownerID.String()+tc.query, "", nil).problem(t, http.StatusUnprocessableEntity, tc.code)
				require.Equal(t, []string{tc.pointer}, pointers(p))
			})
		}
		// Only known context properties are read; others are ignored, so
		// nothing else reaches the ad request.
		require.Len(t, b.fill(t, ownerID, "?colour=red&email=someone@example.com&count=1", "").Ads, 1)

		// A disabled space answers, with no ads.
		settings := defaultSettingsBody()
		b.putSettings(t, owner.AccessToken, with(settings, map[string]any{"enabled": false}))
		off := b.fill(t, ownerID, "", "")
		require.False(t, off.Enabled)
		require.Empty(t, off.Ads)
		require.NotNil(t, off.Ads)
		b.putSettings(t, owner.AccessToken, settings)
		require.Len(t, b.fill(t, ownerID, "", "").Ads, 1)

		// The owner's blocks are final.
		b.putSettings(t, owner.AccessToken, with(settings, map[string]any{"blocked_advertisers": []string{adv.User.ID.String()}}))
		require.Empty(t, b.fill(t, ownerID, "", "").Ads)
		b.putSettings(t, owner.AccessToken, with(settings, map[string]any{"blocked_categories": []string{"Food"}}))
		require.Empty(t, b.fill(t, ownerID, "", "").Ads)
		b.putSettings(t, owner.AccessToken, with(settings, map[string]any{"blocked_keywords": []string{"coffee"}}))
		require.Empty(t, b.fill(t, ownerID, "", "").Ads)
		b.putSettings(t, owner.AccessToken, with(settings, map[string]any{"formats": []string{"native"}}))
		require.Empty(t, b.fill(t, ownerID, "", "").Ads)

		// With house_fallback "own", the owner's own approved content fills
		// what nothing else does, as a house ad; it never runs as a paid ad
		// in their own space.
		owner = b.promote(t, owner, auth.RoleAdvertiser)
		house := b.approvedContent(t, owner.AccessToken, mod.AccessToken, contentBody("Owner's own beans"))
		b.putSettings(t, owner.AccessToken, with(settings, map[string]any{"house_fallback": "own"}))
		paid := b.fill(t, ownerID, "", "")
		require.Len(t, paid.Ads, 1)
		require.Equal(t, ad.Title, paid.Ads[0].Title, "a paid ad wins over the house ad")
		require.False(t, paid.Ads[0].House)
		b.putSettings(t, owner.AccessToken, with(settings, map[string]any{
			"house_fallback": "own", "blocked_advertisers": []string{adv.User.ID.String()},
		}))
		fallback := b.fill(t, ownerID, "?device=install-3&gdpr_consent=true", "")
		require.Len(t, fallback.Ads, 1)
		require.True(t, fallback.Ads[0].House)
		require.Equal(t, house.Title, fallback.Ads[0].Title)
		require.Equal(t, ownerID.String(), fallback.Ads[0].Advertiser)
		require.NotEmpty(t, fallback.Ads[0].Tracking.Token)
		b.putSettings(t, owner.AccessToken, with(settings, map[string]any{"blocked_advertisers": []string{adv.User.ID.String()}}))
		require.Empty(t, b.fill(t, ownerID, "", "").Ads, "without the fallback the owner's content stays out")

		// Elsewhere the owner's content is an ordinary paid ad.
		other := b.fill(t, adv.User.ID, "", "")
		require.Len(t, other.Ads, 1)
		require.Equal(t, house.Title, other.Ads[0].Title)
		require.False(t, other.Ads[0].House)
	})
}

// Scenario 5: a settings change on one instance reaches another's cached
// copy within a second (PostgreSQL and Redis only: the memory backend is
// one process).
func TestAdSpaceInvalidationAcrossInstances(t *testing.T) {
	t.Parallel()
	a := newSpacesBundle(t, backendPostgres)
	b := a.secondInstance(t)
	owner := a.register(t, "owner@example.com")
	ownerID := owner.User.ID

	require.Equal(t, 60, b.fill(t, ownerID, "", "").RefreshIntervalSeconds)
	// B now serves from its cache: a change behind the service's back (no
	// invalidation) is not seen.
	st := b.users.(adspaceStores)
	set := adspace.DefaultSettings()
	set.RefreshInterval = 90 * time.Second
	_, err := st.UpdateSettings(context.Background(), ownerID, set, 0, time.Now())
	require.NoError(t, err)
	require.Equal(t, 60, b.fill(t, ownerID, "", "").RefreshIntervalSeconds, "the second instance serves its cached copy")

	a.putSettings(t, owner.AccessToken, with(defaultSettingsBody(), map[string]any{"refresh_interval_seconds": 300}))
	rawFill := func() int {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, b.srv.URL+"/ad-space/"+ownerID.String(), nil)
		if err != nil {
			return 0
		}
		resp, err := b.client.Do(req)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		var f fillJSON
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&f) != nil {
			return 0
		}
		return f.RefreshIntervalSeconds
	}
	require.Eventually(t, func() bool { return rawFill() == 300 }, time.Second, 10*time.Millisecond)
	require.Equal(t, 300, b.fill(t, ownerID, "", "").RefreshIntervalSeconds)
	sp, _ := b.settings(t, owner.AccessToken)
	require.Equal(t, 300, sp.Settings.RefreshIntervalSeconds)
}
