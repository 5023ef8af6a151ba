package adspace_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/internal/errs"
)

var rulesNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// validDraft returns a draft that passes the default rules at rulesNow.
func validDraft() adspace.ContentDraft {
	return adspace.ContentDraft{
		Format:       "banner",
		Title:        "Fresh coffee, delivered",
		Body:         "Single-origin beans roasted this week.",
		ImageURL:     "https://cdn.example.com/ads/coffee.png",
		Image:        adspace.Image{MimeType: "image/png", Width: 320, Height: 50, Bytes: 20_000},
		ClickURL:     "https://shop.example.com/coffee?utm_source=adshare",
		CallToAction: "Order now",
		Categories:   []string{"Food & Drink"},
		Keywords:     []string{"coffee", "Espresso"},
		Bid:          adspace.Bid{Model: adspace.BidCPM, Micros: 2_000_000},
		// One bid is the least a budget may be.
		DailyBudgetMicros: 10_000_000,
		TotalBudgetMicros: 100_000_000,
		Schedule:          adspace.Schedule{Start: rulesNow, End: rulesNow.Add(30 * 24 * time.Hour)},
	}
}

// requireOnlyField fails unless err is ErrInvalidContent naming exactly field.
func requireOnlyField(tb testing.TB, err error, field string) {
	tb.Helper()
	require.ErrorIs(tb, err, adspace.ErrInvalidContent)
	e := errs.As(err)
	require.NotNil(tb, e)
	require.Contains(tb, e.Fields, field, "fields: %v", e.Fields)
	require.Len(tb, e.Fields, 1, "only the bad field is reported: %v", e.Fields)
}

func TestDefaultRules(t *testing.T) {
	t.Parallel()
	r := adspace.DefaultRules()
	require.Equal(t, []string{"banner", "native"}, r.Formats)
	require.Equal(t, 60, r.MaxTitleLen)
	require.Equal(t, 300, r.MaxBodyLen)
	require.Equal(t, 25, r.MaxCallToActionLen)
	require.Equal(t, 2048, r.MaxURLLen)
	require.Equal(t, []string{"image/gif", "image/jpeg", "image/png", "image/webp"}, r.ImageTypes)
	require.Equal(t, int64(2<<20), r.MaxImageBytes)
	require.Equal(t, 4096, r.MaxImageSide)
	require.Equal(t, adspace.BidRange{Min: 100_000, Max: 100_000_000}, r.CPM)
	require.Equal(t, adspace.BidRange{Min: 10_000, Max: 50_000_000}, r.CPC)
	require.Equal(t, int64(1_000_000_000_000), r.MaxBudgetMicros)
	require.Equal(t, 366*24*time.Hour, r.MaxSchedule)
	require.Equal(t, 20, r.MaxTerms)
	require.Empty(t, r.BannedWords)
}

func TestRulesCheckAcceptsAndNormalises(t *testing.T) {
	t.Parallel()
	d := validDraft()
	d.Format = "  Banner "
	d.Title = "  Fresh\tcoffee,\n\n delivered  "
	d.CallToAction = "<b>Order</b> now"
	d.Keywords = []string{"Espresso", " coffee ", "COFFEE"}
	d.Bid.Model = "CPM"
	d.Image.MimeType = "Image/PNG"
	d.ClickURL = "  https://shop.example.com/coffee  "
	d.Schedule.Start = time.Time{}
	d.Schedule.End = rulesNow.Add(time.Hour).In(time.FixedZone("x", 3600)).Add(999)

	got, err := adspace.Rules{}.Check(d, rulesNow.Add(123))
	require.NoError(t, err)
	require.Equal(t, "banner", got.Format)
	require.Equal(t, "Fresh coffee, delivered", got.Title)
	require.Equal(t, "Order now", got.CallToAction)
	require.Equal(t, []string{"coffee", "espresso"}, got.Keywords)
	require.Equal(t, []string{"food & drink"}, got.Categories)
	require.Equal(t, adspace.BidCPM, got.Bid.Model)
	require.Equal(t, "image/png", got.Image.MimeType)
	require.Equal(t, "https://shop.example.com/coffee", got.ClickURL)
	require.Equal(t, rulesNow, got.Schedule.Start, "a zero start is now, truncated to microseconds")
	require.Equal(t, time.UTC, got.Schedule.End.Location())
	require.True(t, rulesNow.Add(time.Hour).Equal(got.Schedule.End))

	again, err := adspace.Rules{}.Check(got, rulesNow)
	require.NoError(t, err)
	require.Equal(t, got, again, "Check is idempotent")
	require.Equal(t, []string{"Espresso", " coffee ", "COFFEE"}, d.Keywords, "the input is not changed")
}

