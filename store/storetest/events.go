package storetest

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/errs"
)

// Owners with a known byte order, for the order of grouped rows.
var (
	ownerA = uuid.MustParse("10000000-0000-7000-8000-000000000001")
	ownerB = uuid.MustParse("20000000-0000-7000-8000-000000000002")
)

// RunEventStore runs the analytics.Store contract against the stores
// newStore returns, one fresh store per subtest. Expected figures are
// worked out by hand in the comments.
func RunEventStore(t *testing.T, newStore func(t *testing.T) analytics.Store) {
	t.Helper()
	ctx := context.Background()
	newYork, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)

	t.Run("every field of a batch reaches the report totals", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		h := at("2026-03-10T14:00:00Z")
		imp := NewEvent(ownerA, analytics.Impression, h.Add(5*time.Minute+123456789))
		imp.Ad.Viewer, imp.Ad.ViewerKey, imp.Ad.CreativeID, imp.Ad.CampaignID = uuid.New(), "vk-1", "cr-1", "ca-1"
		imp.ClientPrefix, imp.UserAgent = "203.0.113.0/24", "Mozilla/5.0 (Zoë; ünïcode 🚲)"
		imp.SpendMicros, imp.OwnerEarningsMicros, imp.OwnerShareBP = 2000, 1400, 7000
		click := imp // the same token
		click.Type, click.OccurredAt = analytics.Click, h.Add(6*time.Minute)
		click.SpendMicros, click.OwnerEarningsMicros = 500_000, 350_000
		conv := imp
		conv.Type, conv.Name, conv.ValueMicros, conv.OccurredAt = analytics.Conversion, "signup", 9_990_000, h.Add(7*time.Minute)
		conv.SpendMicros, conv.OwnerEarningsMicros, conv.OwnerShareBP = 0, 0, 0
		unbillable := NewEvent(ownerA, analytics.Impression, h.Add(10*time.Minute))
		unbillable.Ad.Billable, unbillable.SpendMicros = false, 0
		selfView := NewEvent(ownerA, analytics.Impression, h.Add(20*time.Minute))
		selfView.Valid, selfView.Rule, selfView.SpendMicros = false, "self_view", 0
		burst := NewEvent(ownerA, analytics.Click, h.Add(59*time.Minute))
		burst.Valid, burst.Rule, burst.SpendMicros = false, "burst", 0

		isNew, err := s.WriteEvents(ctx, []analytics.Event{imp, click, conv, unbillable, selfView, burst})
		require.NoError(t, err)
		require.Equal(t, []bool{true, true, true, true, true, true}, isNew)

		rows, err := s.Report(ctx, analytics.Query{Granularity: analytics.Hour, From: h, To: h.Add(time.Hour)})
		require.NoError(t, err)
		RequireRows(t, []analytics.Row{{Bucket: h, Totals: analytics.Totals{
			Counts: analytics.Counts{
				Impressions: 3, ValidImpressions: 2, BillableImpressions: 1, // imp, unbillable, selfView
				Clicks: 2, ValidClicks: 1, BillableClicks: 1, // click, burst
				Conversions:         1,
				SpendMicros:         502_000,
				OwnerEarningsMicros: 351_400,
			},
			InvalidByRule: map[string]int64{"self_view": 1, "burst": 1},
		}}}, rows)

		served := func(e analytics.Event) analytics.ServedAd {
			return analytics.ServedAd{TrackingID: e.TrackingID, IssuedAt: e.Ad.IssuedAt}
		}
		misdated := served(imp)
		misdated.IssuedAt = misdated.IssuedAt.Add(-time.Second)
		times, err := s.ImpressionTimes(ctx, []analytics.ServedAd{served(imp), served(unbillable), served(burst),
			{TrackingID: uuid.New(), IssuedAt: imp.Ad.IssuedAt}})
		require.NoError(t, err)
		require.Equal(t, map[uuid.UUID]time.Time{
			imp.TrackingID:        h.Add(5*time.Minute + 123456*time.Microsecond), // microseconds are kept
			unbillable.TrackingID: h.Add(10 * time.Minute),
		}, times, "a click without an impression has no impression time")
		times, err = s.ImpressionTimes(ctx, []analytics.ServedAd{misdated})
		require.NoError(t, err)
		require.Empty(t, times, "a served ad is its tracking id and issue time together")

		none, err := s.ImpressionTimes(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, none)
	})

	t.Run("duplicates are skipped and reported as not new", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		h := at("2026-03-10T14:00:00Z")
		a := NewEvent(ownerA, analytics.Impression, h)
		b := NewEvent(ownerA, analytics.Impression, h)
		c := NewEvent(ownerA, analytics.Impression, h)
		aAgain := a
		aAgain.SpendMicros = 999 // a retry's copy never counts, whatever it says
		aClick := a
		aClick.Type = analytics.Click // another type of one token is another event

		isNew, err := s.WriteEvents(ctx, []analytics.Event{a, b, aAgain, aClick})
		require.NoError(t, err)
		require.Equal(t, []bool{true, true, false, true}, isNew)
		isNew, err = s.WriteEvents(ctx, []analytics.Event{aAgain, c, b})
		require.NoError(t, err)
		require.Equal(t, []bool{false, true, false}, isNew)
		isNew, err = s.WriteEvents(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, isNew)

		// A retry is answered with what was stored, not what it says.
		misdated := c
		misdated.Ad.IssuedAt = misdated.Ad.IssuedAt.Add(time.Second)
		verdicts, err := s.Verdicts(ctx, []analytics.Event{aAgain, aClick, c, misdated, NewEvent(ownerA, analytics.Impression, h)})
		require.NoError(t, err)
		require.Equal(t, map[analytics.EventKey]analytics.Verdict{
			a.Key():      {Valid: true, SpendMicros: 10},
			aClick.Key(): {Valid: true, SpendMicros: 10},
			c.Key():      {Valid: true, SpendMicros: 10},
		}, verdicts)
		none, err := s.Verdicts(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, none)

		rows, err := s.Report(ctx, analytics.Query{Granularity: analytics.Hour, From: h, To: h.Add(time.Hour)})
		require.NoError(t, err)
		RequireRows(t, []analytics.Row{{Bucket: h, Totals: analytics.Totals{Counts: analytics.Counts{
			Impressions: 3, ValidImpressions: 3, BillableImpressions: 3, // a, b, c
			Clicks: 1, ValidClicks: 1, BillableClicks: 1, // aClick
			SpendMicros: 4 * 10,
		}}}}, rows)
	})

	t.Run("conversions are deduplicated by name", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		h := at("2026-03-10T14:00:00Z")
		token := uuid.Must(uuid.NewV7())
		conv := func(name string) analytics.Event {
			e := NewEvent(ownerA, analytics.Conversion, h)
			e.TrackingID, e.Name, e.SpendMicros = token, name, 0
			return e
		}
		isNew, err := s.WriteEvents(ctx, []analytics.Event{conv("signup"), conv("purchase"), conv("signup")})
		require.NoError(t, err)
		require.Equal(t, []bool{true, true, false}, isNew)
		isNew, err = s.WriteEvents(ctx, []analytics.Event{conv("purchase"), conv("share")})
		require.NoError(t, err)
		require.Equal(t, []bool{false, true}, isNew)

		rows, err := s.Report(ctx, analytics.Query{Granularity: analytics.Day, From: h.Add(-14 * time.Hour), To: h.Add(10 * time.Hour)})
		require.NoError(t, err)
		RequireRows(t, []analytics.Row{{Bucket: at("2026-03-10T00:00:00Z"), Totals: analytics.Totals{Counts: analytics.Counts{Conversions: 3}}}}, rows)
	})

	t.Run("eight concurrent writers of one batch count each event once", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		h := at("2026-03-10T14:00:00Z")
		var batch []analytics.Event
		for i := range 60 {
			owner := []uuid.UUID{ownerA, ownerB}[i%2]
			e := NewEvent(owner, []analytics.EventType{analytics.Impression, analytics.Click}[i%3/2], h.Add(time.Duration(i%3)*time.Hour))
			e.Ad.Source, e.Ad.AdID = "local", []string{"ad-1", "ad-2", "ad-3"}[i%3]
			batch = append(batch, e)
		}
		const writers = 8
		results := make([][]bool, writers)
		failures := make([]error, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range writers {
			// Each writer sends the batch in its own order; results come
			// back in that order.
			perm := rand.Perm(len(batch))
			mine := make([]analytics.Event, len(batch))
			for i, p := range perm {
				mine[i] = batch[p]
			}
			wg.Go(func() {
				<-start
				isNew, err := s.WriteEvents(ctx, mine)
				failures[w] = err
				results[w] = make([]bool, len(batch))
				for i, p := range perm {
					if err == nil {
						results[w][p] = isNew[i]
					}
				}
			})
		}
		close(start)
		wg.Wait()
		for w := range writers {
			require.NoError(t, failures[w])
		}
		for i := range batch {
			n := 0
			for w := range writers {
				if results[w][i] {
					n++
				}
			}
			require.Equal(t, 1, n, "event %d must be new for exactly one writer", i)
		}

		rows, err := s.Report(ctx, analytics.Query{Granularity: analytics.Day, From: at("2026-03-10T00:00:00Z"), To: at("2026-03-11T00:00:00Z")})
		require.NoError(t, err)
		// Of 60 events, i%3 == 2 are the 20 clicks, the other 40 impressions.
		RequireRows(t, []analytics.Row{{Bucket: at("2026-03-10T00:00:00Z"), Totals: analytics.Totals{Counts: analytics.Counts{
			Impressions: 40, ValidImpressions: 40, BillableImpressions: 40,
			Clicks: 20, ValidClicks: 20, BillableClicks: 20,
			SpendMicros: 600,
		}}}}, rows)
		stats, err := s.AdStats(ctx, []string{"ad-1", "ad-2", "ad-3"}, h)
		require.NoError(t, err)
		require.Equal(t, map[string]decision.AdStats{
			"ad-1": {SpentTodayMicros: 200, SpentTotalMicros: 200, Impressions: 20},
			"ad-2": {SpentTodayMicros: 200, SpentTotalMicros: 200, Impressions: 20},
			"ad-3": {SpentTodayMicros: 200, SpentTotalMicros: 200, Clicks: 20},
		}, stats)
	})

	t.Run("a batch breaking a storage rule is refused whole", func(t *testing.T) {
		t.Parallel()
		h := at("2026-03-10T14:00:00Z")
		tests := []struct {
			description string
			mutate      func(*analytics.Event)
		}{
			{"unknown type", func(e *analytics.Event) { e.Type = "view" }},
			{"negative spend", func(e *analytics.Event) { e.SpendMicros, e.OwnerEarningsMicros = -1, 0 }},
			{"earnings above spend", func(e *analytics.Event) { e.OwnerEarningsMicros = e.SpendMicros + 1 }},
			{"negative earnings", func(e *analytics.Event) { e.OwnerEarningsMicros = -1 }},
			{"share above 100%", func(e *analytics.Event) { e.OwnerShareBP = 10_001 }},
			{"invalid without a rule", func(e *analytics.Event) { e.Valid = false }},
			{"valid with a rule", func(e *analytics.Event) { e.Rule = "burst" }},
			{"NUL in the user agent", func(e *analytics.Event) { e.UserAgent = "a\x00b" }},
			{"invalid UTF-8 in a name", func(e *analytics.Event) { e.Type, e.Name = analytics.Conversion, "\xff" }},
		}
		for _, tt := range tests {
			t.Run(tt.description, func(t *testing.T) {
				t.Parallel()
				s := newStore(t)
				good := NewEvent(ownerA, analytics.Impression, h)
				bad := NewEvent(ownerA, analytics.Impression, h)
				tt.mutate(&bad)
				_, err := s.WriteEvents(ctx, []analytics.Event{good, bad})
				require.ErrorIs(t, err, analytics.ErrInvalidReport)
				require.NotNil(t, errs.As(err))
				for field := range errs.As(err).Fields {
					require.True(t, strings.HasPrefix(field, "events/1/"), "the field names the bad event: %s", field)
				}

				rows, err := s.Report(ctx, analytics.Query{Granularity: analytics.Hour, From: h, To: h.Add(time.Hour)})
				require.NoError(t, err)
				require.Empty(t, rows, "nothing of the batch is stored")
				isNew, err := s.WriteEvents(ctx, []analytics.Event{good})
				require.NoError(t, err)
				require.Equal(t, []bool{true}, isNew)
			})
		}
	})

	t.Run("a cancelled context fails the write and stores nothing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		h := at("2026-03-10T14:00:00Z")
		e := NewEvent(ownerA, analytics.Impression, h)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.WriteEvents(cctx, []analytics.Event{e})
		require.ErrorIs(t, err, context.Canceled)
		isNew, err := s.WriteEvents(ctx, []analytics.Event{e})
		require.NoError(t, err)
		require.Equal(t, []bool{true}, isNew)
	})

	t.Run("invalid traffic counts per rule and never in spend", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		h := at("2026-03-10T14:00:00Z")
		invalid := func(typ analytics.EventType, rule string) analytics.Event {
			e := NewEvent(ownerA, typ, h)
			e.Ad.Source, e.Ad.AdID = "local", "ad-1"
			// A stray price on an invalid event must not bill.
			e.Valid, e.Rule, e.SpendMicros, e.OwnerEarningsMicros = false, rule, 1000, 500
			return e
		}
		unbillable := NewEvent(ownerA, analytics.Impression, h)
		unbillable.Ad.Source, unbillable.Ad.AdID, unbillable.Ad.Billable, unbillable.SpendMicros = "local", "ad-1", false, 100
		billable := NewEvent(ownerA, analytics.Impression, h)
		billable.Ad.Source, billable.Ad.AdID, billable.SpendMicros, billable.OwnerEarningsMicros = "local", "ad-1", 7, 3
		_, err := s.WriteEvents(ctx, []analytics.Event{
			invalid(analytics.Impression, "self_view"), invalid(analytics.Impression, "self_view"),
			invalid(analytics.Click, "burst"), invalid(analytics.Conversion, "no_click"), unbillable, billable,
		})
		require.NoError(t, err)

		rows, err := s.Report(ctx, analytics.Query{Granularity: analytics.Hour, From: h, To: h.Add(time.Hour)})
		require.NoError(t, err)
		RequireRows(t, []analytics.Row{{Bucket: h, Totals: analytics.Totals{
			Counts: analytics.Counts{
				Impressions: 4, ValidImpressions: 2, BillableImpressions: 1,
				Clicks: 1, Conversions: 1,
				SpendMicros: 7, OwnerEarningsMicros: 3,
			},
			InvalidByRule: map[string]int64{"self_view": 2, "burst": 1, "no_click": 1},
		}}}, rows)
		stats, err := s.AdStats(ctx, []string{"ad-1"}, h)
		require.NoError(t, err)
		require.Equal(t, map[string]decision.AdStats{"ad-1": {SpentTodayMicros: 7, SpentTotalMicros: 7, Impressions: 1}}, stats)
	})

	// Eight valid, billable impressions whose spends are powers of two, so
	// each bucket's spend says which events it holds. In New York (EST,
	// UTC-5, until 2026-03-08 07:00Z; EDT, UTC-4, until 2026-11-01 06:00Z):
	//
	//	e1 2026-03-02 04:30Z   1  Sun Mar  1 23:30 EST
	//	e2 2026-03-02 05:30Z   2  Mon Mar  2 00:30 EST
	//	e3 2026-03-09 03:30Z   4  Sun Mar  8 23:30 EDT (the DST week)
	//	e4 2026-03-09 04:30Z   8  Mon Mar  9 00:30 EDT
	//	e5 2026-03-10 02:00Z  16  Mon Mar  9 22:00 EDT
	//	e6 2026-04-01 02:00Z  32  Tue Mar 31 22:00 EDT
	//	e7 2026-11-01 05:30Z  64  Sun Nov  1 01:30 EDT
	//	e8 2026-11-01 06:30Z 128  Sun Nov  1 01:30 EST (the repeated hour)
	bucketEvents := []struct {
		at    string
		spend int64
	}{
		{"2026-03-02T04:30:00Z", 1}, {"2026-03-02T05:30:00Z", 2}, {"2026-03-09T03:30:00Z", 4},
		{"2026-03-09T04:30:00Z", 8}, {"2026-03-10T02:00:00Z", 16}, {"2026-04-01T02:00:00Z", 32},
		{"2026-11-01T05:30:00Z", 64}, {"2026-11-01T06:30:00Z", 128},
	}
	type bucket struct {
		start       string
		impressions int64
		spend       int64
	}
	bucketTests := []struct {
		description string
		g           analytics.Granularity
		loc         *time.Location
		want        []bucket
	}{
		{"hours in UTC", analytics.Hour, time.UTC, []bucket{
			{"2026-03-02T04:00:00Z", 1, 1}, {"2026-03-02T05:00:00Z", 1, 2}, {"2026-03-09T03:00:00Z", 1, 4},
			{"2026-03-09T04:00:00Z", 1, 8}, {"2026-03-10T02:00:00Z", 1, 16}, {"2026-04-01T02:00:00Z", 1, 32},
			{"2026-11-01T05:00:00Z", 1, 64}, {"2026-11-01T06:00:00Z", 1, 128},
		}},
		{"hours in New York: the same, the repeated 01:00 twice", analytics.Hour, newYork, []bucket{
			{"2026-03-02T04:00:00Z", 1, 1}, {"2026-03-02T05:00:00Z", 1, 2}, {"2026-03-09T03:00:00Z", 1, 4},
			{"2026-03-09T04:00:00Z", 1, 8}, {"2026-03-10T02:00:00Z", 1, 16}, {"2026-04-01T02:00:00Z", 1, 32},
			{"2026-11-01T05:00:00Z", 1, 64}, {"2026-11-01T06:00:00Z", 1, 128},
		}},
		{"days in UTC", analytics.Day, time.UTC, []bucket{
			{"2026-03-02T00:00:00Z", 2, 3}, {"2026-03-09T00:00:00Z", 2, 12}, {"2026-03-10T00:00:00Z", 1, 16},
			{"2026-04-01T00:00:00Z", 1, 32}, {"2026-11-01T00:00:00Z", 2, 192},
		}},
		{"days in New York start at 05:00Z in EST, 04:00Z in EDT", analytics.Day, newYork, []bucket{
			{"2026-03-01T05:00:00Z", 1, 1}, {"2026-03-02T05:00:00Z", 1, 2}, {"2026-03-08T05:00:00Z", 1, 4},
			{"2026-03-09T04:00:00Z", 2, 24}, {"2026-03-31T04:00:00Z", 1, 32}, {"2026-11-01T04:00:00Z", 2, 192},
		}},
		{"weeks in UTC start on Monday", analytics.Week, time.UTC, []bucket{
			{"2026-03-02T00:00:00Z", 2, 3}, {"2026-03-09T00:00:00Z", 3, 28}, {"2026-03-30T00:00:00Z", 1, 32},
			{"2026-10-26T00:00:00Z", 2, 192},
		}},
		{"weeks in New York, one of 167 hours", analytics.Week, newYork, []bucket{
			{"2026-02-23T05:00:00Z", 1, 1}, {"2026-03-02T05:00:00Z", 2, 6}, {"2026-03-09T04:00:00Z", 2, 24},
			{"2026-03-30T04:00:00Z", 1, 32}, {"2026-10-26T04:00:00Z", 2, 192},
		}},
		{"months in UTC", analytics.Month, time.UTC, []bucket{
			{"2026-03-01T00:00:00Z", 5, 31}, {"2026-04-01T00:00:00Z", 1, 32}, {"2026-11-01T00:00:00Z", 2, 192},
		}},
		{"months in New York", analytics.Month, newYork, []bucket{
			{"2026-03-01T05:00:00Z", 6, 63}, {"2026-11-01T04:00:00Z", 2, 192},
		}},
	}
	t.Run("report buckets by hour, day, week and month, in UTC and New York", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var events []analytics.Event
		for _, be := range bucketEvents {
			e := NewEvent(ownerA, analytics.Impression, at(be.at))
			e.SpendMicros = be.spend
			events = append(events, e)
		}
		_, err := s.WriteEvents(ctx, events)
		require.NoError(t, err)
		for _, tt := range bucketTests {
			rows, err := s.Report(ctx, analytics.Query{Granularity: tt.g, Location: tt.loc,
				From: at("2026-02-01T00:00:00Z"), To: at("2026-12-01T00:00:00Z")})
			require.NoError(t, err, tt.description)
			var want []analytics.Row
			for _, b := range tt.want {
				want = append(want, analytics.Row{Bucket: at(b.start), Totals: analytics.Totals{Counts: analytics.Counts{
					Impressions: b.impressions, ValidImpressions: b.impressions, BillableImpressions: b.impressions,
					SpendMicros: b.spend}}})
			}
			RequireRows(t, want, rows, tt.description)
		}

		// The range selects hours: [From, To).
		rows, err := s.Report(ctx, analytics.Query{Granularity: analytics.Day, Location: newYork,
			From: at("2026-03-09T04:00:00Z"), To: at("2026-03-10T02:00:00Z")})
		require.NoError(t, err)
		RequireRows(t, []analytics.Row{{Bucket: at("2026-03-09T04:00:00Z"), Totals: analytics.Totals{Counts: analytics.Counts{
			Impressions: 1, ValidImpressions: 1, BillableImpressions: 1, SpendMicros: 8}}}}, rows, "e5's hour is at To, excluded")
	})

	t.Run("group by owner, ad and advertiser; filter by owner and advertiser; fills alongside", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		h10, h11 := at("2026-05-05T10:00:00Z"), at("2026-05-05T11:00:00Z")
		day := at("2026-05-05T00:00:00Z")
		ev := func(owner uuid.UUID, source, ad, advertiser string, hour time.Time, spend int64) analytics.Event {
			e := NewEvent(owner, analytics.Impression, hour.Add(15*time.Minute))
			e.Ad.Source, e.Ad.AdID, e.Ad.AdvertiserID, e.SpendMicros = source, ad, advertiser, spend
			return e
		}
		_, err := s.WriteEvents(ctx, []analytics.Event{
			ev(ownerA, "kevel", "a", "adv-x", h10, 1),
			ev(ownerA, "local", "b", "adv-y", h10, 2),
			ev(ownerB, "kevel", "a", "adv-x", h10, 4),
			ev(ownerB, "kevel", "a", "adv-x", h11, 8),
			ev(ownerB, "local", "b", "adv-y", h10, 16),
		})
		require.NoError(t, err)
		require.NoError(t, s.RecordFills(ctx, []analytics.FillCount{
			{Owner: ownerA, Hour: h10, Requested: 6, Filled: 4},
			{Owner: ownerA, Hour: h10.Add(42 * time.Minute), Requested: 4, Filled: 3}, // the same hour
			{Owner: ownerB, Hour: h11, Requested: 5, Filled: 5},
			{Owner: ownerB, Hour: h11, Requested: 0, Filled: 0}, // adds nothing
		}))

		imps := func(n, spend int64) analytics.Totals {
			return analytics.Totals{Counts: analytics.Counts{Impressions: n, ValidImpressions: n, BillableImpressions: n, SpendMicros: spend}}
		}
		fills := func(t analytics.Totals, requested, filled int64) analytics.Totals {
			t.Requested, t.Filled = requested, filled
			return t
		}
		q := func(groupBy ...analytics.Dimension) analytics.Query {
			return analytics.Query{Granularity: analytics.Day, From: day, To: day.Add(24 * time.Hour), GroupBy: groupBy}
		}
		tests := []struct {
			description string
			q           analytics.Query
			want        []analytics.Row
		}{
			{"no grouping", q(), []analytics.Row{{Bucket: day, Totals: fills(imps(5, 31), 15, 12)}}},
			{"by owner", q(analytics.ByOwner), []analytics.Row{
				{Bucket: day, Owner: ownerA, Totals: fills(imps(2, 3), 10, 7)},
				{Bucket: day, Owner: ownerB, Totals: fills(imps(3, 28), 5, 5)},
			}},
			{"by ad: fill counts have no ad", q(analytics.ByAd), []analytics.Row{
				{Bucket: day, Totals: fills(imps(0, 0), 15, 12)},
				{Bucket: day, AdKey: "kevel:a", Totals: imps(3, 13)},
				{Bucket: day, AdKey: "local:b", Totals: imps(2, 18)},
			}},
			{"by advertiser", q(analytics.ByAdvertiser), []analytics.Row{
				{Bucket: day, Totals: fills(imps(0, 0), 15, 12)},
				{Bucket: day, AdvertiserID: "adv-x", Totals: imps(3, 13)},
				{Bucket: day, AdvertiserID: "adv-y", Totals: imps(2, 18)},
			}},
			{"by ad and owner, in either order", q(analytics.ByAd, analytics.ByOwner), []analytics.Row{
				{Bucket: day, Owner: ownerA, Totals: fills(imps(0, 0), 10, 7)},
				{Bucket: day, Owner: ownerA, AdKey: "kevel:a", Totals: imps(1, 1)},
				{Bucket: day, Owner: ownerA, AdKey: "local:b", Totals: imps(1, 2)},
				{Bucket: day, Owner: ownerB, Totals: fills(imps(0, 0), 5, 5)},
				{Bucket: day, Owner: ownerB, AdKey: "kevel:a", Totals: imps(2, 12)},
				{Bucket: day, Owner: ownerB, AdKey: "local:b", Totals: imps(1, 16)},
			}},
			{"by owner, ad and advertiser", q(analytics.ByOwner, analytics.ByAd, analytics.ByAdvertiser), []analytics.Row{
				{Bucket: day, Owner: ownerA, Totals: fills(imps(0, 0), 10, 7)},
				{Bucket: day, Owner: ownerA, AdKey: "kevel:a", AdvertiserID: "adv-x", Totals: imps(1, 1)},
				{Bucket: day, Owner: ownerA, AdKey: "local:b", AdvertiserID: "adv-y", Totals: imps(1, 2)},
				{Bucket: day, Owner: ownerB, Totals: fills(imps(0, 0), 5, 5)},
				{Bucket: day, Owner: ownerB, AdKey: "kevel:a", AdvertiserID: "adv-x", Totals: imps(2, 12)},
				{Bucket: day, Owner: ownerB, AdKey: "local:b", AdvertiserID: "adv-y", Totals: imps(1, 16)},
			}},
			{"by hour and owner: bucket first, then group", analytics.Query{Granularity: analytics.Hour, From: day,
				To: day.Add(24 * time.Hour), GroupBy: []analytics.Dimension{analytics.ByOwner}}, []analytics.Row{
				{Bucket: h10, Owner: ownerA, Totals: fills(imps(2, 3), 10, 7)},
				{Bucket: h10, Owner: ownerB, Totals: imps(2, 20)},
				{Bucket: h11, Owner: ownerB, Totals: fills(imps(1, 8), 5, 5)},
			}},
			{"one owner", analytics.Query{Granularity: analytics.Day, From: day, To: day.Add(24 * time.Hour), Owner: ownerB},
				[]analytics.Row{{Bucket: day, Totals: fills(imps(3, 28), 5, 5)}}},
			{"one advertiser: no fill counts", analytics.Query{Granularity: analytics.Day, From: day, To: day.Add(24 * time.Hour), Advertiser: "adv-x"},
				[]analytics.Row{{Bucket: day, Totals: imps(3, 13)}}},
			{"one owner and one advertiser, by ad", analytics.Query{Granularity: analytics.Day, From: day, To: day.Add(24 * time.Hour),
				Owner: ownerA, Advertiser: "adv-y", GroupBy: []analytics.Dimension{analytics.ByAd}},
				[]analytics.Row{{Bucket: day, AdKey: "local:b", Totals: imps(1, 2)}}},
			{"an owner without data", analytics.Query{Granularity: analytics.Day, From: day, To: day.Add(24 * time.Hour), Owner: uuid.New()},
				[]analytics.Row{}},
		}
		for _, tt := range tests {
			rows, err := s.Report(ctx, tt.q)
			require.NoError(t, err, tt.description)
			RequireRows(t, tt.want, rows, tt.description)
		}
	})

	t.Run("an empty range or one without data is an empty slice", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		h := at("2026-03-10T14:00:00Z")
		_, err := s.WriteEvents(ctx, []analytics.Event{NewEvent(ownerA, analytics.Impression, h)})
		require.NoError(t, err)
		for _, q := range []analytics.Query{
			{Granularity: analytics.Hour, From: h, To: h},
			{Granularity: analytics.Hour, From: h.Add(time.Hour), To: h},
			{Granularity: analytics.Day, From: h.Add(time.Hour), To: h.Add(48 * time.Hour)},
		} {
			rows, err := s.Report(ctx, q)
			require.NoError(t, err)
			require.NotNil(t, rows)
			require.Empty(t, rows)
		}
	})

	t.Run("queries and fill counts breaking a rule are refused", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		h := at("2026-03-10T14:00:00Z")
		for _, q := range []analytics.Query{
			{Granularity: "minute", From: h, To: h.Add(time.Hour)},
			{Granularity: analytics.Day, From: h, To: h.Add(time.Hour), GroupBy: []analytics.Dimension{"campaign"}},
			{Granularity: analytics.Day, From: h, To: h.Add(time.Hour), Location: time.FixedZone("Nowhere/Special", 3600)},
			{Granularity: analytics.Day, From: h, To: h.Add(time.Hour), Location: time.Local},
		} {
			_, err := s.Report(ctx, q)
			require.ErrorIs(t, err, analytics.ErrInvalidQuery, "%+v", q)
		}
		for _, f := range []analytics.FillCount{
			{Owner: ownerA, Hour: h, Requested: -1},
			{Owner: ownerA, Hour: h, Requested: 1, Filled: 2},
			{Owner: ownerA, Hour: h, Requested: 1, Filled: -1},
		} {
			err := s.RecordFills(ctx, []analytics.FillCount{{Owner: ownerA, Hour: h, Requested: 1}, f})
			require.ErrorIs(t, err, analytics.ErrInvalidReport, "%+v", f)
		}
		rows, err := s.Report(ctx, analytics.Query{Granularity: analytics.Hour, From: h, To: h.Add(time.Hour)})
		require.NoError(t, err)
		require.Empty(t, rows, "refused fill counts add nothing")
	})

	t.Run("ad stats: local, valid, billable delivery, today and in total across a UTC day change", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		day1, day2 := at("2026-06-01T00:00:00Z"), at("2026-06-02T00:00:00Z")
		local := func(typ analytics.EventType, ad string, when time.Time, spend int64) analytics.Event {
			e := NewEvent(ownerA, typ, when)
			e.Ad.Source, e.Ad.AdID, e.SpendMicros = "local", ad, spend
			return e
		}
		invalid := local(analytics.Impression, "l1", day1.Add(11*time.Hour), 0)
		invalid.Valid, invalid.Rule = false, "burst"
		unbillable := local(analytics.Impression, "l1", day1.Add(12*time.Hour), 0)
		unbillable.Ad.Billable = false
		kevel := local(analytics.Impression, "l1", day1.Add(13*time.Hour), 1000)
		kevel.Ad.Source = "kevel"
		_, err := s.WriteEvents(ctx, []analytics.Event{
			local(analytics.Impression, "l1", day1.Add(10*time.Hour), 100),
			local(analytics.Click, "l1", day2.Add(-time.Second), 50),
			invalid, unbillable, kevel,
		})
		require.NoError(t, err)

		stats, err := s.AdStats(ctx, []string{"l1", "unknown"}, day1.Add(12*time.Hour))
		require.NoError(t, err)
		require.Equal(t, map[string]decision.AdStats{"l1": {SpentTodayMicros: 150, SpentTotalMicros: 150, Impressions: 1, Clicks: 1}}, stats)

		_, err = s.WriteEvents(ctx, []analytics.Event{local(analytics.Impression, "l1", day2.Add(time.Second), 30)})
		require.NoError(t, err)
		stats, err = s.AdStats(ctx, []string{"l1"}, day2.Add(23*time.Hour))
		require.NoError(t, err)
		require.Equal(t, map[string]decision.AdStats{"l1": {SpentTodayMicros: 30, SpentTotalMicros: 180, Impressions: 2, Clicks: 1}}, stats)
		stats, err = s.AdStats(ctx, []string{"l1"}, day1)
		require.NoError(t, err)
		require.Equal(t, map[string]decision.AdStats{"l1": {SpentTodayMicros: 0, SpentTotalMicros: 180, Impressions: 2, Clicks: 1}}, stats,
			"only the latest day's spend is kept")

		// A late event of day 1 adds to the total, not to today.
		_, err = s.WriteEvents(ctx, []analytics.Event{local(analytics.Impression, "l1", day1.Add(20*time.Hour), 5)})
		require.NoError(t, err)
		// One batch spanning both days, later day last or first.
		_, err = s.WriteEvents(ctx, []analytics.Event{
			local(analytics.Impression, "l2", day2.Add(time.Hour), 7),
			local(analytics.Impression, "l2", day1.Add(time.Hour), 3),
			local(analytics.Impression, "l3", day1.Add(time.Hour), 3),
			local(analytics.Impression, "l3", day2.Add(time.Hour), 7),
		})
		require.NoError(t, err)
		stats, err = s.AdStats(ctx, []string{"l1", "l2", "l3"}, day2)
		require.NoError(t, err)
		require.Equal(t, map[string]decision.AdStats{
			"l1": {SpentTodayMicros: 30, SpentTotalMicros: 185, Impressions: 3, Clicks: 1},
			"l2": {SpentTodayMicros: 7, SpentTotalMicros: 10, Impressions: 2},
			"l3": {SpentTodayMicros: 7, SpentTotalMicros: 10, Impressions: 2},
		}, stats)
		stats, err = s.AdStats(ctx, []string{"l1"}, day2.Add(24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, map[string]decision.AdStats{"l1": {SpentTotalMicros: 185, Impressions: 3, Clicks: 1}}, stats, "a new day starts at zero")

		none, err := s.AdStats(ctx, nil, day2)
		require.NoError(t, err)
		require.Empty(t, none)
	})
}

