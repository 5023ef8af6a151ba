package transport

import (
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

// reportParams reads the common report parameters: scope, from, to
// (RFC 3339; default the last 7 days), granularity (default day), tz,
// group_by (comma-separated), owner_id and advertiser_id (scope all).
// A default replaces only a parameter absent from the query: one that is
// given, even as the zero time 0001-01-01T00:00:00Z, is the caller's and
// goes to the service's checks.
func reportParams(r *http.Request, now time.Time) (analytics.ReportParams, *query) {
	q := newQuery(r)
	rp := analytics.ReportParams{
		Scope:       analytics.Scope(q.string("scope", 16)),
		From:        q.time("from"),
		To:          q.time("to"),
		Granularity: analytics.Granularity(q.string("granularity", 16)),
		TimeZone:    q.string("tz", 64),
		Owner:       q.uuid("owner_id"),
		Advertiser:  q.string("advertiser_id", 64),
	}
	if !q.present("to") {
		rp.To = now
	}
	if !q.present("from") {
		rp.From = rp.To.AddDate(0, 0, -7)
	}
	if rp.Granularity == "" {
		rp.Granularity = analytics.Day
	}
	if g := q.string("group_by", 64); g != "" {
		for _, d := range strings.Split(g, ",") {
			rp.GroupBy = append(rp.GroupBy, analytics.Dimension(strings.TrimSpace(d)))
		}
	}
	return rp, q
}

// reportFieldNames maps the service's names of report parameters to the
// query parameters they come from, so that field errors name them.
var reportFieldNames = map[string]string{
	"scope": "query/scope", "from": "query/from", "to": "query/to", "granularity": "query/granularity", "time_zone": "query/tz",
	"group_by": "query/group_by",
}

// reportError is a report's error with its fields named as the query
// parameters. A from the caller did not give is the week before to, so
// when to is at fault, a complaint about that from is to's and goes.
func reportError(err error, q *query) error {
	if e := errs.As(err); e != nil && !q.present("from") && e.Fields["to"] != "" && e.Fields["from"] != "" {
		fields := maps.Clone(e.Fields)
		delete(fields, "from")
		err = e.WithFields(fields)
	}
	return renameFields(err, reportFieldNames)
}

type totalsJSON struct {
	Requested           int64            `json:"requested"`
	Filled              int64            `json:"filled"`
	FillRate            float64          `json:"fill_rate"`
	Impressions         int64            `json:"impressions"`
	ValidImpressions    int64            `json:"valid_impressions"`
	BillableImpressions int64            `json:"billable_impressions"`
	Clicks              int64            `json:"clicks"`
	ValidClicks         int64            `json:"valid_clicks"`
	BillableClicks      int64            `json:"billable_clicks"`
	CTR                 float64          `json:"ctr"`
	Conversions         int64            `json:"conversions"`
	InvalidByRule       map[string]int64 `json:"invalid_by_rule"`
	SpendMicros         int64            `json:"spend_micros"`
	OwnerEarningsMicros int64            `json:"estimated_owner_earnings_micros"`
}

func totalsOf(t analytics.Totals) totalsJSON {
	out := totalsJSON{
		Requested: t.Requested, Filled: t.Filled, Impressions: t.Impressions, ValidImpressions: t.ValidImpressions,
		BillableImpressions: t.BillableImpressions, Clicks: t.Clicks, ValidClicks: t.ValidClicks, BillableClicks: t.BillableClicks,
		Conversions: t.Conversions, InvalidByRule: t.InvalidByRule, SpendMicros: t.SpendMicros, OwnerEarningsMicros: t.OwnerEarningsMicros,
	}
	if out.InvalidByRule == nil {
		out.InvalidByRule = map[string]int64{}
	}
	if t.Requested > 0 {
		out.FillRate = float64(t.Filled) / float64(t.Requested)
	}
	if t.ValidImpressions > 0 {
		out.CTR = float64(t.ValidClicks) / float64(t.ValidImpressions)
	}
	return out
}

type performanceRowJSON struct {
	Bucket       time.Time  `json:"bucket"`
	OwnerID      *uuid.UUID `json:"owner_id,omitempty"`
	Ad           string     `json:"ad,omitempty"`
	AdvertiserID string     `json:"advertiser_id,omitempty"`
	totalsJSON
}

func (s *server) handlePerformance() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		rp, q := reportParams(r, time.Now())
		if err := q.err(); err != nil {
			return err
		}
		rep, err := s.events.Performance(r.Context(), p, rp)
		if err != nil {
			return reportError(err, q)
		}
		rows := make([]performanceRowJSON, 0, len(rep.Rows))
		for _, row := range rep.Rows {
			pr := performanceRowJSON{Bucket: row.Bucket, Ad: row.AdKey, AdvertiserID: row.AdvertiserID, totalsJSON: totalsOf(row.Totals)}
			if row.Owner != uuid.Nil {
				id := row.Owner
				pr.OwnerID = &id
			}
			rows = append(rows, pr)
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"from": rep.From, "to": rep.To, "granularity": rep.Granularity, "time_zone": rep.TimeZone,
			"rows": rows, "totals": totalsOf(rep.Totals),
		})
		return nil
	})
}