func TestRulesCheckAcceptsWithoutOptionalFields(t *testing.T) {
	t.Parallel()
	d := validDraft()
	d.Body, d.CallToAction, d.ImageURL, d.Image = "", "", "", adspace.Image{}
	d.Categories, d.Keywords = nil, nil
	d.DailyBudgetMicros = 0
	d.Schedule = adspace.Schedule{}
	got, err := adspace.DefaultRules().Check(d, rulesNow)
	require.NoError(t, err)
	require.Empty(t, got.Keywords)
	require.True(t, got.Schedule.End.IsZero(), "a zero end runs until stopped")
}

func TestRulesCheckRejectsEachBadField(t *testing.T) {
	t.Parallel()
	terms := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "term" + strings.Repeat("x", i)
		}
		return out
	}
	tests := []struct {
		description string
		mutate      func(*adspace.ContentDraft)
		field       string
	}{
		{"format missing", func(d *adspace.ContentDraft) { d.Format = " " }, "format"},
		{"format unknown", func(d *adspace.ContentDraft) { d.Format = "video" }, "format"},

		{"title missing", func(d *adspace.ContentDraft) { d.Title = "" }, "title"},
		{"title only whitespace", func(d *adspace.ContentDraft) { d.Title = " \t\n " }, "title"},
		{"title only markup", func(d *adspace.ContentDraft) { d.Title = "<script>alert(1)</script>" }, "title"},
		{"title one too long", func(d *adspace.ContentDraft) { d.Title = strings.Repeat("é", 61) }, "title"},
		{"title invalid UTF-8", func(d *adspace.ContentDraft) { d.Title = "caf\xe9" }, "title"},
		{"title NUL", func(d *adspace.ContentDraft) { d.Title = "a\x00b" }, "title"},
		{"title escape", func(d *adspace.ContentDraft) { d.Title = "a\x1b[31mb" }, "title"},
		{"title bidi override", func(d *adspace.ContentDraft) { d.Title = "Pay \u202egnp.exe" }, "title"},
		{"title bidi isolate", func(d *adspace.ContentDraft) { d.Title = "Pay \u2067x\u2069" }, "title"},
		{"title bidi override as entity", func(d *adspace.ContentDraft) { d.Title = "Pay &#x202E;gnp.exe" }, "title"},
		{"title zero-width space", func(d *adspace.ContentDraft) { d.Title = "fr\u200bee" }, "title"},
		{"title BOM", func(d *adspace.ContentDraft) { d.Title = "\ufeffHello" }, "title"},
		{"title private use", func(d *adspace.ContentDraft) { d.Title = "Logo \uf8ff" }, "title"},
		{"title endlessly encoded", func(d *adspace.ContentDraft) {
			d.Title = "&" + strings.Repeat("amp;", 10) + "lt;b&gt;x"
		}, "title"},

		{"body one too long", func(d *adspace.ContentDraft) { d.Body = strings.Repeat("a", 301) }, "body"},
		{"body too long after entity decoding", func(d *adspace.ContentDraft) { d.Body = strings.Repeat("&amp;", 301) }, "body"},
		{"body control char", func(d *adspace.ContentDraft) { d.Body = "x\x07y" }, "body"},
		{"body invalid UTF-8", func(d *adspace.ContentDraft) { d.Body = "\xff" }, "body"},

		{"cta one too long", func(d *adspace.ContentDraft) { d.CallToAction = strings.Repeat("b", 26) }, "call_to_action"},
		{"cta bidi", func(d *adspace.ContentDraft) { d.CallToAction = "\u202dGo" }, "call_to_action"},

		{"click url missing", func(d *adspace.ContentDraft) { d.ClickURL = "  " }, "click_url"},
		{"click url http", func(d *adspace.ContentDraft) { d.ClickURL = "http://shop.example.com/" }, "click_url"},
		{"image url http", func(d *adspace.ContentDraft) { d.ImageURL = "http://cdn.example.com/a.png" }, "image_url"},
		{"image described without url", func(d *adspace.ContentDraft) { d.ImageURL = "" }, "image_url"},

		{"image type missing", func(d *adspace.ContentDraft) { d.Image.MimeType = "" }, "image/mime_type"},
		{"image type svg", func(d *adspace.ContentDraft) { d.Image.MimeType = "image/svg+xml" }, "image/mime_type"},
		{"image type with parameters", func(d *adspace.ContentDraft) { d.Image.MimeType = "image/png; x=y" }, "image/mime_type"},
		{"image width zero", func(d *adspace.ContentDraft) { d.Image.Width = 0 }, "image/width"},
		{"image width negative", func(d *adspace.ContentDraft) { d.Image.Width = -1 }, "image/width"},
		{"image width one too many", func(d *adspace.ContentDraft) { d.Image.Width = 4097 }, "image/width"},
		{"image height zero", func(d *adspace.ContentDraft) { d.Image.Height = 0 }, "image/height"},
		{"image height one too many", func(d *adspace.ContentDraft) { d.Image.Height = 4097 }, "image/height"},
		{"image bytes zero", func(d *adspace.ContentDraft) { d.Image.Bytes = 0 }, "image/bytes"},
		{"image bytes one too many", func(d *adspace.ContentDraft) { d.Image.Bytes = 2<<20 + 1 }, "image/bytes"},

		{"too many categories", func(d *adspace.ContentDraft) { d.Categories = terms(21) }, "categories"},
		{"empty category", func(d *adspace.ContentDraft) { d.Categories = []string{"ok", ""} }, "categories"},
		{"category too long", func(d *adspace.ContentDraft) { d.Categories = []string{strings.Repeat("c", adspace.MaxTermLen+1)} }, "categories"},
		{"category invalid UTF-8", func(d *adspace.ContentDraft) { d.Categories = []string{"\xc3"} }, "categories"},
		{"too many keywords", func(d *adspace.ContentDraft) { d.Keywords = terms(21) }, "keywords"},
		{"keyword control char", func(d *adspace.ContentDraft) { d.Keywords = []string{"a\x01"} }, "keywords"},

		{"bid model missing", func(d *adspace.ContentDraft) { d.Bid.Model = "" }, "bid/model"},
		{"bid model unknown", func(d *adspace.ContentDraft) { d.Bid.Model = "cpa" }, "bid/model"},
		{"cpm bid one below", func(d *adspace.ContentDraft) { d.Bid.Micros = 99_999 }, "bid/micros"},
		{"cpm bid one above", func(d *adspace.ContentDraft) { d.Bid.Micros = 100_000_001 }, "bid/micros"},
		{"bid zero", func(d *adspace.ContentDraft) { d.Bid.Micros = 0 }, "bid/micros"},
		{"bid negative", func(d *adspace.ContentDraft) { d.Bid.Micros = -1 }, "bid/micros"},
		{"cpc bid one below", func(d *adspace.ContentDraft) { d.Bid = adspace.Bid{Model: adspace.BidCPC, Micros: 9_999} }, "bid/micros"},
		{"cpc bid one above", func(d *adspace.ContentDraft) { d.Bid = adspace.Bid{Model: adspace.BidCPC, Micros: 50_000_001} }, "bid/micros"},

		{"total budget missing", func(d *adspace.ContentDraft) { d.TotalBudgetMicros, d.DailyBudgetMicros = 0, 0 }, "total_budget_micros"},
		{"total budget negative", func(d *adspace.ContentDraft) { d.TotalBudgetMicros, d.DailyBudgetMicros = -5, 0 }, "total_budget_micros"},
		{"total budget below one bid", func(d *adspace.ContentDraft) { d.TotalBudgetMicros, d.DailyBudgetMicros = 1_999_999, 0 }, "total_budget_micros"},
		{"total budget one above the max", func(d *adspace.ContentDraft) { d.TotalBudgetMicros = 1_000_000_000_001 }, "total_budget_micros"},
		{"daily budget negative", func(d *adspace.ContentDraft) { d.DailyBudgetMicros = -1 }, "daily_budget_micros"},
		{"daily budget below one bid", func(d *adspace.ContentDraft) { d.DailyBudgetMicros = 1_999_999 }, "daily_budget_micros"},
		{"daily budget above the total", func(d *adspace.ContentDraft) { d.DailyBudgetMicros = 100_000_001 }, "daily_budget_micros"},

		{"start more than a day ago", func(d *adspace.ContentDraft) { d.Schedule.Start = rulesNow.Add(-24*time.Hour - time.Microsecond) }, "schedule/start"},
		{"start too far ahead", func(d *adspace.ContentDraft) {
			d.Schedule = adspace.Schedule{Start: rulesNow.Add(367 * 24 * time.Hour)}
		}, "schedule/start"},
		{"end equals start", func(d *adspace.ContentDraft) { d.Schedule.End = d.Schedule.Start }, "schedule/end"},
		{"end before start", func(d *adspace.ContentDraft) { d.Schedule.End = d.Schedule.Start.Add(-time.Hour) }, "schedule/end"},
		{"end already past", func(d *adspace.ContentDraft) {
			d.Schedule = adspace.Schedule{Start: rulesNow.Add(-2 * time.Hour), End: rulesNow.Add(-time.Hour)}
		}, "schedule/end"},
		{"span one over the max", func(d *adspace.ContentDraft) {
			d.Schedule.End = d.Schedule.Start.Add(366*24*time.Hour + time.Microsecond)
		}, "schedule/end"},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			d := validDraft()
			tt.mutate(&d)
			got, err := adspace.DefaultRules().Check(d, rulesNow)
			requireOnlyField(t, err, tt.field)
			require.Zero(t, got)
		})
	}
}

