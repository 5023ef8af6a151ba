package rollup

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/internal/errs"
)

// Bucket returns the start of the bucket of granularity g that holds t,
// the way store/postgres computes it in SQL:
//
//   - Hour: the UTC hour, date_trunc('hour', t, 'UTC'). The rollups are
//     kept by UTC hour and cannot be split finer, so an hour bucket is the
//     rollup's own hour in every zone: in a zone whose offset is whole hours
//     that is the local hour (and the two 01:00 hours of a fall-back night
//     stay apart, which date_trunc('hour', t AT TIME ZONE z) AT TIME ZONE z
//     would merge); in a zone such as Asia/Kolkata it starts at :30 local.
//   - Day, Week (starting Monday) and Month: date_trunc(g, t, loc), the
//     local midnight that starts the day, week or month, resolved as
//     PostgreSQL resolves a wall time: a midnight that does not exist (a
//     spring-forward at 00:00) takes the offset in force before the jump, a
//     midnight that exists twice (a fall-back at 01:00) the one after.
func Bucket(t time.Time, g analytics.Granularity, loc *time.Location) time.Time {
	if g == analytics.Hour {
		return t.UTC().Truncate(time.Hour)
	}
	l := t.In(loc)
	y, m, d := l.Date()
	switch g {
	case analytics.Week:
		d -= (int(l.Weekday()) + 6) % 7 // back to Monday; Date normalises
	case analytics.Month:
		d = 1
	}
	return wallToInstant(y, m, d, loc)
}

// Next returns the start of the bucket after the one starting at b.
func Next(b time.Time, g analytics.Granularity, loc *time.Location) time.Time {
	if g == analytics.Hour {
		return b.Add(time.Hour)
	}
	y, m, d := b.In(loc).Date()
	switch g {
	case analytics.Day:
		d++
	case analytics.Week:
		d += 7
	case analytics.Month:
		m++
	}
	return wallToInstant(y, m, d, loc)
}

// Index counts the buckets from the one starting at c to the one starting
// at b (0 when they are the same), as store/postgres computes it in SQL:
// whole hours between them; days between their local dates; those days
// over seven; months between their local months.
func Index(c, b time.Time, g analytics.Granularity, loc *time.Location) int {
	if g == analytics.Hour {
		return int(b.Sub(c) / time.Hour)
	}
	cy, cm, cd := c.In(loc).Date()
	by, bm, bd := b.In(loc).Date()
	switch g {
	case analytics.Month:
		return (by*12 + int(bm)) - (cy*12 + int(cm))
	case analytics.Week:
		return civilDays(by, bm, bd, cy, cm, cd) / 7
	default:
		return civilDays(by, bm, bd, cy, cm, cd)
	}
}

func civilDays(by int, bm time.Month, bd, cy int, cm time.Month, cd int) int {
	return int(time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC).Sub(time.Date(cy, cm, cd, 0, 0, 0, 0, time.UTC)) / (24 * time.Hour))
}

// wallToInstant returns the instant at which loc's clocks show midnight
// starting the given date, with PostgreSQL's rule for wall times that a
// transition skips or repeats (DetermineTimeZoneOffset): a skipped time
// takes the offset before the transition, a repeated one the offset after.
// Go's time.Date leaves that choice unspecified.
func wallToInstant(y int, m time.Month, d int, loc *time.Location) time.Time {
	wall := time.Date(y, m, d, 0, 0, 0, 0, time.UTC) // the wall clock read as if UTC
	offsetAt := func(t time.Time) time.Duration {
		_, off := t.In(loc).Zone()
		return time.Duration(off) * time.Second
	}
	// Offsets are within ±26 hours, so a day either side brackets any
	// transition near this wall time.
	before, after := offsetAt(wall.Add(-26*time.Hour)), offsetAt(wall.Add(26*time.Hour))
	early, late := wall.Add(-before), wall.Add(-after)
	if before == after {
		return early
	}
	earlyOK, lateOK := offsetAt(early) == before, offsetAt(late) == after
	switch {
	case earlyOK && lateOK: // repeated: the offset after the transition
		return late
	case lateOK:
		return late
	default: // only the early reading holds, or the time is skipped
		return early
	}
}

// locations caches whether a zone name loads, so that a report does not
// read the zone database each time.
var locations sync.Map // name → error

// CheckLocation returns loc, or UTC when it is nil, and
// analytics.ErrInvalidQuery when it has no IANA name (time.Local, or a
// fixed zone the zone database does not know): store/postgres passes the
// name to PostgreSQL, so both stores accept only named zones.
func CheckLocation(loc *time.Location) (*time.Location, error) {
	if loc == nil {
		return time.UTC, nil
	}
	name := loc.String()
	err, ok := locations.Load(name)
	if !ok {
		var e error
		if name == "Local" || name == "" {
			e = fmt.Errorf("no IANA name")
		} else if _, e = time.LoadLocation(name); e != nil {
			e = fmt.Errorf("unknown zone %q", name)
		}
		locations.Store(name, e)
		err = e
	}
	if err != nil {
		return nil, analytics.ErrInvalidQuery.WithFields(errs.Fields{"location": "must be an IANA time zone such as Europe/Berlin"})
	}
	return loc, nil
}

// CheckGranularity returns analytics.ErrInvalidQuery unless g is known.
func CheckGranularity(g analytics.Granularity) error {
	switch g {
	case analytics.Hour, analytics.Day, analytics.Week, analytics.Month:
		return nil
	}
	return analytics.ErrInvalidQuery.WithFields(errs.Fields{"granularity": "must be hour, day, week or month"})
}

// Grouping is a query's dimensions.
type Grouping struct {
	Owner, Ad, Advertiser bool
}

// CheckQuery validates q for Report and returns it normalised: a nil
// Location is UTC and From and To are truncated to microseconds (what
// PostgreSQL keeps). It returns analytics.ErrInvalidQuery, naming the
// field, for an unknown granularity or dimension or an unnamed zone.
func CheckQuery(q analytics.Query) (analytics.Query, Grouping, error) {
	if err := CheckGranularity(q.Granularity); err != nil {
		return q, Grouping{}, err
	}
	loc, err := CheckLocation(q.Location)
	if err != nil {
		return q, Grouping{}, err
	}
	q.Location = loc
	var g Grouping
	for _, d := range q.GroupBy {
		switch d {
		case analytics.ByOwner:
			g.Owner = true
		case analytics.ByAd:
			g.Ad = true
		case analytics.ByAdvertiser:
			g.Advertiser = true
		default:
			return q, g, analytics.ErrInvalidQuery.WithFields(errs.Fields{"group_by": "dimensions are owner, ad and advertiser"})
		}
	}
	q.GroupBy = slices.Clone(q.GroupBy)
	q.From, q.To = Micro(q.From), Micro(q.To)
	return q, g, nil
}

// Micro truncates t to microseconds, in UTC: what PostgreSQL keeps of a
// timestamptz.
func Micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
