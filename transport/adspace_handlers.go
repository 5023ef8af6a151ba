package transport

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

// settingsFieldNames maps the service's names of settings fields to the
// request's, where they differ, so that field errors point into the body.
var settingsFieldNames = map[string]string{"refresh_interval": "refresh_interval_seconds"}

// fillFieldNames maps the service's names of fill request fields to the
// query parameters they come from.
var fillFieldNames = map[string]string{
	"keywords": "query/keywords", "count": "query/count", "device": "query/device", "properties": "query/properties",
}

// renameFields returns err with the names of its field errors mapped
// through names (others are kept), or err itself when it has none.
func renameFields(err error, names map[string]string) error {
	e := errs.As(err)
	if e == nil || len(e.Fields) == 0 {
		return err
	}
	fields := make(map[string]string, len(e.Fields))
	for k, v := range e.Fields {
		if n, ok := names[k]; ok {
			k = n
		}
		fields[k] = v
	}
	return e.WithFields(fields)
}

// settingsJSON is an ad space's settings as the API shows and takes them.
type settingsJSON struct {
	Enabled                bool     `json:"enabled"`
	RefreshIntervalSeconds int      `json:"refresh_interval_seconds"`
	MaxAdsPerView          int      `json:"max_ads_per_view"`
	Formats                []string `json:"formats"`
	Keywords               []string `json:"keywords"`
	BlockedKeywords        []string `json:"blocked_keywords"`
	AllowedCategories      []string `json:"allowed_categories"`
	BlockedCategories      []string `json:"blocked_categories"`
	BlockedAdvertisers     []string `json:"blocked_advertisers"`
	HouseFallback          string   `json:"house_fallback"`
}

func settingsOf(s adspace.Settings) settingsJSON {
	return settingsJSON{
		Enabled: s.Enabled, RefreshIntervalSeconds: int(s.RefreshInterval / time.Second), MaxAdsPerView: s.MaxAdsPerView,
		Formats: s.Formats, Keywords: s.Keywords, BlockedKeywords: s.BlockedKeywords,
		AllowedCategories: s.AllowedCategories, BlockedCategories: s.BlockedCategories,
		BlockedAdvertisers: s.BlockedAdvertisers, HouseFallback: s.HouseFallback,
	}
}

func (j settingsJSON) settings() adspace.Settings {
	return adspace.Settings{
		Enabled: j.Enabled, RefreshInterval: time.Duration(j.RefreshIntervalSeconds) * time.Second, MaxAdsPerView: j.MaxAdsPerView,
		Formats: orEmpty(j.Formats), Keywords: orEmpty(j.Keywords), BlockedKeywords: orEmpty(j.BlockedKeywords),
		AllowedCategories: orEmpty(j.AllowedCategories), BlockedCategories: orEmpty(j.BlockedCategories),
		BlockedAdvertisers: orEmpty(j.BlockedAdvertisers), HouseFallback: j.HouseFallback,
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Valid checks what the types cannot: the ranges are checked again, with
// the owner's tier, by the service.
func (j *settingsJSON) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(j.RefreshIntervalSeconds > 0, "refresh_interval_seconds", "is required")
	f.Check(j.MaxAdsPerView > 0, "max_ads_per_view", "is required")
	f.Check(len(j.Formats) > 0, "formats", "at least one format is required")
	return f
}

type spaceJSON struct {
	OwnerID   uuid.UUID    `json:"owner_id"`
	Settings  settingsJSON `json:"settings"`
	Version   int64        `json:"version"`
	UpdatedAt time.Time    `json:"updated_at"`
}

func spaceOf(sp adspace.Space) spaceJSON {
	return spaceJSON{OwnerID: sp.OwnerID, Settings: settingsOf(sp.Settings), Version: sp.Version, UpdatedAt: sp.UpdatedAt}
}

// etag is a space or content version as an HTTP entity tag.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatchVersion reads If-Match as a version (0 when absent).
func ifMatchVersion(r *http.Request) (int64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || v <= 0 {
		return 0, errInvalidQuery.WithMessage("If-Match must be the entity tag of a version, such as \"3\"")
	}
	return v, nil
}

func (s *server) handleGetSettings() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		sp, err := s.spaces.MySpace(r.Context(), p)
		if err != nil {
			return err
		}
		w.Header().Set("ETag", etag(sp.Version))
		writeJSON(w, http.StatusOK, spaceOf(sp))
		return nil
	})
}

