// Package rollup is what store/memory and store/postgres share about
// analytics, so that the two cannot drift apart: how a batch of events
// folds into hourly rollup rows, how a moment falls into a report bucket
// (exactly as PostgreSQL computes it), and the checks both stores apply to
// events, fill counts and queries before they touch any data.
package rollup

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/internal/errs"
)

// LocalSource is the Source of the first-party engine's ads, the only ads
// whose delivery totals (AdStats) are kept.
const LocalSource = "local"

// Key identifies one rollup row: a UTC hour, a space's owner, an ad
// ("source:adID"; empty for fill counts) and an advertiser (empty for fill
// counts).
type Key struct {
	Hour       time.Time
	Owner      uuid.UUID
	AdKey      string
	Advertiser string
}

// Compare orders keys by hour, owner (bytes), ad and advertiser (bytes).
// Writers upsert rows in this order, so that two concurrent batches lock
// shared rows in the same order and cannot deadlock.
func (k Key) Compare(o Key) int {
	if c := k.Hour.Compare(o.Hour); c != 0 {
		return c
	}
	if c := bytes.Compare(k.Owner[:], o.Owner[:]); c != 0 {
		return c
	}
	return cmp.Or(strings.Compare(k.AdKey, o.AdKey), strings.Compare(k.Advertiser, o.Advertiser))
}

// Row is one rollup row's increment (its counters are analytics.Counts;
// the invalid-traffic breakdown has rows of its own).
type Row struct {
	Key
	analytics.Counts
}

// InvalidKey identifies one invalid-traffic rollup row.
type InvalidKey struct {
	Key
	Rule string
}

// Compare orders invalid keys by Key, then rule.
func (k InvalidKey) Compare(o InvalidKey) int {
	return cmp.Or(k.Key.Compare(o.Key), strings.Compare(k.Rule, o.Rule))
}

// InvalidRow is one invalid-traffic rollup row's increment.
type InvalidRow struct {
	InvalidKey
	Count int64
}

// AdRow is one local ad's delivery increment. Day is the latest UTC day
// (midnight) among the batch's events of the ad, DaySpend what they spent
// on that day.
type AdRow struct {
	AdID        string
	Day         time.Time
	DaySpend    int64
	TotalSpend  int64
	Impressions int64
	Clicks      int64
}

// Merge folds the increment d into the stored totals a (same ad) and
// returns the result. Spend of a later day replaces the day's spend; spend
// of an earlier day (a late event) counts in the total only. The result
// does not depend on the order in which increments arrive.
func (a AdRow) Merge(d AdRow) AdRow {
	switch {
	case d.Day.After(a.Day):
		a.Day, a.DaySpend = d.Day, d.DaySpend
	case d.Day.Equal(a.Day):
		a.DaySpend += d.DaySpend
	}
	a.TotalSpend += d.TotalSpend
	a.Impressions += d.Impressions
	a.Clicks += d.Clicks
	return a
}

// Delta is what a batch of new events adds to the rollups, each slice
// sorted by key (the order in which writers must upsert).
type Delta struct {
	Rows    []Row
	Invalid []InvalidRow
	Ads     []AdRow
}

// AdKey is the ad dimension of a rollup row: "source:adID".
func AdKey(source, adID string) string { return source + ":" + adID }