// NewEvent returns a valid, billable event of typ for owner that occurred
// at `when`, on a fresh token issued a second earlier: a CPM ad from
// Kevel costing 10 micros, no owner share. Tests change what they need.
func NewEvent(owner uuid.UUID, typ analytics.EventType, when time.Time) analytics.Event {
	return analytics.Event{
		TrackingID: uuid.Must(uuid.NewV7()), Type: typ,
		Ad: tracking.Ad{Owner: owner, Placement: "main", Source: "kevel", AdID: "ad-1", AdvertiserID: "adv-1",
			PriceModel: "cpm", PriceMicros: 10_000, Billable: true, IssuedAt: when.Add(-time.Second)},
		OccurredAt: when, ReceivedAt: when.Add(time.Second), Valid: true, SpendMicros: 10,
	}
}

// RequireRows fails tb unless got holds the rows of want, in order
// (buckets compared as instants).
func RequireRows(tb testing.TB, want, got []analytics.Row, msgAndArgs ...any) {
	tb.Helper()
	norm := func(rows []analytics.Row) []analytics.Row {
		out := slices.Clone(rows)
		for i := range out {
			out[i].Bucket = out[i].Bucket.UTC()
		}
		return out
	}
	if len(want) == 0 {
		require.Empty(tb, got, msgAndArgs...)
		return
	}
	require.Equal(tb, norm(want), norm(got), msgAndArgs...)
}

// at parses an RFC 3339 time.
func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