func (s *server) handlePutSettings() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		version, err := ifMatchVersion(r)
		if err != nil {
			return err
		}
		req, err := decodeJSON[settingsJSON](r)
		if err != nil {
			return err
		}
		sp, err := s.spaces.UpdateSettings(r.Context(), p, req.settings(), version)
		if err != nil {
			return renameFields(err, settingsFieldNames)
		}
		w.Header().Set("ETag", etag(sp.Version))
		writeJSON(w, http.StatusOK, spaceOf(sp))
		return nil
	})
}

// servedAdJSON is an ad as the app renders and tracks it.
type servedAdJSON struct {
	ID           uuid.UUID    `json:"id"`
	Format       string       `json:"format"`
	Title        string       `json:"title"`
	Body         string       `json:"body"`
	ImageURL     string       `json:"image_url"`
	Width        int          `json:"width"`
	Height       int          `json:"height"`
	CallToAction string       `json:"call_to_action"`
	HTML         string       `json:"html,omitempty"`
	Advertiser   string       `json:"advertiser_id"`
	House        bool         `json:"house"`
	Tracking     trackingJSON `json:"tracking"`
}

type trackingJSON struct {
	Token         string    `json:"token"`
	ImpressionURL string    `json:"impression_url"`
	ClickURL      string    `json:"click_url"`
	ExpiresAt     time.Time `json:"expires_at"`

	// clickPrefix, when set, stands for ClickURL in appendJSON, which
	// writes the click URL as clickPrefix followed by Token: the fill does
	// not build that string (a token's length again) only to copy it.
	clickPrefix string
}

type fillJSON struct {
	OwnerID                uuid.UUID      `json:"owner_id"`
	Enabled                bool           `json:"enabled"`
	Formats                []string       `json:"formats"`
	RefreshIntervalSeconds int            `json:"refresh_interval_seconds"`
	Billable               bool           `json:"billable"`
	Ads                    []servedAdJSON `json:"ads"`
}

// appendJSON implements jsonAppender: a fill is the API's hottest answer.
func (f *fillJSON) appendJSON(b []byte) []byte {
	b = appendJSONUUID(append(b, `{"owner_id":`...), f.OwnerID)
	b = strconv.AppendBool(append(b, `,"enabled":`...), f.Enabled)
	b = appendJSONStrings(append(b, `,"formats":`...), f.Formats)
	b = appendJSONInt(append(b, `,"refresh_interval_seconds":`...), f.RefreshIntervalSeconds)
	b = strconv.AppendBool(append(b, `,"billable":`...), f.Billable)
	b = append(b, `,"ads":`...)
	if f.Ads == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range f.Ads {
		if i > 0 {
			b = append(b, ',')
		}
		b = f.Ads[i].appendJSON(b)
	}
	return append(b, "]}"...)
}

// appendJSON writes the ad as encoding/json does, for fillJSON.
func (a *servedAdJSON) appendJSON(b []byte) []byte {
	b = appendJSONUUID(append(b, `{"id":`...), a.ID)
	b = appendJSONString(append(b, `,"format":`...), a.Format)
	b = appendJSONString(append(b, `,"title":`...), a.Title)
	b = appendJSONString(append(b, `,"body":`...), a.Body)
	b = appendJSONString(append(b, `,"image_url":`...), a.ImageURL)
	b = appendJSONInt(append(b, `,"width":`...), a.Width)
	b = appendJSONInt(append(b, `,"height":`...), a.Height)
	b = appendJSONString(append(b, `,"call_to_action":`...), a.CallToAction)
	if a.HTML != "" {
		b = appendJSONString(append(b, `,"html":`...), a.HTML)
	}
	b = appendJSONString(append(b, `,"advertiser_id":`...), a.Advertiser)
	b = strconv.AppendBool(append(b, `,"house":`...), a.House)
	t := &a.Tracking
	b = appendJSONString(append(b, `,"tracking":{"token":`...), t.Token)
	b = appendJSONString(append(b, `,"impression_url":`...), t.ImpressionURL)
	if t.clickPrefix != "" {
		b = appendJSONStringPair(append(b, `,"click_url":`...), t.clickPrefix, t.Token)
	} else {
		b = appendJSONString(append(b, `,"click_url":`...), t.ClickURL)
	}
	b = appendJSONTime(append(b, `,"expires_at":`...), t.ExpiresAt)
	return append(b, "}}"...)
}