func TestRulesCheckAcceptsBoundaries(t *testing.T) {
	t.Parallel()
	terms := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "term" + strings.Repeat("x", i)
		}
		return out
	}
	longURL := "https://shop.example.com/?q="
	longURL += strings.Repeat("a", 2048-len(longURL))
	tests := []struct {
		description string
		mutate      func(*adspace.ContentDraft)
	}{
		{"title of 60 characters", func(d *adspace.ContentDraft) { d.Title = strings.Repeat("é", 60) }},
		{"title of 60 after collapsing", func(d *adspace.ContentDraft) { d.Title = strings.Repeat("a ", 30) + "     " }},
		{"title with emoji joiners", func(d *adspace.ContentDraft) { d.Title = "Family 👨\u200d👩\u200d👧" }},
		{"title in Persian with ZWNJ", func(d *adspace.ContentDraft) { d.Title = "می\u200cخواهم" }},
		{"body of 300 characters", func(d *adspace.ContentDraft) { d.Body = strings.Repeat("z", 300) }},
		{"call to action of 25", func(d *adspace.ContentDraft) { d.CallToAction = strings.Repeat("c", 25) }},
		{"native format", func(d *adspace.ContentDraft) { d.Format = "native" }},
		{"url of 2048 bytes", func(d *adspace.ContentDraft) { d.ClickURL = longURL }},
		{"image of 1 pixel", func(d *adspace.ContentDraft) { d.Image.Width, d.Image.Height = 1, 1 }},
		{"image of 4096 pixels", func(d *adspace.ContentDraft) { d.Image.Width, d.Image.Height = 4096, 4096 }},
		{"image of 2 MiB", func(d *adspace.ContentDraft) { d.Image.Bytes = 2 << 20 }},
		{"image of 1 byte", func(d *adspace.ContentDraft) { d.Image.Bytes = 1 }},
		{"every image type", func(d *adspace.ContentDraft) { d.Image.MimeType = "image/webp" }},
		{"20 categories and keywords", func(d *adspace.ContentDraft) { d.Categories, d.Keywords = terms(20), terms(20) }},
		{"cpm bid at the floor", func(d *adspace.ContentDraft) { d.Bid.Micros = 100_000 }},
		{"cpm bid at the ceiling", func(d *adspace.ContentDraft) {
			d.Bid.Micros, d.DailyBudgetMicros, d.TotalBudgetMicros = 100_000_000, 0, 100_000_000
		}},
		{"cpc bid at the floor", func(d *adspace.ContentDraft) { d.Bid = adspace.Bid{Model: adspace.BidCPC, Micros: 10_000} }},
		{"cpc bid at the ceiling", func(d *adspace.ContentDraft) {
			d.Bid, d.DailyBudgetMicros = adspace.Bid{Model: "cpc", Micros: 50_000_000}, 50_000_000
		}},
		{"total of exactly one bid", func(d *adspace.ContentDraft) { d.TotalBudgetMicros, d.DailyBudgetMicros = 2_000_000, 0 }},
		{"daily of exactly one bid", func(d *adspace.ContentDraft) { d.DailyBudgetMicros = 2_000_000 }},
		{"daily equal to total", func(d *adspace.ContentDraft) { d.DailyBudgetMicros = d.TotalBudgetMicros }},
		{"total at the max", func(d *adspace.ContentDraft) { d.TotalBudgetMicros = 1_000_000_000_000 }},
		{"start exactly a day ago", func(d *adspace.ContentDraft) { d.Schedule.Start = rulesNow.Add(-24 * time.Hour) }},
		{"start in the future", func(d *adspace.ContentDraft) {
			d.Schedule = adspace.Schedule{Start: rulesNow.Add(24 * time.Hour), End: rulesNow.Add(48 * time.Hour)}
		}},
		{"span of exactly 366 days", func(d *adspace.ContentDraft) { d.Schedule.End = d.Schedule.Start.Add(366 * 24 * time.Hour) }},
		{"open-ended schedule", func(d *adspace.ContentDraft) { d.Schedule.End = time.Time{} }},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			d := validDraft()
			tt.mutate(&d)
			_, err := adspace.DefaultRules().Check(d, rulesNow)
			require.NoError(t, err)
		})
	}
}

