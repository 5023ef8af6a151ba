package client

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Tokens is a sign-in's or refresh's answer: an access token, the
// refresh token that replaces it, and on sign-in the user.
type Tokens struct {
	// AccessToken is the bearer token of authenticated calls.
	AccessToken string `json:"access_token"`
	// TokenType is "Bearer".
	TokenType string `json:"token_type"`
	// ExpiresIn is how many seconds the access token lives.
	ExpiresIn int `json:"expires_in"`
	// RefreshToken is single-use: every refresh returns its successor.
	RefreshToken string `json:"refresh_token"`
	// RefreshTokenExpiresAt is when the session ends without a refresh.
	RefreshTokenExpiresAt time.Time `json:"refresh_token_expires_at"`
	// SessionID names the session.
	SessionID uuid.UUID `json:"session_id"`
	// User is the signed-in account (on sign-in; nil on refresh).
	User *User `json:"user,omitempty"`
	// Created is true when this sign-in created the account.
	Created bool `json:"created,omitempty"`
	// ExpiresAt is when the access token expires, by the client's clock
	// at the answer (ExpiresIn after it); not sent by the server.
	ExpiresAt time.Time `json:"-"`
}

// User is an account as its owner sees it.
type User struct {
	ID          uuid.UUID       `json:"id"`
	Email       string          `json:"email"`
	Role        string          `json:"role"`
	Tier        string          `json:"tier"`
	DisplayName string          `json:"display_name"`
	Preferences json.RawMessage `json:"preferences"`
	Settings    json.RawMessage `json:"settings"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Permissions []string        `json:"permissions"`
}

// RegisterRequest creates an account.
type RegisterRequest struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name,omitempty"`
}

// SpaceSettings are what an owner chooses about their ad space.
type SpaceSettings struct {
	Enabled                bool     `json:"enabled"`
	RefreshIntervalSeconds int      `json:"refresh_interval_seconds"`
	MaxAdsPerView          int      `json:"max_ads_per_view"`
	Formats                []string `json:"formats"`
	Keywords               []string `json:"keywords,omitempty"`
	BlockedKeywords        []string `json:"blocked_keywords,omitempty"`
	AllowedCategories      []string `json:"allowed_categories,omitempty"`
	BlockedCategories      []string `json:"blocked_categories,omitempty"`
	BlockedAdvertisers     []string `json:"blocked_advertisers,omitempty"`
	// HouseFallback is "none" or "own" (the owner's own content when
	// nothing else fills).
	HouseFallback string `json:"house_fallback,omitempty"`
}

// Space is an owner's ad space with its settings and version (for
// If-Match on updates).
type Space struct {
	OwnerID   uuid.UUID     `json:"owner_id"`
	Settings  SpaceSettings `json:"settings"`
	Version   int64         `json:"version"`
	UpdatedAt time.Time     `json:"updated_at"`
}

// Bid is an ad's price: model "cpm" (per thousand impressions) or "cpc"
// (per click), in micros of the currency unit.
type Bid struct {
	Model  string `json:"model"`
	Micros int64  `json:"micros"`
}

