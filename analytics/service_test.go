package analytics_test

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/store/memory"
)

// fixedTiers gives every owner the same share.
type fixedTiers struct{ bp int }

func (f fixedTiers) TierAt(context.Context, uuid.UUID, time.Time) (auth.Tier, error) {
	return auth.Tier{Name: "t", RevenueShareBP: f.bp, MaxAdsPerView: 1}, nil
}

// pixels records what the service fires.
type pixels struct {
	mu     sync.Mutex
	fired  []string
	clicks []string
}

func (p *pixels) Fire(url string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fired = append(p.fired, url)
	return nil
}

func (p *pixels) FireClick(_ context.Context, url string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clicks = append(p.clicks, url)
	return "https://advertiser.example/landing", nil
}

func (p *pixels) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.fired)
}

// countingStore counts WriteEvents calls, to show group commit.
type countingStore struct {
	analytics.Store
	writes atomic.Int64
	delay  time.Duration
}

func (c *countingStore) WriteEvents(ctx context.Context, e []analytics.Event) ([]bool, error) {
	c.writes.Add(1)
	time.Sleep(c.delay) // a commit's cost, so that concurrent requests queue up
	return c.Store.WriteEvents(ctx, e)
}

// liveRecorder is an analytics.Live that counts its calls and how often
// it was told of each event.
type liveRecorder struct {
	mu     sync.Mutex
	calls  int
	events map[uuid.UUID]int
}

func (l *liveRecorder) Accepted(_ context.Context, events []analytics.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	for _, e := range events {
		l.events[e.TrackingID]++
	}
}

func (l *liveRecorder) seen() (calls int, events map[uuid.UUID]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls, maps.Clone(l.events)
}

type testBundle struct {
	svc    *analytics.Service
	store  *countingStore
	sealer *tracking.Sealer
	pixels *pixels
	live   *liveRecorder
	now    time.Time
}

func setup(t *testing.T, mutate ...func(*analytics.Config)) *testBundle {
	t.Helper()
	sealer, err := tracking.NewSealer([][]byte{[]byte("0123456789abcdef0123456789abcdef")}, nil)
	require.NoError(t, err)
	b := &testBundle{store: &countingStore{Store: memory.New(), delay: time.Millisecond}, sealer: sealer, pixels: &pixels{},
		live: &liveRecorder{events: map[uuid.UUID]int{}}}
	cfg := analytics.Config{
		Store: b.store, Sealer: sealer, Tiers: fixedTiers{bp: 6000}, Bursts: memory.NewBurstCounter(), Pixels: b.pixels, Live: b.live,
		Filters: analytics.FilterConfig{DataCenters: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	b.svc, err = analytics.NewService(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.svc.Stop(context.Background())) })
	return b
}

// served seals a token for an ad served two seconds ago.
func (b *testBundle) served(t *testing.T, mutate ...func(*tracking.Payload)) (string, tracking.Payload) {
	t.Helper()
	now := time.Now().UTC()
	tr := tracking.Payload{
		ID: uuid.Must(uuid.NewV7()),
		Ad: tracking.Ad{Owner: uuid.New(), ViewerKey: "viewer-" + uuid.NewString(), Placement: "main",
			Source: "kevel", AdID: "42", CreativeID: "7", AdvertiserID: "501", PriceModel: "cpm", PriceMicros: 2_500_000,
			Billable: true, IssuedAt: now.Add(-2 * time.Second)},
		Upstream:  tracking.Upstream{ImpressionURL: "https://e-23.adzerk.net/i.gif?e=x", ClickURL: "https://e-23.adzerk.net/r?e=y"},
		ExpiresAt: now.Add(time.Hour),
	}
	for _, m := range mutate {
		m(&tr)
	}
	tok, err := b.sealer.Seal(tr)
	require.NoError(t, err)
	return tok, tr
}

func client(ip, ua string) context.Context {
	return auth.NewContextWithClient(context.Background(), auth.Client{IP: ip, UserAgent: ua})
}

var app = client("203.0.113.7", "AdshareApp/2.1 (iPhone; iOS 18.1)")

func (b *testBundle) one(t *testing.T, ctx context.Context, r analytics.Report) analytics.Result {
	t.Helper()
	res, err := b.svc.Ingest(ctx, []analytics.Report{r})
	require.NoError(t, err)
	require.Len(t, res, 1)
	return res[0]
}

