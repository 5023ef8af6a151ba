package adspace

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/idna"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/adshare/adshare/internal/errs"
)

// ContentDraft is what an advertiser submits: the creative and its funding,
// before it becomes Content. Rules.Check validates and normalises it.
type ContentDraft struct {
	// Format is the ad's shape, one of Rules.Formats.
	Format string
	// Title is the headline, plain text; required.
	Title string
	// Body is the ad's text, plain text; optional.
	Body string
	// ImageURL is where the creative's image lives, an https URL; optional.
	ImageURL string
	// Image describes the image at ImageURL; set exactly when ImageURL is.
	Image Image
	// ClickURL is where a click leads, an https URL; required.
	ClickURL string
	// CallToAction is the button text, plain text; optional.
	CallToAction string
	// Categories and Keywords describe the ad for targeting and blocking.
	// Normalised like Settings.Keywords.
	Categories []string
	Keywords   []string
	// Bid is the price offered per thousand impressions or per click.
	Bid Bid
	// DailyBudgetMicros caps a day's spending; 0 means no daily cap.
	DailyBudgetMicros int64
	// TotalBudgetMicros caps all spending; required.
	TotalBudgetMicros int64
	// Schedule bounds when the ad may run; a zero Start means now.
	Schedule Schedule
}

// Defaults of Rules: a zero field of Rules means the default below.
const (
	// DefaultMaxTitleLen is the longest title, in characters (code points).
	DefaultMaxTitleLen = 60
	// DefaultMaxBodyLen is the longest body, in characters.
	DefaultMaxBodyLen = 300
	// DefaultMaxCallToActionLen is the longest call to action, in characters.
	DefaultMaxCallToActionLen = 25
	// DefaultMaxURLLen is the longest click or image URL, in bytes.
	DefaultMaxURLLen = 2048
	// DefaultMaxImageBytes is the largest image file: 2 MiB.
	DefaultMaxImageBytes = 2 << 20
	// DefaultMaxImageSide is the widest and tallest image, in pixels.
	DefaultMaxImageSide = 4096
	// DefaultMinCPMMicros and DefaultMaxCPMMicros bound a CPM bid (0.10 to
	// 100.00 per thousand impressions).
	DefaultMinCPMMicros = 100_000
	DefaultMaxCPMMicros = 100_000_000
	// DefaultMinCPCMicros and DefaultMaxCPCMicros bound a CPC bid (0.01 to
	// 50.00 per click).
	DefaultMinCPCMicros = 10_000
	DefaultMaxCPCMicros = 50_000_000
	// DefaultMaxBudgetMicros bounds the daily and total budgets (one million
	// currency units).
	DefaultMaxBudgetMicros = 1_000_000_000_000
	// DefaultMaxSchedule is the longest schedule: 366 days.
	DefaultMaxSchedule = 366 * 24 * time.Hour
	// DefaultMaxContentTerms is the most categories, and the most keywords,
	// one content may carry.
	DefaultMaxContentTerms = 20
	// MaxSchedulePast is how far in the past a schedule may start: a client
	// whose clock lags, or a draft saved yesterday, still passes.
	MaxSchedulePast = 24 * time.Hour
)

// DefaultContentFormats are the formats content may have by default.
var DefaultContentFormats = []string{"banner", "native"}

// DefaultImageTypes are the image MIME types accepted by default.
var DefaultImageTypes = []string{"image/png", "image/jpeg", "image/webp", "image/gif"}

// BidRange bounds a bid, in micros, both ends included.
type BidRange struct {
	Min, Max int64
}