// Image describes an ad's image.
type Image struct {
	MIMEType string `json:"mime_type"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	Bytes    int64  `json:"bytes"`
}

// Schedule bounds when an ad runs (nil: unbounded).
type Schedule struct {
	Start *time.Time `json:"start"`
	End   *time.Time `json:"end"`
}

// ContentRequest creates (or, with Version, updates) an ad.
type ContentRequest struct {
	Format            string    `json:"format"`
	Title             string    `json:"title"`
	Body              string    `json:"body,omitempty"`
	ImageURL          string    `json:"image_url,omitempty"`
	Image             *Image    `json:"image,omitempty"`
	ClickURL          string    `json:"click_url"`
	CallToAction      string    `json:"call_to_action,omitempty"`
	Categories        []string  `json:"categories,omitempty"`
	Keywords          []string  `json:"keywords,omitempty"`
	Bid               Bid       `json:"bid"`
	DailyBudgetMicros int64     `json:"daily_budget_micros,omitempty"`
	TotalBudgetMicros int64     `json:"total_budget_micros"`
	Schedule          *Schedule `json:"schedule,omitempty"`
	// Submit sends the ad to review at once.
	Submit bool `json:"submit,omitempty"`
	// Version is required on update: the version being replaced.
	Version int64 `json:"version,omitempty"`
}

// Content is an ad an advertiser created.
type Content struct {
	ID                uuid.UUID  `json:"id"`
	AdvertiserID      uuid.UUID  `json:"advertiser_id"`
	Status            string     `json:"status"`
	RejectReason      string     `json:"reject_reason"`
	Format            string     `json:"format"`
	Title             string     `json:"title"`
	Body              string     `json:"body"`
	ImageURL          string     `json:"image_url"`
	Image             Image      `json:"image"`
	ClickURL          string     `json:"click_url"`
	CallToAction      string     `json:"call_to_action"`
	Categories        []string   `json:"categories"`
	Keywords          []string   `json:"keywords"`
	Bid               Bid        `json:"bid"`
	DailyBudgetMicros int64      `json:"daily_budget_micros"`
	TotalBudgetMicros int64      `json:"total_budget_micros"`
	Schedule          Schedule   `json:"schedule"`
	Version           int64      `json:"version"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
	SubmittedAt       *time.Time `json:"submitted_at"`
	ReviewedAt        *time.Time `json:"reviewed_at"`
}

// FillParams describe the viewer and the device of a fill.
type FillParams struct {
	// Device is a stable per-install id (for frequency caps and the
	// pseudonymous viewer key).
	Device string
	// GDPRApplies and GDPRConsent carry the consent state (TCF string).
	GDPRApplies *bool
	GDPRConsent string
	// DoNotSell is the CCPA opt-out.
	DoNotSell bool
	// Count asks for up to this many ads (0: the space's setting).
	Count int
	// Keywords add context keywords.
	Keywords []string
	// Locale, OS and AppVersion describe the app.
	Locale, OS, AppVersion string
}

// Fill is what an ad space shows now.
type Fill struct {
	OwnerID                uuid.UUID  `json:"owner_id"`
	Enabled                bool       `json:"enabled"`
	Formats                []string   `json:"formats"`
	RefreshIntervalSeconds int        `json:"refresh_interval_seconds"`
	Billable               bool       `json:"billable"`
	Ads                    []ServedAd `json:"ads"`
}

// ServedAd is one ad in a fill, with our own tracking links.
type ServedAd struct {
	ID           uuid.UUID `json:"id"`
	Format       string    `json:"format"`
	Title        string    `json:"title"`
	Body         string    `json:"body"`
	ImageURL     string    `json:"image_url"`
	Width        int       `json:"width"`
	Height       int       `json:"height"`
	CallToAction string    `json:"call_to_action"`
	HTML         string    `json:"html,omitempty"`
	AdvertiserID string    `json:"advertiser_id"`
	House        bool      `json:"house"`
	Tracking     Tracking  `json:"tracking"`
}

