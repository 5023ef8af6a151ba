package kevel_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/kevel"
)

// The Firer fires the pixels of accepted events for analytics.
var _ analytics.Pixels = (*kevel.Firer)(nil)

type pixelBundle struct {
	*testBundle
	firer *kevel.Firer
	ad    decision.Ad
}

// setupPixels starts a fake Kevel, gets one decision with tracking URLs
// (impression, click, event 30) and a started Firer on the fake's host.
func setupPixels(t *testing.T, mutate ...func(*kevel.FirerConfig)) *pixelBundle {
	t.Helper()
	b := setup(t, banner[:1])
	req := oneSlot("p")
	req.Placements[0].EventIDs = []int{30}
	resp, err := b.client.Decide(context.Background(), req)
	require.NoError(t, err)
	require.Len(t, resp.Ads["p"], 1)
	cfg := kevel.FirerConfig{
		NetworkID: networkID, BaseURL: b.fake.URL(), Metrics: prometheus.NewRegistry(), Now: b.clock.Now,
		Logger: slog.New(slog.NewTextHandler(b.logs, nil)), APIKey: apiKey,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	f, err := kevel.NewFirer(cfg)
	require.NoError(t, err)
	require.NoError(t, f.Start(context.Background()))
	t.Cleanup(func() { _ = f.Stop(context.Background()) })
	return &pixelBundle{testBundle: b, firer: f, ad: resp.Ads["p"][0]}
}

func micros(v int64) *int64 { return &v }

func TestFirerFiresEachURLOnce(t *testing.T) {
	t.Parallel()
	b := setupPixels(t)
	imp, ev := b.ad.Tracking.ImpressionURL, b.ad.Tracking.Events[30]
	require.NoError(t, b.firer.Fire(imp))
	require.ErrorIs(t, b.firer.Fire(imp), kevel.ErrPixelDuplicate)
	require.ErrorIs(t, b.firer.FireWith(imp, &kevel.FireOpts{RevenueOverride: micros(1)}), kevel.ErrPixelDuplicate,
		"options do not make it another pixel")
	require.NoError(t, b.firer.FireWith(ev, &kevel.FireOpts{
		RevenueOverride: micros(1_500_000), AdditionalRevenue: micros(250_000), GrossMerchandiseValue: micros(100_000_000),
		EventMultiplier: 3, UserAgent: "Mozilla/5.0 (Android 14)",
	}))
	require.NoError(t, b.firer.Stop(context.Background()))

	require.Equal(t, 1, b.fake.Fires(imp))
	require.Equal(t, 1, b.fake.Fires(ev))
	log := b.fake.FireLog()
	require.Len(t, log, 2)
	for _, f := range log {
		if f.Kind == "event" {
			require.Equal(t, 30, f.EventID)
			require.Equal(t, map[string]string{"override": "1.5", "additional": "0.25", "gmv": "100", "eventMultiplier": "3"}, f.Params)
			require.Equal(t, "Mozilla/5.0 (Android 14)", f.UserAgent)
		}
	}
	require.NotContains(t, b.logs.String(), apiKey)
}

func TestFireClickReturnsTheRedirect(t *testing.T) {
	t.Parallel()
	b := setupPixels(t)
	ctx := context.Background()
	loc, err := b.firer.FireClick(ctx, b.ad.Tracking.ClickURL)
	require.NoError(t, err)
	require.Equal(t, "https://advertiser.example/ads/1001", loc)
	_, err = b.firer.FireClick(ctx, b.ad.Tracking.ClickURL)
	require.ErrorIs(t, err, kevel.ErrPixelDuplicate)
	require.Equal(t, 1, b.fake.Stats().Clicks)

	// A second decision's click, counted without a redirect.
	resp, err := b.client.Decide(ctx, oneSlot("p"))
	require.NoError(t, err)
	loc, err = b.firer.FireClickWith(ctx, resp.Ads["p"][0].Tracking.ClickURL, &kevel.FireOpts{NoRedirect: true})
	require.NoError(t, err)
	require.Empty(t, loc)
	require.Equal(t, 2, b.fake.Stats().Clicks)
}

func TestFirerRefusesWhatIsNotAKevelPixel(t *testing.T) {
	t.Parallel()
	var internalHits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { internalHits.Add(1) }))
	t.Cleanup(internal.Close)
	b := setupPixels(t)
	fakeHTTPS := strings.Replace(b.fake.URL(), "http://", "https://", 1)
	for _, tt := range []struct {
		description string
		url         string
		opts        *kevel.FireOpts
	}{
		{"cloud metadata", "http://169.254.169.254/latest/meta-data/", nil},
		{"an internal service", internal.URL + "/i.gif?e=x&s=y", nil},
		{"another host", "https://evil.example/i.gif?e=x&s=y", nil},
		{"a look-alike host", "https://e-23.adzerk.net.evil.example/i.gif", nil},
		{"credentials trick", "https://e-23.adzerk.net@evil.example/i.gif", nil},
		{"another network", "https://e-24.adzerk.net/i.gif", nil},
		{"Kevel's host over http", "http://e-23.adzerk.net/i.gif", nil},
		{"the fake's host over https", fakeHTTPS + "/i.gif", nil},
		{"no scheme", "//e-23.adzerk.net/i.gif", nil},
		{"javascript", "javascript:alert(1)", nil},
		{"empty", "", nil},
		{"eventMultiplier below 1", b.ad.Tracking.Events[30], &kevel.FireOpts{EventMultiplier: -1}},
		{"eventMultiplier above 1e8", b.ad.Tracking.Events[30], &kevel.FireOpts{EventMultiplier: 100_000_001}},
		{"expired", b.ad.Tracking.ImpressionURL, &kevel.FireOpts{ExpiresAt: b.ad.Tracking.ExpiresAt.Add(-kevel.DecisionTTL)}},
		{"query over 1024 characters", b.ad.Tracking.ImpressionURL + "&pad=" + strings.Repeat("x", 1024), &kevel.FireOpts{NoRedirect: true}},
	} {
		require.ErrorIs(t, b.firer.FireWith(tt.url, tt.opts), kevel.ErrPixelRefused, tt.description)
		_, err := b.firer.FireClickWith(context.Background(), tt.url, tt.opts)
		require.ErrorIs(t, err, kevel.ErrPixelRefused, tt.description)
	}
	require.NoError(t, b.firer.Stop(context.Background()))
	require.Zero(t, internalHits.Load())
	require.Zero(t, b.fake.Stats().Impressions+b.fake.Stats().Events+b.fake.Stats().BadPixels)
	// The real host is allowed (refused only later, by the network).
	f, err := kevel.NewFirer(kevel.FirerConfig{NetworkID: networkID})
	require.NoError(t, err)
	require.NoError(t, f.Fire("https://E-23.adzerk.net:443/i.gif?e=x&s=y"))
	require.NoError(t, f.Stop(context.Background()))
}