// Rules say what ad content may contain. The zero value, or any zero field,
// means the documented default, so Rules{} is ready to use. Rules is a value:
// Check never changes it and is safe for concurrent use.
type Rules struct {
	// Formats are the format names content may have. Defaults to
	// DefaultContentFormats ("banner", "native").
	Formats []string
	// BannedWords are words (or phrases of several words) that no title,
	// body, call to action or keyword may contain. They match whole words
	// only, ignoring case, after Unicode NFKC folding, so "ＣＡＳＩＮＯ"
	// matches "casino" but "casinos" does not. Languages written without
	// spaces between words (Chinese, Japanese, Thai) are matched only where
	// the banned word stands alone. Defaults to none.
	BannedWords []string
	// MaxTitleLen is the longest title in characters (code points, after
	// normalisation). Defaults to DefaultMaxTitleLen (60).
	MaxTitleLen int
	// MaxBodyLen is the longest body in characters. Defaults to
	// DefaultMaxBodyLen (300).
	MaxBodyLen int
	// MaxCallToActionLen is the longest call to action in characters.
	// Defaults to DefaultMaxCallToActionLen (25).
	MaxCallToActionLen int
	// MaxURLLen is the longest click or image URL in bytes. Defaults to
	// DefaultMaxURLLen (2048).
	MaxURLLen int
	// ImageTypes are the accepted image MIME types. Defaults to
	// DefaultImageTypes (PNG, JPEG, WebP, GIF).
	ImageTypes []string
	// MaxImageBytes is the largest image file. Defaults to
	// DefaultMaxImageBytes (2 MiB).
	MaxImageBytes int64
	// MaxImageSide is the largest width and height in pixels. Defaults to
	// DefaultMaxImageSide (4096).
	MaxImageSide int
	// CPM bounds a BidCPM bid. A zero end defaults to DefaultMinCPMMicros
	// or DefaultMaxCPMMicros.
	CPM BidRange
	// CPC bounds a BidCPC bid. A zero end defaults to DefaultMinCPCMicros
	// or DefaultMaxCPCMicros.
	CPC BidRange
	// MaxBudgetMicros bounds the daily and total budgets. Defaults to
	// DefaultMaxBudgetMicros.
	MaxBudgetMicros int64
	// MaxSchedule is the longest span from a schedule's start to its end,
	// and the furthest ahead a schedule may start. Defaults to
	// DefaultMaxSchedule (366 days).
	MaxSchedule time.Duration
	// MaxTerms is the most categories, and the most keywords, one content
	// may carry. Defaults to DefaultMaxContentTerms (20); values above
	// MaxTerms (the package constant, 50) are lowered to it.
	MaxTerms int
}

// DefaultRules returns the default rules with every field filled in.
func DefaultRules() Rules { return Rules{}.withDefaults() }

// withDefaults returns r with every zero (or negative) field replaced by
// its default and list entries normalised.
func (r Rules) withDefaults() Rules {
	pos := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	pos64 := func(v, def int64) int64 {
		if v <= 0 {
			return def
		}
		return v
	}
	if len(r.Formats) == 0 {
		r.Formats = DefaultContentFormats
	}
	r.Formats = normalizeList(r.Formats, NormalizeTerm)
	if len(r.ImageTypes) == 0 {
		r.ImageTypes = DefaultImageTypes
	}
	r.ImageTypes = normalizeList(r.ImageTypes, func(s string) string { return strings.ToLower(strings.TrimSpace(s)) })
	r.MaxTitleLen = pos(r.MaxTitleLen, DefaultMaxTitleLen)
	r.MaxBodyLen = pos(r.MaxBodyLen, DefaultMaxBodyLen)
	r.MaxCallToActionLen = pos(r.MaxCallToActionLen, DefaultMaxCallToActionLen)
	r.MaxURLLen = pos(r.MaxURLLen, DefaultMaxURLLen)
	r.MaxImageBytes = pos64(r.MaxImageBytes, DefaultMaxImageBytes)
	r.MaxImageSide = pos(r.MaxImageSide, DefaultMaxImageSide)
	r.CPM.Min = pos64(r.CPM.Min, DefaultMinCPMMicros)
	r.CPM.Max = pos64(r.CPM.Max, DefaultMaxCPMMicros)
	r.CPC.Min = pos64(r.CPC.Min, DefaultMinCPCMicros)
	r.CPC.Max = pos64(r.CPC.Max, DefaultMaxCPCMicros)
	r.MaxBudgetMicros = pos64(r.MaxBudgetMicros, DefaultMaxBudgetMicros)
	if r.MaxSchedule <= 0 {
		r.MaxSchedule = DefaultMaxSchedule
	}
	r.MaxTerms = min(pos(r.MaxTerms, DefaultMaxContentTerms), MaxTerms)
	return r
}