// Hour is the rollup hour of an event: the UTC hour in which it occurred.
func Hour(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// Day is the UTC day (midnight) holding t.
func Day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// Contribution is what one new event adds to the rollups.
type Contribution struct {
	// Row is the event's hourly rollup row and its counts.
	Row
	// Invalid is true when the event counts once more, under Rule, in the
	// invalid-traffic rollup of Row.Key.
	Invalid bool
	Rule    string
	// CountsForAd is true when the event adds Ad to its local ad's totals.
	CountsForAd bool
	Ad          AdRow
}

// Of returns what one new event adds to the rollups.
//
// An impression counts in Impressions, and in ValidImpressions when Valid,
// and in BillableImpressions when Valid and Billable; clicks likewise; a
// conversion counts in Conversions. Spend and owner earnings count only for
// valid, billable events (the analytics service never prices others; the
// store makes sure a stray figure cannot bill). An invalid event counts
// once more under its rule. Events of local ads (Source "local") that are
// valid and billable add to their ad's totals.
func Of(e analytics.Event) Contribution {
	ad := &e.Ad
	c := Contribution{Row: Row{Key: Key{Hour: Hour(e.OccurredAt), Owner: ad.Owner, AdKey: AdKey(ad.Source, ad.AdID), Advertiser: ad.AdvertiserID}}}
	billable := e.Valid && ad.Billable
	switch e.Type {
	case analytics.Impression:
		c.Impressions = 1
		c.ValidImpressions = b2i(e.Valid)
		c.BillableImpressions = b2i(billable)
	case analytics.Click:
		c.Clicks = 1
		c.ValidClicks = b2i(e.Valid)
		c.BillableClicks = b2i(billable)
	case analytics.Conversion:
		c.Conversions = 1
	}
	if billable {
		c.SpendMicros = e.SpendMicros
		c.OwnerEarningsMicros = e.OwnerEarningsMicros
	}
	c.Invalid, c.Rule = !e.Valid, e.Rule
	if billable && ad.Source == LocalSource {
		c.CountsForAd = true
		c.Ad = AdRow{AdID: ad.AdID, Day: Day(e.OccurredAt), DaySpend: e.SpendMicros, TotalSpend: e.SpendMicros,
			Impressions: b2i(e.Type == analytics.Impression), Clicks: b2i(e.Type == analytics.Click)}
	}
	return c
}

// Fold returns what the events add to the rollups: the sum of their
// contributions (Of), one row per key. The caller passes only events that
// were new (never stored before, no duplicates among them).
func Fold(events []analytics.Event) Delta {
	rows := map[Key]*analytics.Counts{}
	invalid := map[InvalidKey]int64{}
	ads := map[string]*AdRow{}
	for _, e := range events {
		c := Of(e)
		sum := rows[c.Key]
		if sum == nil {
			sum = &analytics.Counts{}
			rows[c.Key] = sum
		}
		sum.Add(c.Counts)
		if c.Invalid {
			invalid[InvalidKey{c.Key, c.Rule}]++
		}
		if c.CountsForAd {
			a := ads[c.Ad.AdID]
			if a == nil {
				a = &AdRow{AdID: c.Ad.AdID, Day: c.Ad.Day}
				ads[c.Ad.AdID] = a
			}
			*a = a.Merge(c.Ad)
		}
	}
	var d Delta
	for k, c := range rows {
		d.Rows = append(d.Rows, Row{k, *c})
	}
	slices.SortFunc(d.Rows, func(a, b Row) int { return a.Key.Compare(b.Key) })
	for k, n := range invalid {
		d.Invalid = append(d.Invalid, InvalidRow{k, n})
	}
	slices.SortFunc(d.Invalid, func(a, b InvalidRow) int { return a.InvalidKey.Compare(b.InvalidKey) })
	for _, id := range slices.Sorted(maps.Keys(ads)) {
		d.Ads = append(d.Ads, *ads[id])
	}
	return d
}

// FillRows checks fill counts and sums them into rollup rows (ad and
// advertiser empty), sorted by key; counts of zero add no row. It returns
// analytics.ErrInvalidReport, naming the fields, for a negative count or
// more filled than requested, and then nothing may be written.
func FillRows(fills []analytics.FillCount) ([]Row, error) {
	var f errs.Fields
	sums := map[Key]*analytics.Counts{}
	for i, fc := range fills {
		f.Check(fc.Requested >= 0, fmt.Sprintf("fills/%d/requested", i), "must not be negative")
		f.Check(fc.Filled >= 0 && fc.Filled <= fc.Requested, fmt.Sprintf("fills/%d/filled", i), "must be between 0 and requested")
		if fc.Requested == 0 {
			continue
		}
		k := Key{Hour: Hour(fc.Hour), Owner: fc.Owner}
		c := sums[k]
		if c == nil {
			c = &analytics.Counts{}
			sums[k] = c
		}
		c.Requested += fc.Requested
		c.Filled += fc.Filled
	}
	if err := f.Err(analytics.ErrInvalidReport); err != nil {
		return nil, err
	}
	rows := make([]Row, 0, len(sums))
	for k, c := range sums {
		rows = append(rows, Row{k, *c})
	}
	slices.SortFunc(rows, func(a, b Row) int { return a.Key.Compare(b.Key) })
	return rows, nil
}

// CheckEvents applies to every event of a batch, duplicates included, the
// rules the PostgreSQL events table enforces, so that both stores refuse
// the same batches, with the same error, before writing anything: a known
// type; spend not negative; owner earnings between 0 and the spend; a
// share between 0 and 10000 basis points; a rule named exactly when the
// event is invalid; and text that is valid UTF-8 without NUL bytes
// (PostgreSQL cannot store those). It returns analytics.ErrInvalidReport
// naming the fields by their index in the batch ("events/3/rule").
func CheckEvents(events []analytics.Event) error {
	var f errs.Fields
	for i, e := range events {
		check := func(ok bool, name, msg string) {
			if !ok {
				f.Add(fmt.Sprintf("events/%d/%s", i, name), msg)
			}
		}
		check(e.Type.Valid(), "type", "must be impression, click or conversion")
		check(e.SpendMicros >= 0, "spend_micros", "must not be negative")
		check(e.OwnerEarningsMicros >= 0 && e.OwnerEarningsMicros <= e.SpendMicros, "owner_earnings_micros", "must be between 0 and the spend")
		check(e.OwnerShareBP >= 0 && e.OwnerShareBP <= 10_000, "owner_share_bp", "must be between 0 and 10000")
		check(e.Valid == (e.Rule == ""), "rule", "names the rule exactly when the event is invalid")
		for _, s := range [...]struct{ name, value string }{
			{"name", e.Name}, {"viewer_key", e.Ad.ViewerKey}, {"placement", e.Ad.Placement}, {"source", e.Ad.Source},
			{"ad_id", e.Ad.AdID}, {"creative_id", e.Ad.CreativeID}, {"campaign_id", e.Ad.CampaignID},
			{"advertiser_id", e.Ad.AdvertiserID}, {"price_model", e.Ad.PriceModel}, {"rule", e.Rule},
			{"client_prefix", e.ClientPrefix}, {"user_agent", e.UserAgent},
		} {
			check(utf8.ValidString(s.value) && strings.IndexByte(s.value, 0) < 0, s.name, "must be UTF-8 text without NUL bytes")
		}
	}
	return f.Err(analytics.ErrInvalidReport)
}

// Unique returns the indexes of the first event of each key, in order: a
// later event of a key already in the batch is a duplicate, not new.
func Unique(events []analytics.Event) []int {
	seen := make(map[analytics.EventKey]struct{}, len(events))
	out := make([]int, 0, len(events))
	for i, e := range events {
		if _, dup := seen[e.Key()]; dup {
			continue
		}
		seen[e.Key()] = struct{}{}
		out = append(out, i)
	}
	return out
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
