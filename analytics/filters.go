package analytics

import (
	"net/netip"
	"strings"
	"time"
)

// Names of the invalid-traffic rules. Each is one filter; an event that
// trips one is kept, marked invalid with the rule's name, and never billed.
const (
	RuleOwnerView       = "owner_view"     // the space's owner viewing or clicking their own space
	RuleBotUserAgent    = "bot_user_agent" // a crawler, script or headless browser
	RuleDataCenter      = "data_center"    // traffic from a configured data-centre network
	RuleViewerBurst     = "viewer_burst"   // more events from one viewer than a person makes
	RuleIPBurst         = "ip_burst"       // more events from one address (/24, /48) than a household makes
	RuleFastClick       = "fast_click"     // a click sooner after its impression than a human can
	RuleNoImpression    = "click_without_impression"
	RuleNotViewable     = "not_viewable"                  // an impression reported before the one-second view could complete
	RuleConversionNoImp = "conversion_without_impression" // a conversion whose token has no valid impression
)

// botUserAgentMarks are found (lowercase) in the user agents of known
// crawlers, HTTP libraries and automation. Mobile apps send their own
// agent (or the platform's); none of these appear in a real one. A word
// ending in "bot" (Googlebot, bingbot) marks one too (isBotUserAgent).
var botUserAgentMarks = []string{
	"crawler", "spider", "slurp", "curl/", "wget/", "python-requests", "python-urllib", "go-http-client", "java/",
	"okhttp/2", "libwww", "httpclient", "headless", "phantomjs", "selenium", "webdriver", "puppeteer", "playwright",
	"lighthouse", "facebookexternalhit", "preview", "monitor", "pingdom", "uptime",
}

// isBotUserAgent reports whether ua is a crawler's, a script's or an
// automated browser's, ignoring ASCII case. It is plain substring search: a
// regular expression over these alternatives took 35 times as long on an
// app's agent, which matches none and so is read whole.
func isBotUserAgent(ua string) bool {
	lower := asciiLower(ua)
	for _, m := range botUserAgentMarks {
		if strings.Contains(lower, m) {
			return true
		}
	}
	for rest := lower; ; {
		i := strings.Index(rest, "bot")
		if i < 0 {
			return false
		}
		rest = rest[i+len("bot"):]
		if rest == "" || !isWordByte(rest[0]) {
			return true
		}
	}
}

// asciiLower returns s with its ASCII capitals made small; other bytes
// (UTF-8 sequences included) stay as they are.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// isWordByte reports whether c is an ASCII letter, digit or underscore.
func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// FilterConfig configures the invalid-traffic rules.
type FilterConfig struct {
	// DataCenters are networks whose traffic is not human (cloud
	// providers' ranges, as the host knows them). Empty: the rule is off.
	DataCenters []netip.Prefix
	// ViewerPerMinute and NetworkPerMinute bound the events of one type
	// that one viewer and one client network (/24, /48) make in a minute
	// (by when they occurred); more are flagged as bursts. Defaults: 30
	// per viewer; 3000 per network, high because mobile carriers put many
	// users behind few addresses (carrier-grade NAT).
	ViewerPerMinute  int
	NetworkPerMinute int
	// MinClickDelay is the least time between an impression and its click
	// that a human needs. Defaults to 500 ms.
	MinClickDelay time.Duration
	// MinViewTime is how long after the ad was served its impression may
	// first be reported (it must be on screen for one second). Defaults
	// to 900 ms, which allows for clock skew.
	MinViewTime time.Duration
}

func (c FilterConfig) withDefaults() FilterConfig {
	if c.ViewerPerMinute <= 0 {
		c.ViewerPerMinute = 30
	}
	if c.NetworkPerMinute <= 0 {
		c.NetworkPerMinute = 3000
	}
	if c.MinClickDelay == 0 {
		c.MinClickDelay = 500 * time.Millisecond
	}
	if c.MinViewTime == 0 {
		c.MinViewTime = 900 * time.Millisecond
	}
	return c
}

// signals are what the filters know about a report beyond its token:
// about the request that carried it (judged once per request) and about
// its token's impression.
type signals struct {
	bot         bool      // the user agent is a bot's
	dataCenter  bool      // the client is in a configured data-centre network
	impressedAt time.Time // when a click's token had its impression (stored or in the batch), if it did
	// validImpression: a conversion's token has a valid impression, stored
	// or (when none is stored) in the same batch.
	validImpression bool
}

// filters applies the rules in a fixed order; the first that fires names
// the event's invalidity. The burst rules come last, over each group
// commit's events (Service.judgeBursts): they count, so only events that
// passed everything else spend an allowance.
type filters struct {
	cfg FilterConfig
}

// classify returns the name of the first rule before the burst rules that
// e trips, or "".
func (f *filters) classify(e *Event, s signals) string {
	switch {
	case e.Ad.Viewer != [16]byte{} && e.Ad.Viewer == e.Ad.Owner:
		return RuleOwnerView
	case s.bot:
		return RuleBotUserAgent
	case s.dataCenter:
		return RuleDataCenter
	}
	switch e.Type {
	case Impression:
		if e.OccurredAt.Sub(e.Ad.IssuedAt) < f.cfg.MinViewTime {
			return RuleNotViewable
		}
	case Click:
		if s.impressedAt.IsZero() {
			return RuleNoImpression
		}
		if e.OccurredAt.Sub(s.impressedAt) < f.cfg.MinClickDelay {
			return RuleFastClick
		}
	case Conversion:
		// A conversion counts only after a valid impression: one flagged
		// (not viewable, a bot's, a burst...) proves no one saw the ad.
		if !s.validImpression {
			return RuleConversionNoImp
		}
	}
	return ""
}

func (f *filters) inDataCenter(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range f.cfg.DataCenters {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// networkOf is the client's network: /24 for IPv4, /48 for IPv6 (a
// household or a small office), as stored with the event.
func networkOf(ip netip.Addr) string {
	ip = ip.Unmap()
	bits := 24
	if ip.Is6() {
		bits = 48
	}
	p, _ := ip.Prefix(bits)
	return p.String()
}