func normalizeList(in []string, f func(string) string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = f(s); s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Check validates d against the rules at time now and returns it
// normalised, or an error matching ErrInvalidContent whose Fields hold one
// message per bad field, keyed by JSON name ("title", "image/width",
// "bid/micros", "schedule/end", ...).
//
// Normalisation: title, body and call to action become plain text (every
// HTML tag stripped, the content of script and style elements dropped,
// entities decoded, Unicode NFC, runs of whitespace collapsed to one
// space); format, categories and keywords are normalised like
// Settings.Keywords; the bid model and image type are lower-cased; URLs are
// trimmed; a zero schedule start becomes now; times are UTC, truncated to
// microseconds. Check is idempotent: checking its output returns the same
// draft.
func (r Rules) Check(d ContentDraft, now time.Time) (ContentDraft, error) {
	r = r.withDefaults()
	now = now.UTC().Truncate(time.Microsecond)
	var fields errs.Fields
	banned := foldPhrases(r.BannedWords)

	d.Format = NormalizeTerm(d.Format)
	switch {
	case d.Format == "":
		fields.Add("format", "is required")
	case !slices.Contains(r.Formats, d.Format):
		fields.Add("format", "must be one of "+strings.Join(r.Formats, ", "))
	}

	text := func(field string, s *string, maxLen int, required bool) {
		clean, err := plainText(*s)
		if err != nil {
			fields.Add(field, err.Error())
			return
		}
		*s = clean
		switch n := utf8.RuneCountInString(clean); {
		case n == 0 && required:
			fields.Add(field, "is required")
		case n > maxLen:
			fields.Add(field, fmt.Sprintf("must be at most %d characters", maxLen))
		}
		if w, ok := containsBanned(clean, banned); ok {
			fields.Add(field, fmt.Sprintf("must not contain the word %q", w))
		}
	}
	text("title", &d.Title, r.MaxTitleLen, true)
	text("body", &d.Body, r.MaxBodyLen, false)
	text("call_to_action", &d.CallToAction, r.MaxCallToActionLen, false)

	d.ClickURL = strings.TrimSpace(d.ClickURL)
	if d.ClickURL == "" {
		fields.Add("click_url", "is required")
	} else if err := r.checkURL(d.ClickURL); err != nil {
		fields.Add("click_url", err.Error())
	}

	d.ImageURL = strings.TrimSpace(d.ImageURL)
	d.Image.MimeType = strings.ToLower(strings.TrimSpace(d.Image.MimeType))
	if d.ImageURL == "" {
		if d.Image != (Image{}) {
			fields.Add("image_url", "is required when the image is described")
		}
	} else {
		if err := r.checkURL(d.ImageURL); err != nil {
			fields.Add("image_url", err.Error())
		}
		if !slices.Contains(r.ImageTypes, d.Image.MimeType) {
			fields.Add("image/mime_type", "must be one of "+strings.Join(r.ImageTypes, ", "))
		}
		side := fmt.Sprintf("must be between 1 and %d pixels", r.MaxImageSide)
		fields.Check(d.Image.Width >= 1 && d.Image.Width <= r.MaxImageSide, "image/width", side)
		fields.Check(d.Image.Height >= 1 && d.Image.Height <= r.MaxImageSide, "image/height", side)
		fields.Check(d.Image.Bytes >= 1 && d.Image.Bytes <= r.MaxImageBytes, "image/bytes",
			fmt.Sprintf("must be between 1 and %d bytes", r.MaxImageBytes))
	}

	terms := func(field string, list *[]string) {
		if len(*list) > r.MaxTerms {
			fields.Add(field, fmt.Sprintf("must hold at most %d entries", r.MaxTerms))
			return
		}
		out, err := normalizeTerms(*list)
		if err != nil {
			fields.Add(field, err.Error())
			return
		}
		*list = out
	}
	terms("categories", &d.Categories)
	terms("keywords", &d.Keywords)
	if _, bad := fields["keywords"]; !bad {
		for _, k := range d.Keywords {
			if w, ok := containsBanned(k, banned); ok {
				fields.Add("keywords", fmt.Sprintf("must not contain the word %q", w))
				break
			}
		}
	}

	d.Bid.Model = BidModel(strings.ToLower(strings.TrimSpace(string(d.Bid.Model))))
	var bids BidRange
	switch d.Bid.Model {
	case BidCPM:
		bids = r.CPM
	case BidCPC:
		bids = r.CPC
	default:
		fields.Add("bid/model", "must be cpm or cpc")
	}
	bidOK := bids != (BidRange{}) && d.Bid.Micros >= bids.Min && d.Bid.Micros <= bids.Max
	if bids != (BidRange{}) && !bidOK {
		fields.Add("bid/micros", fmt.Sprintf("must be between %d and %d for %s", bids.Min, bids.Max, d.Bid.Model))
	}

	switch {
	case d.TotalBudgetMicros <= 0:
		fields.Add("total_budget_micros", "is required")
	case d.TotalBudgetMicros > r.MaxBudgetMicros:
		fields.Add("total_budget_micros", fmt.Sprintf("must be at most %d", r.MaxBudgetMicros))
	case bidOK && d.TotalBudgetMicros < d.Bid.Micros:
		fields.Add("total_budget_micros", "must be at least one bid")
	}
	switch {
	case d.DailyBudgetMicros == 0: // no daily cap
	case d.DailyBudgetMicros < 0:
		fields.Add("daily_budget_micros", "must be 0 (no daily cap) or positive")
	case d.DailyBudgetMicros > r.MaxBudgetMicros:
		fields.Add("daily_budget_micros", fmt.Sprintf("must be at most %d", r.MaxBudgetMicros))
	case bidOK && d.DailyBudgetMicros < d.Bid.Micros:
		fields.Add("daily_budget_micros", "must be 0 (no daily cap) or at least one bid")
	case d.TotalBudgetMicros > 0 && d.DailyBudgetMicros > d.TotalBudgetMicros:
		fields.Add("daily_budget_micros", "must not exceed the total budget")
	}

	s := &d.Schedule
	if s.Start.IsZero() {
		s.Start = now
	}
	s.Start = s.Start.UTC().Truncate(time.Microsecond)
	switch {
	case s.Start.Before(now.Add(-MaxSchedulePast)):
		fields.Add("schedule/start", "must not be more than a day in the past")
	case s.Start.After(now.Add(r.MaxSchedule)):
		fields.Add("schedule/start", fmt.Sprintf("must be within %d days from now", int(r.MaxSchedule/(24*time.Hour))))
	}
	if !s.End.IsZero() {
		s.End = s.End.UTC().Truncate(time.Microsecond)
		switch {
		case !s.End.After(s.Start):
			fields.Add("schedule/end", "must be after the start")
		case !s.End.After(now):
			fields.Add("schedule/end", "must be in the future")
		case s.End.Sub(s.Start) > r.MaxSchedule:
			fields.Add("schedule/end", fmt.Sprintf("must be at most %d days after the start", int(r.MaxSchedule/(24*time.Hour))))
		}
	}

	if err := fields.Err(ErrInvalidContent); err != nil {
		return ContentDraft{}, err
	}
	return d, nil
}

// strictPolicy strips every tag. AddSpaceWhenStrippingTag keeps the words
// on either side of a removed tag apart ("Buy<br>now" becomes "Buy now",
// not "Buynow"); the whitespace it adds is collapsed afterwards. A
// bluemonday policy is safe for concurrent use once built.
var strictPolicy = bluemonday.StrictPolicy().AddSpaceWhenStrippingTag(true)

// maxUnescapeRounds bounds how often plainText strips and decodes before
// giving up on input that keeps revealing markup ("&amp;lt;b&amp;gt;...").
const maxUnescapeRounds = 8

// plainText returns s as plain text: every tag stripped (the content of
// script and style elements too), entities decoded, NFC, whitespace runs
// collapsed to one space. Stripping and decoding repeat until nothing
// changes, so that an encoded tag ("&lt;b&gt;") cannot survive as markup
// and plainText(plainText(s)) == plainText(s). It refuses invalid UTF-8 and
// control, format (bidi overrides, zero-width spaces, BOM) and private-use
// characters, whether typed or written as entities.
func plainText(s string) (string, error) {
	if err := checkRunes(s); err != nil {
		return "", err
	}
	for i := 0; ; i++ {
		if i == maxUnescapeRounds {
			return "", errors.New("must be plain text")
		}
		next := html.UnescapeString(strictPolicy.Sanitize(s))
		if next == s {
			break
		}
		s = next
	}
	if err := checkRunes(s); err != nil {
		return "", err
	}
	return strings.Join(strings.Fields(norm.NFC.String(s)), " "), nil
}

// checkRunes refuses invalid UTF-8 and characters that have no place in ad
// text: controls other than whitespace (which is collapsed), format
// characters other than the joiners that emoji and some scripts need (so
// every bidi override and isolate, zero-width space and BOM), and
// private-use characters.
func checkRunes(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("must be valid UTF-8")
	}
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
		case r == '\u200c' || r == '\u200d': // ZWNJ, ZWJ
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			return fmt.Errorf("must not contain control or formatting characters (found U+%04X)", r)
		case unicode.Is(unicode.Co, r):
			return fmt.Errorf("must not contain private-use characters (found U+%04X)", r)
		}
	}
	return nil
}

