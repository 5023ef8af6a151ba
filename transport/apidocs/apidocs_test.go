package apidocs_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/transport"
	"github.com/adshare/adshare/transport/apidocs"
)

// serve runs the API handler (the routes every configuration has, /docs
// among them), mounted under prefix, and returns its base URL.
func serve(t *testing.T, prefix string) string {
	t.Helper()
	h, err := transport.New(transport.Config{})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", http.StripPrefix(prefix, h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + prefix
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

// The page and its files are served from the API itself with the
// reference's own policy; the renderer ships with its licence; nothing
// else is served under /docs/.
func TestDocsServed(t *testing.T) {
	t.Parallel()
	base := serve(t, "")
	resp, page := get(t, base+"/docs")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, apidocs.CSP, resp.Header.Get("Content-Security-Policy"))
	require.Contains(t, page, `<redoc spec-url="openapi.json"`)
	require.Contains(t, page, `<script src="docs/redoc.standalone.js">`)
	require.NotContains(t, page, "https://", "nothing from another origin")
	require.NotContains(t, apidocs.CSP, "script-src 'self' 'unsafe-inline'", "no inline scripts")

	resp, js := get(t, base+"/docs/redoc.standalone.js")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/javascript; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Greater(t, len(js), 500_000, "the whole bundle")
	require.True(t, strings.HasPrefix(js, "/*! For license information please see redoc.standalone.js.LICENSE.txt */"))
	resp, notices := get(t, base+"/docs/redoc.standalone.js.LICENSE.txt")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, notices, `Version: "`+apidocs.RedocVersion+`"`)
	resp, lic := get(t, base+"/docs/redoc.LICENSE")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, lic, "The MIT License")
	require.Contains(t, lic, "Rebilly")

	resp, body := get(t, base+"/docs/passwd")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	require.Contains(t, body, `"code":"route_not_found"`)
}

// TestDocsRenderInChromium opens /docs in headless Chromium, with the API
// mounted under a prefix as a host would, and waits for Redoc to render
// the document's operations; the page's policy must not block it.
func TestDocsRenderInChromium(t *testing.T) {
	t.Parallel()
	base := serve(t, "/adshare")
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("the docs test drives a headless Chromium and found none on PATH: install Debian's package (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()
	var mu sync.Mutex
	var console []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			console = append(console, m.String())
			mu.Unlock()
		}
	}()
	logs := func() string { mu.Lock(); defer mu.Unlock(); return strings.Join(console, "\n") }

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/docs")), "console:\n%s", logs())
	// Operation summaries appear in the menu and the middle panel once the
	// document is loaded and rendered.
	for _, summary := range []string{"Create an account with email and password, and sign in.", "Report viewable impressions, clicks and conversions."} {
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](
			`document.body.innerText.includes(`+jsString(summary)+`)`,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(45*time.Second)))
		require.NoError(t, err, "waiting for %q in the rendered page; console:\n%s", summary, logs())
	}
	title, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('h1') ? document.querySelector('h1').innerText : ''`))
	require.NoError(t, err)
	require.Contains(t, title, "adshare API", "the document's title heads the page")
	// The policy blocks nothing the page needs. Redoc's sidebar credit
	// links an image on Redocly's CDN: that one is blocked, by design (no
	// other origin), and the credit shows its text instead.
	for _, line := range strings.Split(logs(), "\n") {
		if strings.Contains(line, "Content Security Policy") && !strings.Contains(line, "https://cdn.redoc.ly/redoc/logo-mini.svg") {
			t.Errorf("the page's policy blocked something: %s", line)
		}
	}
}

// jsString quotes s as a JavaScript string literal (no quotes or
// backslashes in the summaries looked for).
func jsString(s string) string { return "'" + s + "'" }