func TestImpressionAndClickAreCountedOnceAndBilled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok, tr := b.served(t)

	res := b.one(t, app, analytics.Report{Type: analytics.Impression, Token: tok})
	require.Equal(t, analytics.Accepted, res.Status)
	require.True(t, res.Valid)
	require.True(t, res.Billable)
	require.Equal(t, tr.ID, res.TrackingID)

	again := b.one(t, app, analytics.Report{Type: analytics.Impression, Token: tok})
	require.Equal(t, analytics.Duplicate, again.Status, "a retried impression is idempotent")
	require.Equal(t, 1, b.pixels.count(), "the ad server's impression pixel fires once")

	time.Sleep(10 * time.Millisecond)
	click := b.one(t, app, analytics.Report{Type: analytics.Click, Token: tok, OccurredAt: time.Now().Add(time.Second)})
	require.Equal(t, analytics.Accepted, click.Status)
	require.True(t, click.Valid)
	require.False(t, click.Billable, "a CPM ad's click costs nothing")

	rep := b.report(t, tr.Owner)
	require.Equal(t, int64(1), rep.Impressions)
	require.Equal(t, int64(1), rep.BillableImpressions)
	require.Equal(t, int64(1), rep.ValidClicks)
	require.Equal(t, int64(2_500), rep.SpendMicros, "CPM/1000 per impression")
	require.Equal(t, int64(1_500), rep.OwnerEarningsMicros, "60% to the owner")
}

// report sums the owner's figures for the last day.
func (b *testBundle) report(t *testing.T, owner uuid.UUID) analytics.Totals {
	t.Helper()
	rows, err := b.store.Report(context.Background(), analytics.Query{
		Granularity: analytics.Day, From: time.Now().Add(-48 * time.Hour), To: time.Now().Add(48 * time.Hour),
		Location: time.UTC, Owner: owner,
	})
	require.NoError(t, err)
	var total analytics.Totals
	total.InvalidByRule = map[string]int64{}
	for _, r := range rows {
		total.Counts.Add(r.Counts)
		for k, v := range r.InvalidByRule {
			total.InvalidByRule[k] += v
		}
	}
	return total
}

// The invalid-traffic rules, one row each.
func TestInvalidTrafficRules(t *testing.T) {
	t.Parallel()
	owner := uuid.New()
	tests := []struct {
		description string
		ctx         context.Context
		tracking    func(*tracking.Payload)
		report      func(tok string) []analytics.Report
		wantRule    string
	}{
		{"the owner viewing their own space", app, func(tr *tracking.Payload) { tr.Owner, tr.Viewer = owner, owner },
			imp, analytics.RuleOwnerView},
		{"a crawler", client("203.0.113.8", "Mozilla/5.0 (compatible; Googlebot/2.1)"), nil, imp, analytics.RuleBotUserAgent},
		{"a script", client("203.0.113.8", "python-requests/2.32"), nil, imp, analytics.RuleBotUserAgent},
		{"a headless browser", client("203.0.113.8", "Mozilla/5.0 HeadlessChrome/120"), nil, imp, analytics.RuleBotUserAgent},
		{"a data centre", client("192.0.2.50", "AdshareApp/2.1"), nil, imp, analytics.RuleDataCenter},
		{"an impression reported before it could be seen", app, func(tr *tracking.Payload) { tr.IssuedAt = time.Now().UTC() },
			imp, analytics.RuleNotViewable},
		{"a click without an impression", app, nil, func(tok string) []analytics.Report {
			return []analytics.Report{{Type: analytics.Click, Token: tok}}
		}, analytics.RuleNoImpression},
		{"a click faster than a human", app, nil, func(tok string) []analytics.Report {
			at := time.Now()
			return []analytics.Report{{Type: analytics.Impression, Token: tok, OccurredAt: at},
				{Type: analytics.Click, Token: tok, OccurredAt: at.Add(100 * time.Millisecond)}}
		}, analytics.RuleFastClick},
		{"a conversion without an impression", app, nil, func(tok string) []analytics.Report {
			return []analytics.Report{{Type: analytics.Conversion, Token: tok, Name: "signup"}}
		}, analytics.RuleConversionNoImp},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var mutate []func(*tracking.Payload)
			if tt.tracking != nil {
				mutate = append(mutate, tt.tracking)
			}
			tok, tr := b.served(t, mutate...)
			res, err := b.svc.Ingest(tt.ctx, tt.report(tok))
			require.NoError(t, err)
			last := res[len(res)-1]
			require.Equal(t, analytics.Accepted, last.Status, "invalid traffic is kept")
			require.False(t, last.Valid)
			require.Equal(t, tt.wantRule, last.Rule)
			require.False(t, last.Billable, "invalid traffic never bills")
			total := b.report(t, tr.Owner)
			require.Equal(t, int64(1), total.InvalidByRule[tt.wantRule], "visible in reports by rule")
		})
	}

	t.Run("bursts from one viewer, then one network", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *analytics.Config) {
			c.Filters.ViewerPerMinute, c.Filters.NetworkPerMinute = 3, 5
		})
		minute := pastMinute()
		var rules []string
		for i := range 7 {
			tok, _ := b.served(t, func(tr *tracking.Payload) {
				tr.IssuedAt = minute
				if i < 4 {
					tr.ViewerKey = "same-viewer"
				}
			})
			res := b.one(t, app, analytics.Report{Type: analytics.Impression, Token: tok, OccurredAt: minute.Add(time.Duration(2+i) * time.Second)})
			rules = append(rules, res.Rule)
		}
		require.Equal(t, []string{"", "", "", analytics.RuleViewerBurst, "", "", analytics.RuleIPBurst}, rules)
	})
}