func TestRulesCheckReportsEveryBadField(t *testing.T) {
	t.Parallel()
	_, err := adspace.Rules{}.Check(adspace.ContentDraft{}, rulesNow)
	require.ErrorIs(t, err, adspace.ErrInvalidContent)
	fields := errs.As(err).Fields
	for _, f := range []string{"format", "title", "click_url", "bid/model", "total_budget_micros"} {
		require.Contains(t, fields, f)
	}
}

func TestRulesCheckRefusesUnsafeURLs(t *testing.T) {
	t.Parallel()
	attacks := []struct {
		description string
		url         string
	}{
		{"javascript", "javascript:alert(1)"},
		{"javascript mixed case", "JaVaScRiPt:alert(document.cookie)"},
		{"javascript with slashes", "javascript://example.com/%0Aalert(1)"},
		{"data", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="},
		{"vbscript", "vbscript:msgbox(1)"},
		{"file", "file:///etc/passwd"},
		{"http", "http://shop.example.com/"},
		{"ftp", "ftp://files.example.com/"},
		{"protocol-relative", "//shop.example.com/"},
		{"relative", "/coffee"},
		{"no scheme", "shop.example.com/coffee"},
		{"opaque https", "https:shop.example.com"},
		{"backslash host", "https:\\\\shop.example.com"},
		{"backslash authority trick", "https://evil.com\\@shop.example.com/"},
		{"tab inside", "https://shop.exa\tmple.com/"},
		{"newline inside", "https://shop.example.com/\nx"},
		{"bidi override inside", "https://shop.example.com/\u202egnp.exe"},
		{"quote inside", `https://shop.example.com/"onmouseover="x`},
		{"angle bracket inside", "https://shop.example.com/<script>"},
		{"empty host", "https:///coffee"},
		{"credentials", "https://user:pass@shop.example.com/"},
		{"username only", "https://user@shop.example.com/"},
		{"empty userinfo", "https://@shop.example.com/"},
		{"credentials disguising the host", "https://shop.example.com@127.0.0.1/"},
		{"port 8080", "https://shop.example.com:8080/"},
		{"port 80", "https://shop.example.com:80/"},
		{"port 0443", "https://shop.example.com:0443/"},
		{"over-long", "https://shop.example.com/?q=" + strings.Repeat("a", 2048)},
		{"invalid UTF-8", "https://shop.example.com/caf\xe9"},
		{"invalid percent escape", "https://shop.example.com/%zz"},

		{"loopback", "https://127.0.0.1/"},
		{"loopback elsewhere in 127/8", "https://127.255.0.7/"},
		{"loopback with port 443", "https://127.0.0.1:443/"},
		{"decimal loopback", "https://2130706433/"},
		{"octal loopback", "https://0177.0.0.1/"},
		{"hex loopback", "https://0x7f.0.0.1/"},
		{"hex loopback in one", "https://0x7f000001/"},
		{"short loopback", "https://127.1/"},
		{"fullwidth loopback", "https://１２７.０.０.１/"},
		{"ideographic dots loopback", "https://127。0。0。1/"},
		{"numeric last label", "https://shop.example.123/"},
		{"this network", "https://0.0.0.0/"},
		{"zero short", "https://0/"},
		{"private 10/8", "https://10.1.2.3/"},
		{"private 172.16/12", "https://172.31.255.255/"},
		{"private 192.168/16", "https://192.168.1.1/"},
		{"link-local (cloud metadata)", "https://169.254.169.254/latest/meta-data/"},
		{"carrier-grade NAT", "https://100.64.0.1/"},
		{"documentation", "https://192.0.2.1/"},
		{"documentation 2", "https://198.51.100.7/"},
		{"documentation 3", "https://203.0.113.9/"},
		{"benchmarking", "https://198.18.0.1/"},
		{"multicast", "https://224.0.0.1/"},
		{"reserved", "https://240.0.0.1/"},
		{"broadcast", "https://255.255.255.255/"},

		{"IPv6 loopback", "https://[::1]/"},
		{"IPv6 loopback long", "https://[0:0:0:0:0:0:0:1]/"},
		{"IPv6 unspecified", "https://[::]/"},
		{"IPv6 mapped loopback", "https://[::ffff:127.0.0.1]/"},
		{"IPv6 mapped loopback in hex", "https://[::ffff:7f00:1]/"},
		{"IPv6 mapped private", "https://[::ffff:10.0.0.1]/"},
		{"IPv6 mapped metadata", "https://[::ffff:a9fe:a9fe]/"},
		{"IPv6 compatible loopback", "https://[::127.0.0.1]/"},
		{"IPv6 NAT64 loopback", "https://[64:ff9b::127.0.0.1]/"},
		{"IPv6 6to4", "https://[2002:7f00:1::]/"},
		{"IPv6 Teredo", "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/"},
		{"IPv6 ULA", "https://[fd00::1]/"},
		{"IPv6 ULA fc", "https://[fc00::1]/"},
		{"IPv6 link-local", "https://[fe80::1]/"},
		{"IPv6 link-local with zone", "https://[fe80::1%25eth0]/"},
		{"IPv6 site-local", "https://[fec0::1]/"},
		{"IPv6 multicast", "https://[ff02::1]/"},
		{"IPv6 documentation", "https://[2001:db8::1]/"},
		{"IPv6 documentation 3fff", "https://[3fff::1]/"},
		{"IPv6 unbracketed", "https://::1/"},
		{"IPv4 in brackets", "https://[127.0.0.1]/"},

		{"localhost", "https://localhost/"},
		{"localhost upper case", "https://LOCALHOST/"},
		{"localhost with port", "https://localhost:443/"},
		{"localhost trailing dot", "https://localhost./"},
		{"localhost ideographic trailing dot", "https://localhost。/"},
		{"localhost fullwidth", "https://ｌｏｃａｌｈｏｓｔ/"},
		{"subdomain of localhost", "https://app.localhost/"},
		{"mDNS .local", "https://printer.local/"},
		{".internal", "https://metadata.google.internal/"},
		{".lan", "https://router.lan/"},
		{".home.arpa", "https://nas.home.arpa/"},
		{".corp", "https://intranet.corp/"},
		{".localdomain", "https://box.localdomain/"},
		{"reverse DNS", "https://1.0.0.127.in-addr.arpa/"},
		{"single label", "https://intranet/"},
		{"trailing dot", "https://shop.example.com./"},
		{"only dots", "https://./"},
		{"empty label", "https://shop..example.com/"},
		{"underscore", "https://a_b.example.com/"},
		{"percent-encoded host", "https://%6cocalhost/"},
		{"label over 63 bytes", "https://" + strings.Repeat("a", 64) + ".example.com/"},
		{"invalid punycode", "https://xn--a.example.com/"},
	}
	for _, tt := range attacks {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			d := validDraft()
			d.ClickURL = tt.url
			_, err := adspace.DefaultRules().Check(d, rulesNow)
			requireOnlyField(t, err, "click_url")

			d = validDraft()
			d.ImageURL = tt.url
			_, err = adspace.DefaultRules().Check(d, rulesNow)
			requireOnlyField(t, err, "image_url")
		})
	}
}

func TestRulesCheckAcceptsSafeURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"https://shop.example.com/",
		"https://shop.example.com",
		"HTTPS://Shop.Example.COM/Coffee?x=1#top",
		"https://shop.example.com:443/a",
		"https://bücher.de/angebote",
		"https://xn--bcher-kva.de/",
		"https://例え.jp/",
		"https://r3---sn-abc.googlevideo.com/x",
		"https://8.8.8.8/",
		"https://[2606:4700:4700::1111]/",
		"https://shop.example.com/café?q=a%20b",
		"https://my-local.example.com/", // "local" only as a whole label suffix
		"https://localhost.example.com/",
	} {
		t.Run(u, func(t *testing.T) {
			t.Parallel()
			d := validDraft()
			d.ClickURL, d.ImageURL = u, u
			got, err := adspace.DefaultRules().Check(d, rulesNow)
			require.NoError(t, err)
			require.Equal(t, u, got.ClickURL, "the URL is kept as written")
		})
	}
}

func TestRulesCheckMakesPlainText(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"<b>Hi</b><script>alert(1)</script>", "Hi"},
		{"<style>b{color:red}</style>Hello", "Hello"},
		{`<img src=x onerror=alert(1)>Deal`, "Deal"},
		{`<a href="javascript:alert(1)">Click</a> here`, "Click here"},
		{"Buy<br>now", "Buy now"},
		{"&lt;b&gt;Bold&lt;/b&gt; claim", "Bold claim"},
		{"&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;Sale", "Sale"},
		{"Fish &amp; chips", "Fish & chips"},
		{"Fish & chips", "Fish & chips"},
		{"Tom's \"best\" deal", "Tom's \"best\" deal"},
		{"2 < 3 and 5 > 4", "2 < 3 and 5 > 4"},
		{"&copy; 2026 Caf&eacute;", "© 2026 Café"},
		{"Cafe\u0301 decomposed", "Café decomposed"},
		{"  many\u00a0\u2003spaces\r\n here ", "many spaces here"},
		{"<!-- hidden -->Shown", "Shown"},
		{"<p>unclosed <b>tags", "unclosed tags"},
		{"<<b>b>double</b>", "< b>double"}, // "< b" is no tag
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			d := validDraft()
			d.Title, d.Body = tt.in, tt.in
			got, err := adspace.DefaultRules().Check(d, rulesNow)
			require.NoError(t, err)
			require.Equal(t, tt.want, got.Title)
			require.Equal(t, tt.want, got.Body)
			again, err := adspace.DefaultRules().Check(got, rulesNow)
			require.NoError(t, err)
			require.Equal(t, got, again, "plain text stays as it is")
		})
	}
}