type revenueRowJSON struct {
	Bucket         time.Time `json:"bucket"`
	GrossMicros    int64     `json:"gross_micros"`
	OwnerMicros    int64     `json:"owner_micros"`
	PlatformMicros int64     `json:"platform_micros"`
}

func (s *server) handleRevenue() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		rp, q := reportParams(r, time.Now())
		if err := q.err(); err != nil {
			return err
		}
		rep, err := s.events.Revenue(r.Context(), p, rp)
		if err != nil {
			return reportError(err, q)
		}
		rows := make([]revenueRowJSON, 0, len(rep.Rows))
		for _, row := range rep.Rows {
			rows = append(rows, revenueRowJSON(row))
		}
		var final any
		if rep.Final != nil {
			final = map[string]int64{"owner_micros": rep.Final.OwnerMicros, "platform_micros": rep.Final.PlatformMicros,
				"paid_out_micros": rep.Final.PaidOutMicros}
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"from": rep.From, "to": rep.To, "granularity": rep.Granularity, "time_zone": rep.TimeZone,
			"rows": rows, "estimated": map[string]int64{"gross_micros": rep.Estimated.GrossMicros, "owner_micros": rep.Estimated.OwnerMicros,
				"platform_micros": rep.Estimated.PlatformMicros}, "final": final,
		})
		return nil
	})
}

type countJSON struct {
	Bucket time.Time `json:"bucket"`
	N      int64     `json:"count"`
}

type cohortJSON struct {
	Bucket time.Time `json:"cohort"`
	Size   int64     `json:"size"`
	Active []int64   `json:"active"`
}

func (s *server) handleUsersReport() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		rp, q := reportParams(r, time.Now())
		periods := int(q.int("periods", 1, 52))
		if err := q.err(); err != nil {
			return err
		}
		rep, err := s.events.Users(r.Context(), p, rp, periods)
		if err != nil {
			return reportError(err, q)
		}
		counts := func(cs []analytics.Count) []countJSON {
			out := make([]countJSON, 0, len(cs))
			for _, c := range cs {
				out = append(out, countJSON(c))
			}
			return out
		}
		cohorts := make([]cohortJSON, 0, len(rep.Retention))
		for _, c := range rep.Retention {
			cohorts = append(cohorts, cohortJSON(c))
		}
		byTier := rep.ByTier
		if byTier == nil {
			byTier = map[string]int64{}
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"from": rep.From, "to": rep.To, "granularity": rep.Granularity, "time_zone": rep.TimeZone,
			"signups": counts(rep.Signups), "active_users": counts(rep.Active), "users_by_tier": byTier, "retention": cohorts,
		})
		return nil
	})
}