// pastMinute is the start of a minute that has passed, so that events of a
// test fall in one burst window whatever the clock says.
func pastMinute() time.Time { return time.Now().UTC().Add(-2 * time.Minute).Truncate(time.Minute) }

// Bursts are counted by the minute events occurred in, from events that
// were new: an app's batch of a morning's events is not a burst, a retry
// spends nothing, and a burst within one batch is caught.
func TestBurstsCountWhenEventsHappened(t *testing.T) {
	t.Parallel()
	limit := func(c *analytics.Config) { c.Filters.ViewerPerMinute = 3 }
	report := func(b *testBundle, at time.Time) analytics.Report {
		tok, _ := b.served(t, func(tr *tracking.Payload) { tr.IssuedAt, tr.ViewerKey = at.Add(-2*time.Second), "one-viewer" })
		return analytics.Report{Type: analytics.Impression, Token: tok, OccurredAt: at}
	}
	rulesOf := func(res []analytics.Result) []string {
		var rules []string
		for _, r := range res {
			rules = append(rules, r.Rule)
		}
		return rules
	}

	t.Run("a batch spread over minutes", func(t *testing.T) {
		t.Parallel()
		b := setup(t, limit)
		start := pastMinute().Add(-20 * time.Minute)
		var batch []analytics.Report
		for i := range 10 { // two a minute for five minutes
			batch = append(batch, report(b, start.Add(time.Duration(i/2)*time.Minute+time.Duration(i)*time.Second)))
		}
		res, err := b.svc.Ingest(app, batch)
		require.NoError(t, err)
		require.Equal(t, make([]string, 10), rulesOf(res))
	})

	t.Run("a burst within one batch", func(t *testing.T) {
		t.Parallel()
		b := setup(t, limit)
		minute := pastMinute()
		var batch []analytics.Report
		for i := range 5 {
			batch = append(batch, report(b, minute.Add(time.Duration(10+i)*time.Second)))
		}
		res, err := b.svc.Ingest(app, batch)
		require.NoError(t, err)
		require.Equal(t, []string{"", "", "", analytics.RuleViewerBurst, analytics.RuleViewerBurst}, rulesOf(res))
	})

	t.Run("retries spend nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, limit)
		minute := pastMinute()
		first := []analytics.Report{report(b, minute.Add(10*time.Second)), report(b, minute.Add(11*time.Second))}
		for range 3 { // sent, then retried twice
			res, err := b.svc.Ingest(app, first)
			require.NoError(t, err)
			require.Equal(t, []string{"", ""}, rulesOf(res))
		}
		res, err := b.svc.Ingest(app, []analytics.Report{report(b, minute.Add(12*time.Second)), report(b, minute.Add(13*time.Second))})
		require.NoError(t, err)
		require.Equal(t, []string{"", analytics.RuleViewerBurst}, rulesOf(res), "the third event is the viewer's third")
	})

	t.Run("a burst spread over concurrent requests", func(t *testing.T) {
		t.Parallel()
		b := setup(t, limit)
		minute := pastMinute()
		const requests = 24
		reports := make([]analytics.Report, requests)
		for i := range reports {
			reports[i] = report(b, minute.Add(time.Duration(10+i)*time.Second))
		}
		results := make([]analytics.Result, requests)
		var wg sync.WaitGroup
		for i := range reports {
			wg.Go(func() {
				res, err := b.svc.Ingest(app, reports[i:i+1])
				assert.NoError(t, err)
				results[i] = res[0]
			})
		}
		wg.Wait()
		passed := 0
		for _, r := range results {
			require.Equal(t, analytics.Accepted, r.Status)
			if r.Valid {
				passed++
				require.True(t, r.Billable)
				continue
			}
			require.Equal(t, analytics.RuleViewerBurst, r.Rule)
			require.False(t, r.Billable, "a burst costs the advertiser nothing")
		}
		require.Equal(t, 3, passed, "requests in flight together are judged together: the limit holds exactly")
	})
}

// hangingCounter and hangingLive answer nothing until released, as a Redis
// partitioned away does until its client's timeouts run out.
type hangingCounter struct{ release chan struct{} }

