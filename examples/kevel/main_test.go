package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision/kevel/kevelfake"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/transport/client"
)

// startKevel runs the program against the repo's fake Kevel network,
// configured through the environment only, and returns its base URL and
// the fake.
func startKevel(t *testing.T) (string, *kevelfake.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fake := kevelfake.New(kevelfake.Config{NetworkID: 23, SiteIDs: []int64{1}, Ads: []kevelfake.Ad{
		{AdType: 4, SiteID: 1, Title: "Ride further", ImageURL: "https://cdn.example.com/bike.png", Width: 320, Height: 50,
			Price: "2.50", RateType: 2, ClickThroughURL: "https://bikes.example.com/"},
	}})
	require.NoError(t, fake.Start(ctx))
	env := map[string]string{"KEVEL_NETWORK_ID": "23", "KEVEL_SITE_ID": "1", "KEVEL_BASE_URL": fake.URL(), "ADDR": "127.0.0.1:0",
		"KEVEL_CACHE_TTL": "30s"}
	out := &testenv.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, out) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the server's log:\n%s", out.String())
		}
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("the server did not stop within 20s of cancellation")
		}
		require.NoError(t, fake.Stop(context.Background()))
	})
	var base string
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("the server exited early: %v\n%s", err, out.String())
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			var line struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				base = line.URL
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	return base, fake
}

func metrics(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestKevelDeployment fills a space from the (fake) Kevel network through
// the cache, reports the viewable impression and clicks, all through the
// Go client: Kevel's impression pixel is fired once, the click goes to
// the ad's destination through Kevel's click URL, and a second click on
// the same link still reaches it without firing again.
func TestKevelDeployment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, _ := startKevel(t)
	owner, err := client.New(base, &client.Config{UserAgent: "AdshareApp/1.0 (Android 15)"})
	require.NoError(t, err)
	tokens, err := owner.Register(ctx, client.RegisterRequest{Email: "owner@example.com", Password: "a long enough passphrase"})
	require.NoError(t, err)
	viewer, err := client.New(base, &client.Config{UserAgent: "AdshareApp/1.0 (Android 15)"})
	require.NoError(t, err)
	_, err = viewer.Register(ctx, client.RegisterRequest{Email: "viewer@example.com", Password: "a long enough passphrase"})
	require.NoError(t, err)

	no := false
	fill, err := viewer.Fill(ctx, tokens.User.ID, &client.FillParams{Device: "device-1", GDPRApplies: &no})
	require.NoError(t, err)
	require.Len(t, fill.Ads, 1, "Kevel fills the space")
	ad := fill.Ads[0]
	require.Equal(t, "Ride further", ad.Title)
	require.NotEmpty(t, ad.AdvertiserID, "Kevel's advertiser")
	require.NotContains(t, ad.Tracking.ClickURL, "adzerk", "Kevel's own URLs never reach the app")

	time.Sleep(1100 * time.Millisecond) // viewable: a second on screen
	res, err := viewer.ReportEvents(ctx, []client.EventReport{{Type: client.Impression, Token: ad.Tracking.Token}})
	require.NoError(t, err)
	require.Equal(t, "accepted", res[0].Status)
	require.True(t, res[0].Billable)
	require.Eventually(t, func() bool {
		return strings.Contains(metrics(t, base), `adshare_kevel_pixels_total{kind="impression",result="sent"} 1`)
	}, 5*time.Second, 20*time.Millisecond, "Kevel's impression pixel fired once")

	time.Sleep(600 * time.Millisecond) // a person's click comes a moment after the view
	for i := range 2 {
		target, err := viewer.Click(ctx, ad.Tracking.ClickURL)
		require.NoError(t, err, "click %d", i+1)
		require.Equal(t, "https://bikes.example.com/", target, "click %d goes to the ad's destination", i+1)
	}
	m := metrics(t, base)
	require.Contains(t, m, `adshare_kevel_pixels_total{kind="click",result="sent"} 1`, "Kevel counts the click once")
	require.Contains(t, m, "adshare_decision_cache_upstream_calls_total", "decisions go through the cache")
}

// A missing network id is refused with the variable's name.
func TestKevelNeedsItsNetwork(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), func(k string) string { return map[string]string{"KEVEL_SITE_ID": "1"}[k] }, io.Discard)
	require.ErrorContains(t, err, "KEVEL_NETWORK_ID")
	_, err = parseConfig(func(k string) string {
		return map[string]string{"KEVEL_NETWORK_ID": "1", "KEVEL_SITE_ID": "1", "KEVEL_CACHE_TTL": "soon"}[k]
	})
	require.ErrorContains(t, err, "KEVEL_CACHE_TTL")
	c, err := parseConfig(func(k string) string { return map[string]string{"KEVEL_NETWORK_ID": "23", "KEVEL_SITE_ID": "7"}[k] })
	require.NoError(t, err)
	require.Equal(t, "23/7", strconv.FormatInt(c.network, 10)+"/"+strconv.FormatInt(c.site, 10))
}