// foldWords splits s into words compared for banned-word matching:
// NFKC, case-folded, NFKC again (so fullwidth and other compatibility
// forms fold to their plain letters), split at every rune that is not a
// letter, digit or combining mark.
func foldWords(s string) []string {
	s = norm.NFKC.String(cases.Fold().String(norm.NFKC.String(s)))
	return strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	})
}

// foldPhrases folds each banned word or phrase into its words.
func foldPhrases(banned []string) [][]string {
	out := make([][]string, 0, len(banned))
	for _, b := range banned {
		if w := foldWords(b); len(w) > 0 {
			out = append(out, w)
		}
	}
	return out
}

// containsBanned reports whether text contains one of the banned phrases
// as a run of whole words, and returns it.
func containsBanned(text string, banned [][]string) (string, bool) {
	if len(banned) == 0 {
		return "", false
	}
	words := foldWords(text)
	for _, phrase := range banned {
		for i := 0; i+len(phrase) <= len(words); i++ {
			if slices.Equal(words[i:i+len(phrase)], phrase) {
				return strings.Join(phrase, " "), true
			}
		}
	}
	return "", false
}

// hostProfile maps a host to its ASCII (punycode) form the way a browser
// looks it up: case and width folded, letters, digits and hyphens only,
// DNS lengths enforced. Hyphen placement is not checked, as browsers do not
// ("r3---sn-abc" is a real label).
var hostProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true), idna.CheckHyphens(false))