func (h hangingCounter) Counts(context.Context, []analytics.BurstKey) ([]int64, error) {
	<-h.release
	return nil, errors.New("timed out")
}

func (h hangingCounter) Add(context.Context, []analytics.BurstKey, time.Duration) error {
	<-h.release
	return errors.New("timed out")
}

type hangingLive struct{ release chan struct{} }

func (h hangingLive) Accepted(context.Context, []analytics.Event) { <-h.release }

// A counter or Live that hangs costs a group commit a bounded wait, not
// the ingest: events are accepted, judged without the burst counts.
func TestAHangingCounterDoesNotHoldUpIngest(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	b := setup(t, func(c *analytics.Config) {
		c.Bursts, c.Live = hangingCounter{release}, hangingLive{release}
	})
	tokens := make([]string, 3)
	for i := range tokens {
		tokens[i], _ = b.served(t)
	}
	done := make(chan []analytics.Result, 1)
	go func() {
		var results []analytics.Result
		for _, tok := range tokens { // three commits, each waiting on the side calls a bounded time
			res, err := b.svc.Ingest(app, []analytics.Report{{Type: analytics.Impression, Token: tok}})
			assert.NoError(t, err)
			results = append(results, res...)
		}
		done <- results
	}()
	select {
	case results := <-done:
		for _, r := range results {
			require.Equal(t, analytics.Accepted, r.Status)
			require.True(t, r.Valid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ingest waited on a hanging counter")
	}
}

func imp(tok string) []analytics.Report {
	return []analytics.Report{{Type: analytics.Impression, Token: tok}}
}

func TestBadReportsAreRejectedAndChangeNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	good, tr := b.served(t)
	other, err := tracking.NewSealer([][]byte{[]byte("another key, 32 bytes long......")}, nil)
	require.NoError(t, err)
	forged, err := other.Seal(tr)
	require.NoError(t, err)
	expired, _ := b.served(t, func(tr *tracking.Payload) { tr.ExpiresAt = time.Now().Add(-time.Second) })
	viewer := uuid.New()
	servedToViewer, _ := b.served(t, func(tr *tracking.Payload) { tr.Viewer = viewer })
	someoneElse := auth.NewContextWithPrincipal(app, auth.Principal{UserID: uuid.New()})

	tests := []struct {
		description string
		ctx         context.Context
		report      analytics.Report
		wantCode    string
	}{
		{"forged token", app, analytics.Report{Type: analytics.Impression, Token: forged}, "invalid_tracking_token"},
		{"garbage token", app, analytics.Report{Type: analytics.Impression, Token: "not-a-token"}, "invalid_tracking_token"},
		{"expired token", app, analytics.Report{Type: analytics.Impression, Token: expired}, "expired_tracking_token"},
		{"someone else's token", someoneElse, analytics.Report{Type: analytics.Impression, Token: servedToViewer}, "foreign_tracking_token"},
		{"unknown type", app, analytics.Report{Type: "view", Token: good}, "invalid_event"},
		{"no token", app, analytics.Report{Type: analytics.Impression}, "invalid_event"},
		{"far future", app, analytics.Report{Type: analytics.Impression, Token: good, OccurredAt: time.Now().Add(time.Hour)}, "invalid_event"},
		{"before it was served", app, analytics.Report{Type: analytics.Impression, Token: good, OccurredAt: time.Now().Add(-time.Hour)}, "invalid_event"},
		{"conversion without a name", app, analytics.Report{Type: analytics.Conversion, Token: good}, "invalid_event"},
		{"conversion with an odd name", app, analytics.Report{Type: analytics.Conversion, Token: good, Name: "drop table;"}, "invalid_event"},
		{"negative value", app, analytics.Report{Type: analytics.Conversion, Token: good, Name: "buy", ValueMicros: -1}, "invalid_event"},
		{"a value over ten thousand units", app, analytics.Report{Type: analytics.Conversion, Token: good, Name: "buy",
			ValueMicros: 10_000_000_001}, "invalid_event"},
		{"a name on an impression", app, analytics.Report{Type: analytics.Impression, Token: good, Name: "x"}, "invalid_event"},
		{"a field the adapter could not read", app, analytics.Report{Type: analytics.Impression, Token: good,
			Unreadable: map[string]string{"occurred_at": "must be an RFC 3339 date-time"}}, "invalid_event"},
	}
	for _, tt := range tests {
		res, err := b.svc.Ingest(tt.ctx, []analytics.Report{tt.report})
		require.NoError(t, err, tt.description)
		require.Equal(t, analytics.Rejected, res[0].Status, tt.description)
		require.Equal(t, tt.wantCode, res[0].Error.Code, tt.description)
	}
	require.Zero(t, b.report(t, tr.Owner).Impressions, "nothing was stored")
	require.Zero(t, b.pixels.count())

	_, err = b.svc.Ingest(app, nil)
	require.ErrorIs(t, err, analytics.ErrTooManyEvents)
	_, err = b.svc.Ingest(app, make([]analytics.Report, analytics.DefaultMaxBatch+1))
	require.ErrorIs(t, err, analytics.ErrTooManyEvents)
	require.Equal(t, errs.TooLarge, errs.KindOf(err))
}

func TestBatchMixesResultsAndDuplicatesWithin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, _ := b.served(t)
	c, _ := b.served(t)
	res, err := b.svc.Ingest(app, []analytics.Report{
		{Type: analytics.Impression, Token: a},
		{Type: analytics.Impression, Token: "bad"},
		{Type: analytics.Impression, Token: a},
		{Type: analytics.Impression, Token: c},
	})
	require.NoError(t, err)
	var statuses []analytics.Status
	for _, r := range res {
		statuses = append(statuses, r.Status)
	}
	require.Equal(t, []analytics.Status{analytics.Accepted, analytics.Rejected, analytics.Duplicate, analytics.Accepted}, statuses)
}