func TestFirerQueueNeverBlocksNorGrows(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // Kevel hangs
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		mu.Lock()
		close(release)
		mu.Unlock()
		srv.Close()
	})
	f, err := kevel.NewFirer(kevel.FirerConfig{NetworkID: networkID, BaseURL: srv.URL, Workers: 1, QueueSize: 4, Metrics: reg})
	require.NoError(t, err)
	require.NoError(t, f.Start(context.Background()))
	var queued, full int
	for i := range 200 {
		switch err := f.Fire(srv.URL + "/i.gif?e=" + strconv.Itoa(i)); {
		case err == nil:
			queued++
		case errors.Is(err, kevel.ErrPixelQueueFull):
			full++
		default:
			t.Fatal(err)
		}
		require.LessOrEqual(t, testutil.ToFloat64(gaugeOf(t, reg, "adshare_kevel_pixel_queue_length")), 4.0)
	}
	require.Equal(t, 200, queued+full)
	require.LessOrEqual(t, queued, 5, "4 waiting and at most 1 taken by the worker")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, f.Stop(ctx), context.DeadlineExceeded, "Stop returns at its deadline")
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP adshare_kevel_pixels_total Pixels by kind (impression, click, event, other) and result (queued, sent, failed, dropped, duplicate, refused).
# TYPE adshare_kevel_pixels_total counter
adshare_kevel_pixels_total{kind="impression",result="dropped"} `+strconv.Itoa(full+queued-1)+`
adshare_kevel_pixels_total{kind="impression",result="failed"} 1
adshare_kevel_pixels_total{kind="impression",result="queued"} `+strconv.Itoa(queued)+`
`), "adshare_kevel_pixels_total"))
	require.ErrorIs(t, f.Fire(srv.URL+"/i.gif?e=late"), kevel.ErrFirerStopped)
}

func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return counterGauge(t, reg, name)
}

func TestFirerLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t, banner[:1])
	resp, err := b.client.Decide(context.Background(), oneSlot("p"))
	require.NoError(t, err)
	imp := resp.Ads["p"][0].Tracking.ImpressionURL

	f, err := kevel.NewFirer(kevel.FirerConfig{NetworkID: networkID, BaseURL: b.fake.URL()})
	require.NoError(t, err)
	require.NoError(t, f.Fire(imp), "pixels fired before Start wait in the queue")
	require.NoError(t, f.Start(context.Background()))
	require.NoError(t, f.Start(context.Background()), "Start twice is harmless")
	require.NoError(t, f.Stop(context.Background()))
	require.NoError(t, f.Stop(context.Background()), "Stop is idempotent")
	require.Equal(t, 1, b.fake.Fires(imp))
	require.ErrorIs(t, f.Start(context.Background()), kevel.ErrFirerStopped)

	g, err := kevel.NewFirer(kevel.FirerConfig{NetworkID: networkID, BaseURL: b.fake.URL()})
	require.NoError(t, err)
	require.NoError(t, g.Stop(context.Background()), "Stop before Start")
	require.ErrorIs(t, g.Fire(imp), kevel.ErrFirerStopped)

	_, err = kevel.NewFirer(kevel.FirerConfig{})
	require.ErrorContains(t, err, "NetworkID is required")
	_, err = kevel.NewFirer(kevel.FirerConfig{NetworkID: 1, BaseURL: "ftp://x"})
	require.ErrorContains(t, err, "BaseURL")
}

func TestTheGuardForgetsAfterItsTTL(t *testing.T) {
	t.Parallel()
	b := setupPixels(t)
	imp := b.ad.Tracking.ImpressionURL
	require.NoError(t, b.firer.Fire(imp))
	require.Eventually(t, func() bool { return b.fake.Fires(imp) == 1 }, 5*time.Second, time.Millisecond)
	b.clock.Advance(kevel.DefaultPixelGuardTTL - time.Second)
	require.ErrorIs(t, b.firer.Fire(imp), kevel.ErrPixelDuplicate)
	b.clock.Advance(time.Second)
	require.NoError(t, b.firer.Fire(imp), "after 24 h Kevel counts nothing anyway")
	require.NoError(t, b.firer.Stop(context.Background()))
	require.Equal(t, 1, b.fake.Fires(imp), "the late fire reached Kevel, which recorded nothing")
	require.Equal(t, 1, b.fake.Stats().ExpiredFires)
}

// TestPixelsAreNeverResentAfterTheyMayHaveReachedKevel drops the
// connection after Kevel read a pixel request, on a reused keep-alive
// connection: net/http would silently re-send a plain GET (the control),
// the Firer never does.
func TestPixelsAreNeverResentAfterTheyMayHaveReachedKevel(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	hits := map[string]int{}
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.RawQuery]++
		bodies = append(bodies, r.Method+" "+strconv.FormatInt(r.ContentLength, 10)+" "+strings.Join(r.TransferEncoding, ","))
		mu.Unlock()
		if strings.HasPrefix(r.URL.RawQuery, "drop") {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	count := func(q string) int {
		mu.Lock()
		defer mu.Unlock()
		return hits[q]
	}

	// Control: a plain client re-sends the GET on a fresh connection.
	plain := &http.Client{Transport: &http.Transport{}}
	resp, err := plain.Get(srv.URL + "/i.gif?warm-plain")
	require.NoError(t, err)
	_ = resp.Body.Close()
	resp, err = plain.Get(srv.URL + "/i.gif?drop-plain")
	if err == nil {
		_ = resp.Body.Close()
	}
	require.Equal(t, 2, count("drop-plain"), "net/http retried the replayable GET")

	reg := prometheus.NewRegistry()
	f, err := kevel.NewFirer(kevel.FirerConfig{NetworkID: networkID, BaseURL: srv.URL, Transport: &http.Transport{}, Workers: 1, Metrics: reg})
	require.NoError(t, err)
	require.NoError(t, f.Start(context.Background()))
	_, err = f.FireClick(context.Background(), srv.URL+"/i.gif?warm-firer")
	require.NoError(t, err)
	_, err = f.FireClick(context.Background(), srv.URL+"/i.gif?drop-firer")
	require.ErrorIs(t, err, kevel.ErrPixelFailed)
	require.NoError(t, f.Fire(srv.URL+"/i.gif?drop-async"))
	require.NoError(t, f.Stop(context.Background()))
	require.Equal(t, 1, count("drop-firer"), "sent once, never again")
	require.Equal(t, 1, count("drop-async"))
	mu.Lock()
	defer mu.Unlock()
	for _, b := range bodies {
		require.Equal(t, "GET 0 ", b, "a plain GET: no body, no chunked encoding")
	}
}

func TestFirerRetriesDialErrorsOnly(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	f, err := kevel.NewFirer(kevel.FirerConfig{NetworkID: networkID, BaseURL: srv.URL, Transport: tr})
	require.NoError(t, err)
	_, err = f.FireClick(context.Background(), srv.URL+"/i.gif?e=1")
	require.NoError(t, err)
	require.Equal(t, int32(2), dials.Load())
	require.Equal(t, int32(1), hits.Load())
}

func TestAPixelThatCouldNotConnectMayBeFiredAgain(t *testing.T) {
	t.Parallel()
	url := down(t) // nothing listens there
	f, err := kevel.NewFirer(kevel.FirerConfig{NetworkID: networkID, BaseURL: url, DialRetries: -1})
	require.NoError(t, err)
	_, err = f.FireClick(context.Background(), url+"/r?e=1")
	require.ErrorIs(t, err, kevel.ErrPixelFailed)
	_, err = f.FireClick(context.Background(), url+"/r?e=1")
	require.ErrorIs(t, err, kevel.ErrPixelFailed, "not ErrPixelDuplicate: nothing reached Kevel")
}

func TestFireClickRefusesUnsafeRedirects(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", r.URL.Query().Get("to"))
		w.WriteHeader(http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	f, err := kevel.NewFirer(kevel.FirerConfig{NetworkID: networkID, BaseURL: srv.URL})
	require.NoError(t, err)
	for i, to := range []string{"javascript:alert(1)", "/relative", "data:text/html,x"} {
		_, err := f.FireClick(context.Background(), srv.URL+"/r?n="+strconv.Itoa(i)+"&to="+to)
		require.ErrorIs(t, err, kevel.ErrPixelFailed, to)
	}
	loc, err := f.FireClick(context.Background(), srv.URL+"/r?to=https://shop.example/x")
	require.NoError(t, err)
	require.Equal(t, "https://shop.example/x", loc)
}