func TestRulesCheckBannedWords(t *testing.T) {
	t.Parallel()
	rules := adspace.Rules{BannedWords: []string{"Casino", "free money", "Straße"}}
	tests := []struct {
		description string
		mutate      func(*adspace.ContentDraft)
		field       string // "" when the draft passes
	}{
		{"in the title", func(d *adspace.ContentDraft) { d.Title = "Best casino in town" }, "title"},
		{"upper case", func(d *adspace.ContentDraft) { d.Title = "CASINO night" }, "title"},
		{"fullwidth", func(d *adspace.ContentDraft) { d.Title = "ＣＡＳＩＮＯ night" }, "title"},
		{"next to punctuation", func(d *adspace.ContentDraft) { d.Title = "Visit our casino!" }, "title"},
		{"hidden in markup", func(d *adspace.ContentDraft) { d.Title = "<b>ca</b>sino" }, ""},
		{"a phrase", func(d *adspace.ContentDraft) { d.Body = "Get FREE   money today" }, "body"},
		{"a phrase across a line break", func(d *adspace.ContentDraft) { d.Body = "free\nmoney" }, "body"},
		{"in the call to action", func(d *adspace.ContentDraft) { d.CallToAction = "Play casino" }, "call_to_action"},
		{"as a keyword", func(d *adspace.ContentDraft) { d.Keywords = []string{"coffee", "Casino"} }, "keywords"},
		{"inside a keyword phrase", func(d *adspace.ContentDraft) { d.Keywords = []string{"online casino"} }, "keywords"},
		{"case folding ß", func(d *adspace.ContentDraft) { d.Title = "Hauptstrasse sale" }, ""},
		{"case folding ß whole word", func(d *adspace.ContentDraft) { d.Title = "STRASSE sale" }, "title"},
		{"as a substring", func(d *adspace.ContentDraft) { d.Title = "Casinos and casinoroyale" }, ""},
		{"fullwidth as a substring", func(d *adspace.ContentDraft) { d.Title = "ＣＡＳＩＮＯＳ" }, ""},
		{"half a phrase", func(d *adspace.ContentDraft) { d.Body = "free shipping, money back" }, ""},
		{"categories are not checked", func(d *adspace.ContentDraft) { d.Categories = []string{"casino"} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			t.Parallel()
			d := validDraft()
			tt.mutate(&d)
			_, err := rules.Check(d, rulesNow)
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			requireOnlyField(t, err, tt.field)
		})
	}
}