// fillAnswers hold fill answers while they are written: the answer and
// its list of ads cost the hottest route no allocation.
// (A pooled answer's list is never nil: no ad is [], not null.)
var fillAnswers = sync.Pool{New: func() any { return &fillJSON{Ads: make([]servedAdJSON, 0, 1)} }}

// putFillAnswer returns f to the pool, holding no ad's strings, unless a
// long list grew it.
func putFillAnswer(f *fillJSON) {
	if cap(f.Ads) > adspace.MaxAdsPerViewLimit {
		return
	}
	clear(f.Ads)
	*f = fillJSON{Ads: f.Ads[:0]}
	fillAnswers.Put(f)
}

// handleFill serves GET /ad-space/{userId}: the owner's space with ads for
// this viewer. No ad is 200 with an empty list (the app still needs the
// refresh interval).
func (s *server) handleFill() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		owner, err := pathUUID(r, "userId")
		if err != nil {
			return adspace.ErrSpaceNotFound
		}
		viewer, ok, err := s.optionalPrincipal(r)
		if err != nil {
			return err
		}
		q := newQuery(r)
		fr := adspace.FillRequest{
			Owner:       owner,
			Device:      q.string("device", 128),
			GDPRApplies: !q.present("gdpr_applies") || q.bool("gdpr_applies"),
			GDPRConsent: q.bool("gdpr_consent"),
			DoNotSell:   q.bool("do_not_sell"),
			GPC:         gpc(r),
			Count:       int(q.int("count", 1, adspace.MaxAdsPerViewLimit)),
		}
		if kw := q.string("keywords", 700); kw != "" {
			fr.Keywords = strings.Split(kw, ",")
		}
		for _, name := range adspace.ContextProperties {
			if v := q.string(name, 64); v != "" {
				if fr.Properties == nil {
					fr.Properties = map[string]string{}
				}
				fr.Properties[name] = v
			}
		}
		if err := q.err(); err != nil {
			return err
		}
		if ok {
			fr.Viewer = &viewer
			if fr.GPC { // recorded, so that it holds on devices without the signal too
				if _, err := s.auth.RecordGPC(r.Context(), viewer.UserID); err != nil {
					s.logger.WarnContext(r.Context(), "transport: a GPC signal was honoured but not recorded", slog.Any("error", err))
				}
			}
		} else if d := r.Header.Get("X-Adshare-Device"); d != "" && fr.Device == "" {
			fr.Device = d
		}
		fill, err := s.spaces.Fill(r.Context(), fr)
		if err != nil {
			return renameFields(err, fillFieldNames)
		}
		set := fill.Space.Settings
		out := fillAnswers.Get().(*fillJSON)
		defer putFillAnswer(out)
		*out = fillJSON{
			OwnerID: fill.Space.OwnerID, Enabled: set.Enabled, Formats: set.Formats,
			RefreshIntervalSeconds: int(set.RefreshInterval / time.Second), Billable: fill.Billable,
			Ads: out.Ads[:0],
		}
		for i := range fill.Ads {
			ad := &fill.Ads[i]
			c := &ad.Creative
			out.Ads = append(out.Ads, servedAdJSON{
				ID: ad.TrackingID, Format: c.Format, Title: c.Title, Body: c.Body, ImageURL: c.ImageURL,
				Width: c.Width, Height: c.Height, CallToAction: c.CallToAction, HTML: c.HTML,
				Advertiser: ad.AdvertiserID, House: ad.House,
				Tracking: trackingJSON{
					Token: ad.Token, ImpressionURL: s.eventsURL, clickPrefix: s.clickPrefix, ExpiresAt: ad.ExpiresAt,
				},
			})
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})
}