func TestConversionsCountOncePerName(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok, _ := b.served(t)
	b.one(t, app, analytics.Report{Type: analytics.Impression, Token: tok})
	require.Equal(t, analytics.Accepted, b.one(t, app, analytics.Report{Type: analytics.Conversion, Token: tok, Name: "signup"}).Status)
	require.Equal(t, analytics.Duplicate, b.one(t, app, analytics.Report{Type: analytics.Conversion, Token: tok, Name: "signup"}).Status)
	require.Equal(t, analytics.Accepted, b.one(t, app, analytics.Report{Type: analytics.Conversion, Token: tok, Name: "purchase", ValueMicros: 9_990_000}).Status)
}

// A conversion is valid only after a valid impression of its token: one
// stored before, or (when none is stored) one in the same request that
// passes every rule, the burst rules included. A flagged impression
// proves no one saw the ad, whatever name the conversion comes with.
func TestConversionsNeedAValidImpression(t *testing.T) {
	t.Parallel()
	// unseen is a token whose ad was served just now: its impression,
	// reported at once, is not viewable.
	unseen := func(tr *tracking.Payload) { tr.IssuedAt = time.Now().UTC() }
	seen := func(*tracking.Payload) {} // served two seconds ago
	conversion := func(tok, name string) analytics.Report {
		return analytics.Report{Type: analytics.Conversion, Token: tok, Name: name, ValueMicros: 9_990_000}
	}
	tests := []struct {
		description string
		tracking    func(*tracking.Payload)
		// batches are sent in turn; each conversion in them is judged.
		batches   func(tok string) [][]analytics.Report
		wantValid bool
	}{
		{"after a stored valid impression", seen, func(tok string) [][]analytics.Report {
			return [][]analytics.Report{imp(tok), {conversion(tok, "signup")}}
		}, true},
		{"beside a valid impression in its batch", seen, func(tok string) [][]analytics.Report {
			return [][]analytics.Report{{conversion(tok, "signup"), {Type: analytics.Impression, Token: tok}}}
		}, true},
		{"after a stored impression that was not viewable, under a new name", unseen, func(tok string) [][]analytics.Report {
			return [][]analytics.Report{imp(tok), {conversion(tok, "signup")}, {conversion(tok, "purchase")}}
		}, false},
		{"beside an impression in its batch that is not viewable", unseen, func(tok string) [][]analytics.Report {
			return [][]analytics.Report{{{Type: analytics.Impression, Token: tok}, conversion(tok, "signup")}}
		}, false},
		{"beside a retry, viewable now, of a stored impression that was not", unseen, func(tok string) [][]analytics.Report {
			return [][]analytics.Report{imp(tok), {{Type: analytics.Impression, Token: tok, OccurredAt: time.Now().Add(2 * time.Second)},
				conversion(tok, "signup")}}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			tok, tr := b.served(t, tt.tracking)
			conversions := 0
			for _, batch := range tt.batches(tok) {
				res, err := b.svc.Ingest(app, batch)
				require.NoError(t, err)
				for i, r := range batch {
					if r.Type != analytics.Conversion {
						continue
					}
					conversions++
					require.Equal(t, analytics.Accepted, res[i].Status)
					require.Equal(t, tt.wantValid, res[i].Valid, r.Name)
					if !tt.wantValid {
						require.Equal(t, analytics.RuleConversionNoImp, res[i].Rule, r.Name)
					}
				}
			}
			if !tt.wantValid {
				require.Equal(t, int64(conversions), b.report(t, tr.Owner).InvalidByRule[analytics.RuleConversionNoImp])
			}
		})
	}

	// An impression the burst rules flag (they judge at commit, after the
	// other rules) takes the conversion of its batch down with it.
	t.Run("beside an impression in its batch that the burst rules flag", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *analytics.Config) { c.Filters.ViewerPerMinute = 1 })
		minute := pastMinute()
		oneViewer := func(tr *tracking.Payload) { tr.IssuedAt, tr.ViewerKey = minute, "one-viewer" }
		first, _ := b.served(t, oneViewer)
		second, _ := b.served(t, oneViewer)
		at := minute.Add(5 * time.Second)
		require.True(t, b.one(t, app, analytics.Report{Type: analytics.Impression, Token: first, OccurredAt: at}).Valid)
		res, err := b.svc.Ingest(app, []analytics.Report{
			{Type: analytics.Impression, Token: second, OccurredAt: at},
			{Type: analytics.Conversion, Token: second, Name: "signup", OccurredAt: at.Add(time.Second)},
		})
		require.NoError(t, err)
		require.Equal(t, analytics.RuleViewerBurst, res[0].Rule)
		require.False(t, res[1].Valid)
		require.Equal(t, analytics.RuleConversionNoImp, res[1].Rule)
	})
}

