package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres/postgrestest"
	"github.com/adshare/adshare/store/redis"
	"github.com/adshare/adshare/transport/realtime"
)

// screenshotEnv names the file the dashboard test writes its screenshot
// to; unset, it goes to the test's temporary directory.
const screenshotEnv = "ADSHARE_DASHBOARD_SCREENSHOT"

// browser is a headless Chromium tab and what its page wrote to the
// console.
type browser struct {
	ctx     context.Context
	mu      sync.Mutex
	console []string
}

// newBrowser starts Debian's headless Chromium (no browser download) and
// opens a tab; the test fails, saying what to install, when there is none.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("the dashboard test drives a headless Chromium and found none on PATH: install Debian's package (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1180, 860), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	return openTab(t, actx)
}

// openTab opens another tab in the browser of parent (an allocator's
// context, or another tab's).
func openTab(t *testing.T, parent context.Context) *browser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	b := &browser{ctx: ctx}
	messages := chromedp.Console(ctx) // subscribes now (and starts the browser)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m.String())
			b.mu.Unlock()
		}
	}()
	return b
}

func (b *browser) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(b.ctx, steps...), "console:\n%s", b.consoleText())
}

func (b *browser) consoleText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.console, "\n")
}

// text is the text of the element with the id.
func (b *browser) text(t *testing.T, id string) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.TextContent(chromedp.ID(id)))
	require.NoError(t, err, "console:\n%s", b.consoleText())
	return s
}

// waitJS waits until the JavaScript expression is true in the page.
func (b *browser) waitJS(t *testing.T, what, expr string) {
	t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "waiting for %s; console:\n%s", what, b.consoleText())
}

// signIn opens the dashboard and signs in; the page is live once the
// socket was welcomed.
func (b *browser) signIn(t *testing.T, base, email string) {
	t.Helper()
	b.do(t,
		chromedp.Navigate(base+"/dashboard/"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), "a long enough passphrase"),
		chromedp.Click(chromedp.ID("signin-button")),
		chromedp.WaitVisible(chromedp.ID("space-panel")),
	)
	b.waitJS(t, "the live channel", `document.getElementById('live-status').textContent === 'live'`)
}