// contentJSON is ad content as its advertiser (and moderators) see it.
type contentJSON struct {
	ID           uuid.UUID `json:"id"`
	AdvertiserID uuid.UUID `json:"advertiser_id"`
	Status       string    `json:"status"`
	RejectReason string    `json:"reject_reason"`
	creativeJSON
	Version     int64      `json:"version"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	SubmittedAt *time.Time `json:"submitted_at"`
	ReviewedAt  *time.Time `json:"reviewed_at"`
}

// creativeJSON is what an advertiser writes of their content: the body of
// a create or an edit, and part of every content answer.
type creativeJSON struct {
	Format            string       `json:"format"`
	Title             string       `json:"title"`
	Body              string       `json:"body"`
	ImageURL          string       `json:"image_url"`
	Image             imageJSON    `json:"image"`
	ClickURL          string       `json:"click_url"`
	CallToAction      string       `json:"call_to_action"`
	Categories        []string     `json:"categories"`
	Keywords          []string     `json:"keywords"`
	Bid               bidJSON      `json:"bid"`
	DailyBudgetMicros int64        `json:"daily_budget_micros"`
	TotalBudgetMicros int64        `json:"total_budget_micros"`
	Schedule          scheduleJSON `json:"schedule"`
}

type imageJSON struct {
	MimeType string `json:"mime_type"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	Bytes    int64  `json:"bytes"`
}

type bidJSON struct {
	Model  string `json:"model"`
	Micros int64  `json:"micros"`
}