func TestRulesCheckCustomRules(t *testing.T) {
	t.Parallel()
	rules := adspace.Rules{Formats: []string{"Video"}, MaxTitleLen: 5, MaxTerms: 1000, ImageTypes: []string{"IMAGE/AVIF"}}
	d := validDraft()
	d.Format, d.Title, d.Image.MimeType = "video", "Short", "image/avif"
	_, err := rules.Check(d, rulesNow)
	require.NoError(t, err)

	d.Format = "banner"
	_, err = rules.Check(d, rulesNow)
	requireOnlyField(t, err, "format")

	d = validDraft()
	d.Format, d.Title, d.Image.MimeType = "video", "Longer", "image/avif"
	_, err = rules.Check(d, rulesNow)
	requireOnlyField(t, err, "title")

	d.Title = "Short"
	d.Keywords = make([]string, adspace.MaxTerms+1)
	for i := range d.Keywords {
		d.Keywords[i] = strings.Repeat("k", i+1)
	}
	_, err = rules.Check(d, rulesNow)
	requireOnlyField(t, err, "keywords") // MaxTerms is capped at the package limit
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	base := validDraft()
	fp := adspace.Fingerprint(base)
	require.Len(t, fp, 64)
	require.Regexp(t, "^[0-9a-f]{64}$", fp)
	require.Equal(t, fp, adspace.Fingerprint(base), "stable")
	// A fixed value: a change of the algorithm breaks duplicate detection
	// for content stored before it, so it must be deliberate.
	require.Equal(t, "53b6b9ed0ebc2269ef47b443724c4c075deff34a02201ddbf52818d325c9d0c3", fp)
	require.Equal(t, fp, adspace.Fingerprint(adspace.ContentDraft{
		Title: base.Title, Body: base.Body, ClickURL: base.ClickURL, ImageURL: base.ImageURL,
	}), "only title, body and the URLs count")

	same := base
	same.Title = "  FRESH   coffee,  Delivered "
	same.Body = "single-origin BEANS roasted\nthis week."
	same.ClickURL = "HTTPS://SHOP.Example.com/coffee?utm_source=adshare"
	same.ImageURL = "https://CDN.EXAMPLE.COM/ads/coffee.png"
	same.Bid.Micros++
	same.Keywords = []string{"other"}
	require.Equal(t, fp, adspace.Fingerprint(same), "case, spacing and non-creative fields do not count")

	fullwidth := base
	fullwidth.Title = "Ｆｒｅｓｈ coffee, delivered"
	require.Equal(t, fp, adspace.Fingerprint(fullwidth))

	for name, mutate := range map[string]func(*adspace.ContentDraft){
		"title":            func(d *adspace.ContentDraft) { d.Title += "!" },
		"body":             func(d *adspace.ContentDraft) { d.Body = "" },
		"click path case":  func(d *adspace.ContentDraft) { d.ClickURL = "https://shop.example.com/COFFEE?utm_source=adshare" },
		"image url":        func(d *adspace.ContentDraft) { d.ImageURL = "" },
		"text moved apart": func(d *adspace.ContentDraft) { d.Title, d.Body = d.Title+" "+d.Body, "" },
	} {
		d := base
		mutate(&d)
		require.NotEqual(t, fp, adspace.Fingerprint(d), name)
	}
}