// TestDashboardPage signs an owner and an admin in to the dashboard page
// in headless Chromium, on the example server over PostgreSQL and Redis:
// the owner sees the figures of the reports, then sees them grow as
// impressions are reported (over the WebSocket: the page does not poll
// them); the admin sees the moderation queue and an alert broadcast by
// another instance. It leaves a screenshot of the admin's page.
func TestDashboardPage(t *testing.T) {
	t.Parallel()
	redisURL, prefix := testenv.Redis(t)
	env := merge(fleetKeyEnv(), map[string]string{
		"DATABASE_URL": postgrestest.URL(t), "REDIS_URL": redisURL, "ADSHARE_REDIS_PREFIX": prefix,
		"ADSHARE_DATA_KEYS": "", "ADSHARE_DATA_INDEX_KEY": "", "ADSHARE_CLIENT_RATE": "60000",
	})
	base, _ := startServer(t, env, "-migrate-on-start")
	ctx := context.Background()

	// The page and its script come with a policy that allows only them.
	resp, err := http.Get(base + "/dashboard/dashboard.js")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "javascript")
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	require.NotContains(t, resp.Header.Get("Content-Security-Policy"), "unsafe-inline")

	const pw = `"password":"a long enough passphrase"`
	users := map[string]uuid.UUID{}
	for _, email := range []string{"owner@example.com", "admin@example.com", "adv@example.com"} {
		u := postJSON(t, base+"/auth/register", "", `{"email":"`+email+`",`+pw+`}`, http.StatusCreated)
		users[email] = uuid.MustParse(u["user"].(map[string]any)["id"].(string))
	}
	for email, role := range map[string]string{"admin@example.com": "admin", "adv@example.com": "advertiser"} {
		var out bytes.Buffer
		require.NoError(t, run(ctx, []string{"server", "users", "set-role", email, role}, func(k string) string { return env[k] }, &out))
	}
	adv := postJSON(t, base+"/auth/login", "", `{"email":"adv@example.com",`+pw+`}`, http.StatusOK)["access_token"].(string)
	postJSON(t, base+"/ad-space/content", adv, `{"format":"banner","title":"Fresh beans","body":"Roasted weekly.",
		"click_url":"https://shop.example.com/beans","bid":{"model":"cpm","micros":2000000},"total_budget_micros":1000000000,"submit":true}`, http.StatusCreated)

	// Two impressions before the owner signs in: the reports have them.
	sealer := newImpressionSealer(t, env["ADSHARE_TRACKING_KEYS"])
	impress := func(owner uuid.UUID, n int) {
		t.Helper()
		tokens := make([]string, n)
		for i := range tokens {
			tokens[i] = sealer.seal(t, owner)
		}
		res, err := postImpressions(http.DefaultClient, base, tokens)
		require.NoError(t, err)
		for _, r := range res {
			require.Equal(t, "accepted", r.Status)
			require.True(t, r.Valid)
		}
	}
	owner := users["owner@example.com"]
	impress(owner, 2)
	ownerToken := postJSON(t, base+"/auth/login", "", `{"email":"owner@example.com",`+pw+`}`, http.StatusOK)["access_token"].(string)
	require.Eventually(t, func() bool {
		_, body := getWithToken(t, base+"/analytics/performance", ownerToken)
		return strings.Contains(body, `"totals":{`) && strings.Contains(body, `"impressions":2,`)
	}, 10*time.Second, 50*time.Millisecond, "the report counts the first impressions")

	page := newBrowser(t)
	page.signIn(t, base, "owner@example.com")
	require.Equal(t, "2", page.text(t, "impressions"), "the figures of the report")
	require.Equal(t, "2", page.text(t, "valid-impressions"))
	before := page.text(t, "earnings")
	require.NotEqual(t, "0.0000", before, "two billable impressions earned something")
	require.True(t, page.isHidden(t, "queue-panel"), "an owner has no moderation queue")

	impress(owner, 3)
	page.waitJS(t, "the live figures", `document.getElementById('impressions').textContent === '5'`)
	require.Equal(t, "5", page.text(t, "valid-impressions"))
	require.NotEqual(t, before, page.text(t, "earnings"), "earnings grow with the impressions")
	require.Contains(t, page.text(t, "last-update"), "Last live update")

	// The admin, in another tab: the queue over REST, alerts live.
	admin := openTab(t, page.ctx)
	admin.signIn(t, base, "admin@example.com")
	admin.waitJS(t, "the moderation queue", `document.querySelectorAll('#queue tr.queue-item').length === 1`)
	require.Contains(t, admin.text(t, "queue"), "Fresh beans")
	require.Contains(t, admin.text(t, "queue"), "cpm 2.0000")

	rc, err := redis.Open(ctx, redisURL, &redis.Config{Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Stop(context.WithoutCancel(ctx)) })
	pub := realtime.NewPublisher(rc.Shared(nil).RealtimeBroker(), nil)
	const notice = "Maintenance window at 02:00 UTC: payouts pause for ten minutes."
	require.NoError(t, pub.Broadcast(ctx, "maintenance", notice))
	admin.waitJS(t, "the alert", `document.getElementById('alerts').textContent.includes('Maintenance window')`)
	require.Contains(t, admin.text(t, "alerts"), "maintenance")
	page.waitJS(t, "the alert on the owner's page", `document.getElementById('alerts').textContent.includes('Maintenance window')`)

	impress(users["admin@example.com"], 12)
	admin.waitJS(t, "the admin's live figures", `document.getElementById('impressions').textContent === '12'`)

	shot, err := chromedp.Run(admin.ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(shot))
	require.NoError(t, err, "the screenshot is a PNG")
	require.Greater(t, img.Bounds().Dx(), 800)
	out := os.Getenv(screenshotEnv)
	if out == "" {
		out = filepath.Join(t.TempDir(), "dashboard.png")
	}
	require.NoError(t, os.WriteFile(out, shot, 0o644))
	t.Logf("screenshot: %s (%d bytes)", out, len(shot))

	for _, c := range []*browser{page, admin} {
		require.NotContains(t, c.consoleText(), "Content Security Policy", "the page keeps to its policy")
		require.NotContains(t, strings.ToLower(c.consoleText()), "uncaught", "no script error")
	}
}

// isHidden reports whether the element with the id is hidden.
func (b *browser) isHidden(t *testing.T, id string) bool {
	t.Helper()
	hidden, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](fmt.Sprintf("document.getElementById(%q).hidden", id)))
	require.NoError(t, err)
	return hidden
}