type scheduleJSON struct {
	Start *time.Time `json:"start"`
	End   *time.Time `json:"end"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func contentOf(c adspace.Content) contentJSON {
	return contentJSON{
		ID: c.ID, AdvertiserID: c.AdvertiserID, Status: string(c.Status), RejectReason: c.RejectReason,
		creativeJSON: creativeOf(c.ContentDraft), Version: c.Version, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		SubmittedAt: timePtr(c.SubmittedAt), ReviewedAt: timePtr(c.ReviewedAt),
	}
}

// creativeOf is the JSON of a content's creative and terms; draft reads
// it back.
func creativeOf(d adspace.ContentDraft) creativeJSON {
	return creativeJSON{
		Format: d.Format, Title: d.Title, Body: d.Body, ImageURL: d.ImageURL,
		Image:    imageJSON{MimeType: d.Image.MimeType, Width: d.Image.Width, Height: d.Image.Height, Bytes: d.Image.Bytes},
		ClickURL: d.ClickURL, CallToAction: d.CallToAction, Categories: orEmpty(d.Categories), Keywords: orEmpty(d.Keywords),
		Bid:               bidJSON{Model: string(d.Bid.Model), Micros: d.Bid.Micros},
		DailyBudgetMicros: d.DailyBudgetMicros, TotalBudgetMicros: d.TotalBudgetMicros,
		Schedule: scheduleJSON{Start: timePtr(d.Schedule.Start), End: timePtr(d.Schedule.End)},
	}
}

// contentRequest is the body of POST and PUT /ad-space/content.
type contentRequest struct {
	creativeJSON
	// Submit sends the content to review; else it stays a draft.
	Submit bool `json:"submit"`
	// Version is required on PUT: the version being edited.
	Version int64 `json:"version"`
}

func (c creativeJSON) draft() adspace.ContentDraft {
	d := adspace.ContentDraft{
		Format: c.Format, Title: c.Title, Body: c.Body, ImageURL: c.ImageURL,
		Image:    adspace.Image{MimeType: c.Image.MimeType, Width: c.Image.Width, Height: c.Image.Height, Bytes: c.Image.Bytes},
		ClickURL: c.ClickURL, CallToAction: c.CallToAction, Categories: orEmpty(c.Categories), Keywords: orEmpty(c.Keywords),
		Bid:               adspace.Bid{Model: adspace.BidModel(c.Bid.Model), Micros: c.Bid.Micros},
		DailyBudgetMicros: c.DailyBudgetMicros, TotalBudgetMicros: c.TotalBudgetMicros,
	}
	if c.Schedule.Start != nil {
		d.Schedule.Start = *c.Schedule.Start
	}
	if c.Schedule.End != nil {
		d.Schedule.End = *c.Schedule.End
	}
	return d
}

func (s *server) handleCreateContent() http.Handler {
	return s.requirePermission(auth.PermContentCreate, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		req, err := decodeJSON[contentRequest](r)
		if err != nil {
			return err
		}
		c, err := s.spaces.CreateContent(r.Context(), p, req.draft(), req.Submit)
		if err != nil {
			return err
		}
		w.Header().Set("Location", "/ad-space/content/"+c.ID.String())
		w.Header().Set("ETag", etag(c.Version))
		writeJSON(w, http.StatusCreated, contentOf(c))
		return nil
	})
}

func (s *server) handleListContent() http.Handler {
	return s.requirePermission(auth.PermContentCreate, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		q := newQuery(r)
		f := adspace.ContentFilter{Status: adspace.Status(q.string("status", 32)), After: q.uuid("after"), Limit: int(q.int("limit", 1, 200))}
		if f.Status != "" && !f.Status.Valid() {
			q.fields.Add("query/status", "must be a content status such as approved")
		}
		if err := q.err(); err != nil {
			return err
		}
		list, err := s.spaces.ListContent(r.Context(), p, f)
		if err != nil {
			return err
		}
		writeContentList(w, list)
		return nil
	})
}

func writeContentList(w http.ResponseWriter, list []adspace.Content) {
	out := make([]contentJSON, 0, len(list))
	for _, c := range list {
		out = append(out, contentOf(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"contents": out})
}

func (s *server) handleGetContent() http.Handler {
	return s.requirePermission(auth.PermContentCreate, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return adspace.ErrContentNotFound
		}
		c, err := s.spaces.Content(r.Context(), p, id)
		if err != nil {
			return err
		}
		w.Header().Set("ETag", etag(c.Version))
		writeJSON(w, http.StatusOK, contentOf(c))
		return nil
	})
}

func (s *server) handleUpdateContent() http.Handler {
	return s.requirePermission(auth.PermContentCreate, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return adspace.ErrContentNotFound
		}
		req, err := decodeJSON[contentRequest](r)
		if err != nil {
			return err
		}
		if req.Version <= 0 {
			return errInvalidBody.WithFields(errs.Fields{"version": "is required: the version you edited"})
		}
		c, err := s.spaces.UpdateContent(r.Context(), p, id, req.draft(), req.Version, req.Submit)
		if err != nil {
			return err
		}
		w.Header().Set("ETag", etag(c.Version))
		writeJSON(w, http.StatusOK, contentOf(c))
		return nil
	})
}

// handleContentAction serves POST /ad-space/content/{id}/<action>.
func (s *server) handleContentAction(action string) http.Handler {
	return s.requirePermission(auth.PermContentCreate, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return adspace.ErrContentNotFound
		}
		c, err := s.spaces.Transition(r.Context(), p, id, action)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, contentOf(c))
		return nil
	})
}

func (s *server) handleReviewQueue() http.Handler {
	return s.requirePermission(auth.PermContentModerate, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		q := newQuery(r)
		after := adspace.QueuePlace{SubmittedAt: q.time("after"), ID: q.uuid("after_id")}
		limit := int(q.int("limit", 1, 200))
		if after.ID != uuid.Nil && after.SubmittedAt.IsZero() {
			q.fields.Add("query/after_id", "goes with after: the submission time and id of the last content seen")
		}
		if err := q.err(); err != nil {
			return err
		}
		list, err := s.spaces.ReviewQueue(r.Context(), p, after, limit)
		if err != nil {
			return err
		}
		writeContentList(w, list)
		return nil
	})
}

func (s *server) handleApprove() http.Handler {
	return s.requirePermission(auth.PermContentModerate, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return adspace.ErrContentNotFound
		}
		c, err := s.spaces.Approve(r.Context(), p, id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, contentOf(c))
		return nil
	})
}

type rejectRequest struct {
	Reason string `json:"reason"`
}

func (s *server) handleReject() http.Handler {
	return s.requirePermission(auth.PermContentModerate, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return adspace.ErrContentNotFound
		}
		req, err := decodeJSON[rejectRequest](r)
		if err != nil {
			return err
		}
		c, err := s.spaces.Reject(r.Context(), p, id, req.Reason)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, contentOf(c))
		return nil
	})
}