func TestNotBillableTokensNeverEarn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok, tr := b.served(t, func(tr *tracking.Payload) { tr.Billable = false })
	res := b.one(t, app, analytics.Report{Type: analytics.Impression, Token: tok})
	require.True(t, res.Valid)
	require.False(t, res.Billable)
	require.Zero(t, b.report(t, tr.Owner).SpendMicros)
	require.Zero(t, b.pixels.count(), "no upstream pixel for what we do not bill")
}

// Concurrent single-event requests share commits, and what follows a
// commit happens once per group: each new event reaches Live and fires its
// pixel exactly once, a retry never.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 64
	owner := uuid.New()
	reports := make([]analytics.Report, n)
	ids := map[uuid.UUID]int{}
	for i := range reports {
		tok, tr := b.served(t, func(tr *tracking.Payload) { tr.Owner = owner; tr.ViewerKey = "v" + strconv.Itoa(i) })
		reports[i] = analytics.Report{Type: analytics.Impression, Token: tok}
		ids[tr.ID] = 1
	}
	send := func(want analytics.Status) {
		var wg sync.WaitGroup
		for i := range reports {
			wg.Go(func() {
				res, err := b.svc.Ingest(client("203.0.113."+strconv.Itoa(i%200), "App/1"), reports[i:i+1])
				assert.NoError(t, err)
				assert.Equal(t, want, res[0].Status)
			})
		}
		wg.Wait()
	}
	send(analytics.Accepted)
	require.Equal(t, int64(n), b.report(t, owner).Impressions)
	writes := b.store.writes.Load()
	require.Less(t, writes, int64(n), "requests were grouped into fewer writes")
	calls, told := b.live.seen()
	require.Equal(t, ids, told, "Live hears of each new event once")
	require.Equal(t, int(writes), calls, "once per group commit")
	require.Equal(t, n, b.pixels.count())

	send(analytics.Duplicate) // every one retried
	_, told = b.live.seen()
	require.Equal(t, ids, told, "retries are not news")
	require.Equal(t, n, b.pixels.count(), "nor fire pixels again")
}

func TestClickRedirect(t *testing.T) {
	t.Parallel()
	b := setup(t)

	local, tr := b.served(t, func(tr *tracking.Payload) {
		tr.Source, tr.Upstream.ClickURL, tr.Upstream.ImpressionURL = "local", "", ""
		tr.PriceModel, tr.LandingURL = "cpc", "https://shop.example.com/beans"
	})
	b.one(t, app, analytics.Report{Type: analytics.Impression, Token: local, OccurredAt: time.Now().Add(-2 * time.Second)})
	target, res, err := b.svc.Click(app, local)
	require.NoError(t, err)
	require.Equal(t, "https://shop.example.com/beans", target)
	require.Equal(t, analytics.Accepted, res.Status)
	require.True(t, res.Billable, "a CPC ad's click is billed")
	require.Equal(t, int64(2_500_000), b.report(t, tr.Owner).SpendMicros)

	kevel, _ := b.served(t)
	b.one(t, app, analytics.Report{Type: analytics.Impression, Token: kevel, OccurredAt: time.Now().Add(-2 * time.Second)})
	target, _, err = b.svc.Click(app, kevel)
	require.NoError(t, err)
	require.Equal(t, "https://advertiser.example/landing", target, "the ad server's redirect, read without following it")
	b.pixels.mu.Lock()
	require.Equal(t, []string{"https://e-23.adzerk.net/r?e=y"}, b.pixels.clicks, "the redirect fires the ad server's click once")
	require.NotContains(t, b.pixels.fired, "https://e-23.adzerk.net/r?e=y",
		"and the commit does not queue it too: the firer's once-only guard would refuse the redirect's fire (404 no_destination)")
	b.pixels.mu.Unlock()

	expired, _ := b.served(t, func(tr *tracking.Payload) {
		tr.ExpiresAt, tr.LandingURL = time.Now().Add(-time.Minute), "https://shop.example.com/late"
	})
	target, res, err = b.svc.Click(app, expired)
	require.NoError(t, err, "an expired link still takes the viewer where they meant to go")
	require.Equal(t, "https://shop.example.com/late", target)
	require.Empty(t, res.Status, "but counts nothing")

	_, _, err = b.svc.Click(app, "forged")
	require.ErrorIs(t, err, tracking.ErrInvalidToken)

	evil, _ := b.served(t, func(tr *tracking.Payload) {
		tr.Source, tr.Upstream.ClickURL, tr.LandingURL = "local", "", "javascript:alert(1)"
	})
	_, _, err = b.svc.Click(app, evil)
	require.ErrorIs(t, err, analytics.ErrNoDestination)
}

