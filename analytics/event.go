package analytics

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/errs"
)

// EventType names what happened to a served ad.
type EventType string

// Event types.
const (
	// Impression: the ad was viewable (at least half on screen for one
	// second, the MRC rule), as the app reports it.
	Impression EventType = "impression"
	// Click: the viewer followed the ad.
	Click EventType = "click"
	// Conversion: a custom event after a click (sign-up, purchase...).
	Conversion EventType = "conversion"
)

// Valid reports whether t is a known type.
func (t EventType) Valid() bool { return t == Impression || t == Click || t == Conversion }

// Event is one accepted report, with what its token says and what the
// filters decided. Accepted means stored: invalid traffic is kept too, but
// never billed.
type Event struct {
	// TrackingID and Type (and Name, for conversions) identify the event:
	// an impression or a click counts once per token.
	TrackingID uuid.UUID
	Type       EventType
	// Name of a conversion ("signup", "purchase"); empty otherwise.
	Name string
	// Ad is what the token says about the served ad: its space, viewer,
	// identity, price, whether it may bill (Billable: false for the
	// owner's own views, house ads and stale fallbacks) and when it was
	// served (Ad.IssuedAt places the event in time, see ServedAd).
	Ad tracking.Ad
	// OccurredAt is when the app says it happened; ReceivedAt when we got it.
	OccurredAt time.Time
	ReceivedAt time.Time
	// Valid is false when an invalid-traffic rule fired; Rule names it.
	Valid bool
	Rule  string
	// SpendMicros is what the advertiser pays for this event (0 unless
	// valid and billable); OwnerEarningsMicros the owner's estimated share
	// at the tier in force, OwnerShareBP that share.
	SpendMicros         int64
	OwnerEarningsMicros int64
	OwnerShareBP        int
	// ValueMicros is a conversion's reported value.
	ValueMicros int64
	// ClientPrefix is the client address truncated (/24, /48), never the
	// full address; UserAgent is truncated to 256 bytes.
	ClientPrefix string
	UserAgent    string

	// upstream are the ad server's pixels, from the token: fired after
	// commit, never stored (unexported, so no store can see them).
	upstream tracking.Upstream
	// unprofiled is true when the viewer did not consent to per-viewer
	// analytics (tracking.Payload.NoViewerAnalytics): the checks use the
	// viewer's id and key, the store never sees them (forgetViewer).
	unprofiled bool
}

// Key identifies an event for deduplication.
func (e Event) Key() EventKey { return EventKey{e.TrackingID, e.Type, e.Name} }

// forgetViewer drops the viewer's identity from an unprofiled event,
// before it is stored. An owner viewing their own space stays named (the
// row names them as owner anyway), so their views still read as theirs.
func (e *Event) forgetViewer() {
	if !e.unprofiled {
		return
	}
	if e.Ad.Viewer != e.Ad.Owner {
		e.Ad.Viewer = [16]byte{}
	}
	e.Ad.ViewerKey = ""
}

// flag marks e invalid traffic under rule: it is kept, and costs and earns
// nothing.
func (e *Event) flag(rule string) {
	e.Valid, e.Rule = false, rule
	e.SpendMicros, e.OwnerEarningsMicros, e.OwnerShareBP = 0, 0, 0
}

// EventKey identifies an event: a token, a type and (for conversions) a name.
type EventKey struct {
	TrackingID uuid.UUID
	Type       EventType
	Name       string
}

// Verdict is a stored event's judgement: valid or flagged by Rule, and what
// it spent.
type Verdict struct {
	Valid       bool
	Rule        string
	SpendMicros int64
}

// FillCount is how many fills a space got and how many found an ad, in
// one hour.
type FillCount struct {
	Owner     uuid.UUID
	Hour      time.Time
	Requested int64
	Filled    int64
}

// Granularity is a report's bucket size.
type Granularity string

// Granularities.
const (
	Hour  Granularity = "hour"
	Day   Granularity = "day"
	Week  Granularity = "week"
	Month Granularity = "month"
)

// Dimension groups report rows.
type Dimension string

// Dimensions.
const (
	ByOwner      Dimension = "owner"
	ByAd         Dimension = "ad"
	ByAdvertiser Dimension = "advertiser"
)

// Query selects and groups rollups.
type Query struct {
	Granularity Granularity
	// From (inclusive) and To (exclusive), aligned by the caller to the
	// granularity in Location.
	From, To time.Time
	// Location buckets days, weeks (starting Monday) and months.
	Location *time.Location
	// Owner and Advertiser restrict the rows (zero: all).
	Owner      uuid.UUID
	Advertiser string
	// GroupBy adds dimensions to the bucket.
	GroupBy []Dimension
}

