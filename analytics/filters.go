package analytics

import (
	"context"
	"net/netip"
	"regexp"
	"time"

	"github.com/adshare/adshare/auth"
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
	RuleNotViewable     = "not_viewable" // an impression reported before the one-second view could complete
	RuleConversionNoImp = "conversion_without_impression"
)

// botUserAgent matches the user agents of known crawlers, HTTP libraries
// and automation. Mobile apps send their own agent (or the platform's);
// none of these words appear in a real one.
var botUserAgent = regexp.MustCompile(`(?i)(bot\b|bot/|crawler|spider|slurp|curl/|wget/|python-requests|python-urllib|go-http-client|java/|okhttp/2|libwww|httpclient|headless|phantomjs|selenium|webdriver|puppeteer|playwright|lighthouse|facebookexternalhit|preview|monitor|pingdom|uptime)`)

// FilterConfig configures the invalid-traffic rules.
type FilterConfig struct {
	// DataCenters are networks whose traffic is not human (cloud
	// providers' ranges, as the host knows them). Empty: the rule is off.
	DataCenters []netip.Prefix
	// ViewerLimit and IPLimit bound the events of one type per viewer and
	// per client network. Defaults: 30 a minute (bursts of 20) per viewer,
	// 300 a minute (bursts of 100) per network.
	ViewerLimit auth.Limit
	IPLimit     auth.Limit
	// MinClickDelay is the least time between an impression and its click
	// that a human needs. Defaults to 500 ms.
	MinClickDelay time.Duration
	// MinViewTime is how long after the ad was served its impression may
	// first be reported (it must be on screen for one second). Defaults
	// to 900 ms, which allows for clock skew.
	MinViewTime time.Duration
}

func (c FilterConfig) withDefaults() FilterConfig {
	if c.ViewerLimit == (auth.Limit{}) {
		c.ViewerLimit = auth.Limit{Rate: 30, Period: time.Minute, Burst: 20}
	}
	if c.IPLimit == (auth.Limit{}) {
		c.IPLimit = auth.Limit{Rate: 300, Period: time.Minute, Burst: 100}
	}
	if c.MinClickDelay == 0 {
		c.MinClickDelay = 500 * time.Millisecond
	}
	if c.MinViewTime == 0 {
		c.MinViewTime = 900 * time.Millisecond
	}
	return c
}

// signals are what the filters know about a report beyond its token.
type signals struct {
	ip          netip.Addr
	userAgent   string
	impressedAt time.Time // the stored impression of a click's or conversion's token, if any
}

// filters applies the rules in a fixed order; the first that fires names
// the event's invalidity.
type filters struct {
	cfg     FilterConfig
	limiter auth.Limiter
}

// classify returns the name of the first rule e trips, or "".
func (f *filters) classify(ctx context.Context, e *Event, s signals) string {
	switch {
	case e.Viewer != [16]byte{} && e.Viewer == e.Owner:
		return RuleOwnerView
	case botUserAgent.MatchString(s.userAgent):
		return RuleBotUserAgent
	case f.inDataCenter(s.ip):
		return RuleDataCenter
	}
	switch e.Type {
	case Impression:
		if e.OccurredAt.Sub(e.IssuedAt) < f.cfg.MinViewTime {
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
		if s.impressedAt.IsZero() {
			return RuleConversionNoImp
		}
	}
	// Bursts last: they count, so only events that passed everything else
	// spend the viewer's and the network's allowance.
	if e.ViewerKey != "" && !f.allow(ctx, "ivt:viewer:"+string(e.Type)+":"+e.ViewerKey, f.cfg.ViewerLimit) {
		return RuleViewerBurst
	}
	if s.ip.IsValid() && !f.allow(ctx, "ivt:ip:"+string(e.Type)+":"+networkOf(s.ip), f.cfg.IPLimit) {
		return RuleIPBurst
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

// allow counts one event against a burst limit; when the limiter cannot
// answer, the event passes (bursts are a heuristic: failing closed would
// make a Redis outage cost every owner their earnings).
func (f *filters) allow(ctx context.Context, key string, l auth.Limit) bool {
	if f.limiter == nil {
		return true
	}
	res, err := f.limiter.Allow(ctx, key, l)
	return err != nil || res.Allowed
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