// A Kevel ad has no landing page of its own, so a click we do not count
// (a double tap, a click too soon after the impression, an expired link)
// must still send the viewer on: to the destination the ad server's
// redirect gave before, or, when none is known, through firing the click
// after all. It used to answer 404 no_destination.
func TestKevelClickNotCountedStillRedirects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clicks := func() int { b.pixels.mu.Lock(); defer b.pixels.mu.Unlock(); return len(b.pixels.clicks) }

	// Clicked before any impression: invalid traffic, and no destination
	// known yet for this creative.
	first, _ := b.served(t, func(tr *tracking.Payload) { tr.CreativeID = "fresh" })
	target, res, err := b.svc.Click(app, first)
	require.NoError(t, err)
	require.Equal(t, "https://advertiser.example/landing", target)
	require.Equal(t, analytics.Accepted, res.Status)
	require.False(t, res.Valid, "the click is recorded as invalid")
	require.False(t, res.Billable, "and earns nothing")
	require.Equal(t, 1, clicks(), "the ad server's click was fired to learn where it leads")

	// The same link again: a duplicate, sent to the remembered destination
	// without firing again.
	target, res, err = b.svc.Click(app, first)
	require.NoError(t, err)
	require.Equal(t, "https://advertiser.example/landing", target)
	require.Equal(t, analytics.Duplicate, res.Status)
	require.Equal(t, 1, clicks())

	// Another showing of the same creative, expired: counted nowhere, sent on.
	expired, _ := b.served(t, func(tr *tracking.Payload) {
		tr.CreativeID, tr.ExpiresAt = "fresh", time.Now().Add(-time.Minute)
	})
	target, res, err = b.svc.Click(app, expired)
	require.NoError(t, err)
	require.Equal(t, "https://advertiser.example/landing", target)
	require.Empty(t, res.Status)
	require.Equal(t, 1, clicks(), "the known destination is used; nothing reaches the ad server")
}

func TestFillCountsReachTheReports(t *testing.T) {
	t.Parallel()
	b := setup(t)
	owner := uuid.New()
	b.svc.RecordFill(owner, 2, 1)
	b.svc.RecordFill(owner, 1, 0)
	b.svc.FlushFills(context.Background())
	total := b.report(t, owner)
	require.Equal(t, int64(3), total.Requested)
	require.Equal(t, int64(1), total.Filled)
}