// Tracking are a served ad's links: report the viewable impression with
// Token, send a tap to ClickURL.
type Tracking struct {
	Token         string    `json:"token"`
	ImpressionURL string    `json:"impression_url"`
	ClickURL      string    `json:"click_url"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// Event types of EventReport.
const (
	Impression = "impression"
	Click      = "click"
	Conversion = "conversion"
)

// EventReport is one tracking event the app reports.
type EventReport struct {
	Type       string     `json:"type"`
	Token      string     `json:"token"`
	OccurredAt *time.Time `json:"occurred_at,omitempty"`
	// Name and ValueMicros describe a conversion.
	Name        string `json:"name,omitempty"`
	ValueMicros int64  `json:"value_micros,omitempty"`
}

// EventResult is the server's answer for one reported event.
type EventResult struct {
	TrackingID *uuid.UUID `json:"tracking_id"`
	// Status is "accepted", "duplicate" or "rejected".
	Status   string      `json:"status"`
	Valid    bool        `json:"valid"`
	Rule     string      `json:"rule,omitempty"`
	Billable bool        `json:"billable"`
	Error    *EventError `json:"error,omitempty"`
}

// EventError says why one event was rejected.
type EventError struct {
	Code   string         `json:"code"`
	Detail string         `json:"detail"`
	Errors []FieldProblem `json:"errors,omitempty"`
}

// TopUp is an advertiser's payment into their budget.
type TopUp struct {
	ID           uuid.UUID `json:"id"`
	AdvertiserID uuid.UUID `json:"advertiser_id"`
	// Amount is in minor units (cents).
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// Status is "pending", "awaiting_confirmation", "succeeded" or
	// "failed".
	Status       string    `json:"status"`
	PaymentID    string    `json:"payment_id,omitempty"`
	Refunded     int64     `json:"refunded"`
	Disputed     int64     `json:"disputed"`
	ClientSecret string    `json:"client_secret,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// ReportParams choose a report's window and shape (zero values: the
// server's defaults).
type ReportParams struct {
	// Scope is "own" (default), "advertiser" or "platform".
	Scope    string
	From, To time.Time
	// Granularity is "hour", "day", "week" or "month".
	Granularity string
	// TZ is an IANA time zone for the buckets.
	TZ string
	// GroupBy ("owner", "ad", "advertiser") for the performance report.
	GroupBy string
}

// Totals are a performance report's figures.
type Totals struct {
	Requested                    int64            `json:"requested"`
	Filled                       int64            `json:"filled"`
	FillRate                     float64          `json:"fill_rate"`
	Impressions                  int64            `json:"impressions"`
	ValidImpressions             int64            `json:"valid_impressions"`
	BillableImpressions          int64            `json:"billable_impressions"`
	Clicks                       int64            `json:"clicks"`
	ValidClicks                  int64            `json:"valid_clicks"`
	BillableClicks               int64            `json:"billable_clicks"`
	CTR                          float64          `json:"ctr"`
	Conversions                  int64            `json:"conversions"`
	InvalidByRule                map[string]int64 `json:"invalid_by_rule"`
	SpendMicros                  int64            `json:"spend_micros"`
	EstimatedOwnerEarningsMicros int64            `json:"estimated_owner_earnings_micros"`
}

// PerformanceRow is one bucket (and group) of a performance report.
type PerformanceRow struct {
	Totals
	Bucket       time.Time  `json:"bucket"`
	OwnerID      *uuid.UUID `json:"owner_id,omitempty"`
	Ad           string     `json:"ad,omitempty"`
	AdvertiserID string     `json:"advertiser_id,omitempty"`
}

// PerformanceReport is fills, impressions, clicks and spend over time.
type PerformanceReport struct {
	From        time.Time        `json:"from"`
	To          time.Time        `json:"to"`
	Granularity string           `json:"granularity"`
	TimeZone    string           `json:"time_zone"`
	Rows        []PerformanceRow `json:"rows"`
	Totals      Totals           `json:"totals"`
}

// Revenue is a split of money between owner and platform, in micros.
type Revenue struct {
	GrossMicros    int64 `json:"gross_micros"`
	OwnerMicros    int64 `json:"owner_micros"`
	PlatformMicros int64 `json:"platform_micros"`
}

// RevenueRow is one bucket of a revenue report.
type RevenueRow struct {
	Revenue
	Bucket time.Time `json:"bucket"`
}

// FinalRevenue is what settlement made final.
type FinalRevenue struct {
	OwnerMicros    int64 `json:"owner_micros"`
	PlatformMicros int64 `json:"platform_micros"`
	PaidOutMicros  int64 `json:"paid_out_micros"`
}

// RevenueReport is estimated (real-time) and final (settled) revenue.
type RevenueReport struct {
	From        time.Time     `json:"from"`
	To          time.Time     `json:"to"`
	Granularity string        `json:"granularity"`
	TimeZone    string        `json:"time_zone"`
	Rows        []RevenueRow  `json:"rows"`
	Estimated   Revenue       `json:"estimated"`
	Final       *FinalRevenue `json:"final"`
}