// blockedSuffixes are names that never resolve on the public internet, or
// resolve to the asking machine or its network: a host equal to one, or
// ending in "." + one, is refused.
var blockedSuffixes = []string{
	"localhost", "localdomain", "local", "internal", "intranet", "private",
	"lan", "home", "corp", "home.arpa", "arpa", "test", "invalid", "example", "onion",
}

// blockedPrefixes are address ranges that an ad link must never point at:
// this host and network, private and carrier-grade NAT ranges, link-local,
// documentation, benchmarking, multicast and reserved space, and the IPv6
// ranges that embed or translate IPv4 addresses (which could smuggle a
// private IPv4 address past a check of the IPv6 form).
var blockedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // this network
		"10.0.0.0/8",      // private
		"100.64.0.0/10",   // carrier-grade NAT
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local
		"172.16.0.0/12",   // private
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation (TEST-NET-1)
		"192.88.99.0/24",  // 6to4 relay anycast
		"192.168.0.0/16",  // private
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation (TEST-NET-2)
		"203.0.113.0/24",  // documentation (TEST-NET-3)
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, and the broadcast address
		"::/96",           // unspecified, loopback and IPv4-compatible
		"::ffff:0:0/96",   // IPv4-mapped: a link names IPv4 addresses as such
		"64:ff9b::/96",    // NAT64
		"64:ff9b:1::/48",  // local-use NAT64
		"100::/64",        // discard-only
		"2001::/23",       // IETF protocol assignments, Teredo, benchmarking
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4
		"3fff::/20",       // documentation
		"fc00::/7",        // unique local (ULA)
		"fe80::/10",       // link-local
		"fec0::/10",       // site-local (deprecated)
		"ff00::/8",        // multicast
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// checkIP refuses addresses an ad link must never point at.
func checkIP(a netip.Addr) error {
	if a.Zone() != "" {
		return errors.New("must not use a scoped IPv6 address")
	}
	a4 := a.Unmap()
	if !a4.IsGlobalUnicast() || a4.IsPrivate() {
		return errors.New("must not point at a private, local or reserved address")
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) || p.Contains(a4) {
			return errors.New("must not point at a private, local or reserved address")
		}
	}
	return nil
}