func TestReports(t *testing.T) {
	t.Parallel()
	store := memory.New()
	sealer, err := tracking.NewSealer([][]byte{[]byte("0123456789abcdef0123456789abcdef")}, nil)
	require.NoError(t, err)
	perms := &permissions{allowed: map[auth.Permission]bool{auth.PermAdSpace: true}}
	svc, err := analytics.NewService(analytics.Config{Store: store, Sealer: sealer, Tiers: fixedTiers{bp: 5000}, Auth: perms, Users: store})
	require.NoError(t, err)
	defer func() { require.NoError(t, svc.Stop(context.Background())) }()
	owner := auth.Principal{UserID: uuid.New(), Role: auth.RoleUser}
	now := time.Now().UTC()
	tok, err := sealer.Seal(tracking.Payload{ID: uuid.Must(uuid.NewV7()),
		Ad: tracking.Ad{Owner: owner.UserID, Source: "local", AdID: "a1", AdvertiserID: "adv", PriceModel: "cpm", PriceMicros: 4_000_000,
			Billable: true, IssuedAt: now.Add(-5 * time.Second)},
		ExpiresAt: now.Add(time.Hour)})
	require.NoError(t, err)
	_, err = svc.Ingest(app, []analytics.Report{{Type: analytics.Impression, Token: tok}})
	require.NoError(t, err)

	rep, err := svc.Performance(context.Background(), owner, analytics.ReportParams{From: now.Add(-24 * time.Hour), To: now.Add(time.Hour), Granularity: analytics.Hour})
	require.NoError(t, err)
	require.Equal(t, int64(1), rep.Totals.Impressions)
	require.Equal(t, int64(4_000), rep.Totals.SpendMicros)

	rev, err := svc.Revenue(context.Background(), owner, analytics.ReportParams{From: now.Add(-24 * time.Hour), To: now.Add(time.Hour), Granularity: analytics.Day})
	require.NoError(t, err)
	require.Equal(t, int64(4_000), rev.Estimated.GrossMicros)
	require.Equal(t, int64(2_000), rev.Estimated.OwnerMicros)
	require.Equal(t, int64(2_000), rev.Estimated.PlatformMicros)
	require.Nil(t, rev.Final, "no billing configured")

	// Another owner's figures are not this owner's.
	other, err := svc.Performance(context.Background(), auth.Principal{UserID: uuid.New()}, analytics.ReportParams{
		From: now.Add(-24 * time.Hour), To: now.Add(time.Hour), Granularity: analytics.Hour})
	require.NoError(t, err)
	require.Zero(t, other.Totals.Impressions)

	for _, bad := range []analytics.ReportParams{
		{From: now.AddDate(-10, 0, 0), To: now, Granularity: analytics.Hour},
		{From: now, To: now.Add(-time.Hour), Granularity: analytics.Day},
		{From: now.Add(-time.Hour), To: now, Granularity: "minute"},
		{From: now.Add(-time.Hour), To: now, Granularity: analytics.Day, TimeZone: "Mars/Base"},
		{From: now.Add(-time.Hour), To: now, Granularity: analytics.Day, GroupBy: []analytics.Dimension{"viewer"}},
		{From: now.Add(-time.Hour), To: now, Granularity: analytics.Day, Scope: "everyone"},
	} {
		_, err := svc.Performance(context.Background(), owner, bad)
		require.ErrorIs(t, err, analytics.ErrInvalidQuery, "%+v", bad)
	}
	_, err = svc.Performance(context.Background(), owner, analytics.ReportParams{Scope: analytics.ScopeAll, From: now.Add(-time.Hour), To: now, Granularity: analytics.Day})
	require.ErrorIs(t, err, auth.ErrForbidden)
	_, err = svc.Users(context.Background(), owner, analytics.ReportParams{From: now.Add(-time.Hour), To: now, Granularity: analytics.Day}, 4)
	require.ErrorIs(t, err, auth.ErrForbidden)
	perms.allowed[auth.PermAnalyticsAll] = true
	users, err := svc.Users(context.Background(), owner, analytics.ReportParams{From: now.AddDate(0, 0, -7), To: now, Granularity: analytics.Day}, 4)
	require.NoError(t, err)
	require.NotNil(t, users.ByTier)
}

// permissions is a settable Authorizer.
type permissions struct{ allowed map[auth.Permission]bool }

func (p *permissions) Authorize(_ context.Context, _ auth.Principal, perm auth.Permission) error {
	if p.allowed[perm] {
		return nil
	}
	return auth.ErrForbidden
}

func TestStopWritesWhatIsGatheredAndThenRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *analytics.Config) { c.FillFlush = time.Hour })
	ctx := context.Background()
	require.NoError(t, b.svc.Start(ctx))
	require.NoError(t, b.svc.Start(ctx), "a second Start is a no-op")
	owner := uuid.New()
	tok, _ := b.served(t, func(tr *tracking.Payload) { tr.Owner = owner })
	require.Equal(t, analytics.Accepted, b.one(t, app, analytics.Report{Type: analytics.Impression, Token: tok}).Status)
	b.svc.RecordFill(owner, 4, 3)

	require.NoError(t, b.svc.Stop(ctx))
	total := b.report(t, owner)
	require.Equal(t, int64(4), total.Requested, "the fill counts gathered since the last flush are written by Stop")
	require.Equal(t, int64(1), total.Impressions)

	late, _ := b.served(t)
	_, err := b.svc.Ingest(app, []analytics.Report{{Type: analytics.Impression, Token: late}})
	require.ErrorIs(t, err, analytics.ErrStopped, "after Stop a report is refused, and the app retries elsewhere")
	require.Equal(t, time.Second, errs.As(err).RetryAfter)
	require.NoError(t, b.svc.Stop(ctx), "a second Stop is a no-op")
	require.Error(t, b.svc.Start(ctx), "a stopped service does not start again")
}