// Row is one bucket (and group) of a report.
type Row struct {
	Bucket       time.Time
	Owner        uuid.UUID // when grouped by owner
	AdKey        string    // "source:adID", when grouped by ad
	AdvertiserID string    // when grouped by advertiser
	Totals
}

// Counts are the counters of a report row, and of the rollup rows that
// stores sum into report rows.
type Counts struct {
	// Requested and Filled count the ads fills asked for and got.
	Requested int64
	Filled    int64
	// Impressions and Clicks count every stored event of their type; the
	// Valid ones passed the invalid-traffic rules, the Billable ones are
	// valid and may earn.
	Impressions         int64
	ValidImpressions    int64
	BillableImpressions int64
	Clicks              int64
	ValidClicks         int64
	BillableClicks      int64
	Conversions         int64
	// SpendMicros is what advertisers pay; OwnerEarningsMicros the owners'
	// estimated share of it.
	SpendMicros         int64
	OwnerEarningsMicros int64
}

// Add adds o to c, counter by counter.
func (c *Counts) Add(o Counts) {
	c.Requested += o.Requested
	c.Filled += o.Filled
	c.Impressions += o.Impressions
	c.ValidImpressions += o.ValidImpressions
	c.BillableImpressions += o.BillableImpressions
	c.Clicks += o.Clicks
	c.ValidClicks += o.ValidClicks
	c.BillableClicks += o.BillableClicks
	c.Conversions += o.Conversions
	c.SpendMicros += o.SpendMicros
	c.OwnerEarningsMicros += o.OwnerEarningsMicros
}

// Totals are the counters of a report row and its invalid traffic.
type Totals struct {
	Counts
	// InvalidByRule counts invalid events per rule.
	InvalidByRule map[string]int64
}

// ServedAd names one served ad as its events are stored: by its token's
// tracking id and issue time (IssuedAt places the events in time, so a
// store can find them without searching every day it keeps).
type ServedAd struct {
	TrackingID uuid.UUID
	IssuedAt   time.Time
}

// Store keeps events and their rollups.
type Store interface {
	// ImpressionTimes returns, for each served ad with a stored
	// impression, when that impression occurred, by tracking id.
	ImpressionTimes(ctx context.Context, ads []ServedAd) (map[uuid.UUID]time.Time, error)

	// Verdicts returns what was stored of the given events that are
	// stored, by key: how the filters judged them when they were new. An
	// event's IssuedAt locates it, as in ImpressionTimes.
	Verdicts(ctx context.Context, events []Event) (map[EventKey]Verdict, error)

	// WriteEvents stores the events and adds them to the hourly rollups
	// (bucketed by OccurredAt, in UTC), atomically: both or neither. An
	// event whose key is already stored is skipped (retries are
	// idempotent). It returns, in order, whether each event was new.
	WriteEvents(ctx context.Context, events []Event) ([]bool, error)

	// RecordFills adds fill counts to the hourly rollups.
	RecordFills(ctx context.Context, fills []FillCount) error

	// Report sums the hourly rollups that q selects into rows, one per
	// bucket and group, ordered by bucket and group. Buckets without data
	// are absent.
	Report(ctx context.Context, q Query) ([]Row, error)

	// AdStats implements decision.StatsSource for the local engine: for
	// each ad id (the AdID of events whose Source is "local"), its spend
	// today (the UTC day of `day`) and in total, its impressions and clicks
	// (valid and billable ones only).
	AdStats(ctx context.Context, ids []string, day time.Time) (map[string]decision.AdStats, error)
}

// Errors of ingest and reports.
var (
	// ErrInvalidReport: the report is malformed; the error carries fields.
	ErrInvalidReport = errs.New(errs.Invalid, "invalid_event", "the event is not valid")
	// ErrTooManyEvents: a batch over the limit.
	ErrTooManyEvents = errs.New(errs.TooLarge, "too_many_events", "too many events in one batch")
	// ErrForeignToken: a signed-in reporter sent a token served to someone else.
	ErrForeignToken = errs.New(errs.Forbidden, "foreign_tracking_token", "this ad was served to someone else")
	// ErrStopped: the service is stopping (Service.Stop) and accepts no
	// more reports; nothing of the request was stored, so the app retries
	// (another instance takes it).
	ErrStopped = errs.New(errs.Unavailable, "shutting_down", "this instance is shutting down; retry").WithRetryAfter(time.Second)
	// ErrInvalidQuery: a report query breaks a rule; the error carries fields.
	ErrInvalidQuery = errs.New(errs.Invalid, "invalid_report_query", "the report query is not valid")
)