// checkURL reports whether raw is a URL that content may link to or load
// an image from: valid UTF-8, at most MaxURLLen bytes, absolute https (the
// scheme compared after url.Parse lower-cases it, so "HTTPS:" passes and
// "JaVaScRiPt:" does not), a host, no credentials, no port but 443, and no
// whitespace, control or format characters, backslashes, quotes or angle
// brackets anywhere.
//
// The host must be a public name or address. IP literals (IPv4, bracketed
// IPv6, IPv4-mapped IPv6) are refused in private, loopback, link-local,
// unspecified, multicast, carrier-grade NAT, ULA, documentation and other
// reserved ranges. A host whose last label is a number ("2130706433",
// "0177.0.0.1", "0x7f.0.0.1", "127.1") is one a browser reads as an IPv4
// address, so unless it is a plain dotted quad it is refused outright.
// Names are compared in their ASCII (punycode) form after the IDNA lookup
// mapping, so internationalised names pass and fullwidth or otherwise
// disguised spellings of a blocked name or address are caught. Refused:
// localhost and special-use or never-delegated names (see blockedSuffixes)
// with their subdomains, single-label hosts, and a trailing dot.
//
// These checks look at the literal host only, and a public name that
// resolves to a private address (a *.nip.io name, a rebinding domain) is
// accepted on purpose, because the server never fetches a content's URLs:
// the click URL is where the click link redirects the viewer's browser,
// the image URL is handed to the app, and nothing server-side connects to
// either (TestNothingFetchesContentURLs in transport fails if the life of
// an ad looks either host up). Resolving the name here would refuse
// nothing that matters: its owner can change the answer after approval,
// and the only client that connects, the viewer's, resolves it again.
// Anything that ever fetches these URLs server-side (an image proxy, a
// crawler, a link checker, a preview) must check the address it actually
// connects to, at connect time (a net.Dialer Control function refusing
// what checkIP refuses), never the name, and must not follow redirects
// unchecked. Look-alike (homograph) names are a matter for moderation.
func (r Rules) checkURL(raw string) error {
	if r.MaxURLLen <= 0 {
		r.MaxURLLen = DefaultMaxURLLen
	}
	if !utf8.ValidString(raw) {
		return errors.New("must be valid UTF-8")
	}
	if len(raw) > r.MaxURLLen {
		return fmt.Errorf("must be at most %d bytes", r.MaxURLLen)
	}
	if i := strings.IndexFunc(raw, func(c rune) bool {
		return unicode.IsSpace(c) || unicode.IsControl(c) || unicode.Is(unicode.Cf, c) ||
			strings.ContainsRune("\\\"'<>`", c)
	}); i >= 0 {
		return errors.New("must not contain spaces, control characters, quotes, angle brackets or backslashes")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("must be a valid URL")
	}
	if u.Scheme != "https" {
		return errors.New("must be an https URL")
	}
	if u.Opaque != "" || u.Host == "" {
		return errors.New("must have a host")
	}
	if u.User != nil {
		return errors.New("must not contain credentials")
	}
	if p := u.Port(); p != "" && p != "443" {
		return errors.New("must not name a port other than 443")
	}
	return checkHost(u)
}

// checkHost applies checkURL's host rules to u's host.
func checkHost(u *url.URL) error {
	host := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return errors.New("must have a valid host")
		}
		return checkIP(a)
	}
	if strings.HasSuffix(host, ".") {
		return errors.New("must not end the host with a dot")
	}
	ascii, err := hostProfile.ToASCII(host)
	if err != nil || ascii == "" {
		return errors.New("must have a valid host name")
	}
	ascii = strings.ToLower(ascii)
	if strings.HasSuffix(ascii, ".") {
		return errors.New("must not end the host with a dot")
	}
	if a, err := netip.ParseAddr(ascii); err == nil {
		return checkIP(a)
	}
	labels := strings.Split(ascii, ".")
	if last := labels[len(labels)-1]; isNumericLabel(last) {
		// A browser parses this as an IPv4 address in some spelling
		// (decimal, octal, hex or a short form): refuse it whatever it is.
		return errors.New("must not be a numeric address in disguise")
	}
	for _, l := range labels {
		if l == "" {
			return errors.New("must have a valid host name")
		}
	}
	if len(labels) < 2 {
		return errors.New("must have a fully qualified host name")
	}
	for _, s := range blockedSuffixes {
		if ascii == s || strings.HasSuffix(ascii, "."+s) {
			return errors.New("must not point at a local or reserved host name")
		}
	}
	return nil
}

// isNumericLabel reports whether a label makes the WHATWG URL parser treat
// the host as IPv4: all decimal digits, or "0x" followed by hex digits.
func isNumericLabel(l string) bool {
	if l == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(l, "0x"); ok {
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return strings.Trim(l, "0123456789") == ""
}

// Fingerprint identifies a draft's creative for duplicate detection: the
// hex SHA-256 of its title, body, click URL and image URL, each with case
// folded, compatibility forms folded (NFKC) and whitespace collapsed, and
// the URLs' scheme and host lower-cased (their paths keep their case,
// which servers may honour). Two drafts that differ only in case or
// spacing have one fingerprint. Call it on the draft Rules.Check returns.
func Fingerprint(d ContentDraft) string {
	fold := func(s string) string {
		return strings.Join(strings.Fields(cases.Fold().String(norm.NFKC.String(s))), " ")
	}
	h := sha256.New()
	for _, part := range []string{fold(d.Title), fold(d.Body), foldURL(d.ClickURL), foldURL(d.ImageURL)} {
		// Length-prefixed, so that moving text between parts changes the hash.
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write([]byte(part))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// foldURL lower-cases a URL's scheme and host, leaving the rest as is.
func foldURL(raw string) string {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	return u.String()
}
