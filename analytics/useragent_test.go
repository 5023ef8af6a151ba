package analytics

import (
	"regexp"
	"strings"
	"testing"
)

// botUserAgentRegexp is the reference isBotUserAgent must agree with: the
// regular expression it replaced, its case folding made ASCII-only ("b" is
// [bB]) as isBotUserAgent's is.
var botUserAgentRegexp = func() *regexp.Regexp {
	alternatives := []string{`bot\b`}
	for _, m := range botUserAgentMarks {
		var sb strings.Builder
		for _, c := range m {
			if 'a' <= c && c <= 'z' {
				sb.WriteString("[" + string(c) + strings.ToUpper(string(c)) + "]")
			} else {
				sb.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		alternatives = append(alternatives, sb.String())
	}
	pattern := strings.Join(alternatives, "|")
	return regexp.MustCompile(strings.Replace(pattern, `bot\b`, `[bB][oO][tT]\b`, 1))
}()

var userAgentCorpus = []string{
	"", "AdshareApp/2.1 (iPhone; iOS 18.1)", "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UQ1A)",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bingbot", "BOT", "robot",
	"Robotron 2084", "my_bot_app", "bot_", "abot-x", "Mozilla/5.0 HeadlessChrome/120", "python-requests/2.32",
	"curl/8.4.0", "Wget/1.21", "Go-http-client/1.1", "Java/17.0.2", "okhttp/2.7.5", "okhttp/4.12.0",
	"Apache-HttpClient/4.5", "facebookexternalhit/1.1", "Slackbot-LinkExpanding 1.0", "Pingdom.com_bot", "UptimeRobot/2.0",
	"Mozilla/5.0 (Linux) Chrome-Lighthouse", "Twitterbot/1.0", "YandexBot/3.0", "SpiderMonkey", "Preview/1",
	"Ünïcödé bot", "botänik", "ᏴOT", "bot\u212a", "selenium", "WebDriver", "Puppeteer", "Playwright/1.4",
}

func TestBotUserAgentAgreesWithItsExpression(t *testing.T) {
	t.Parallel()
	for _, ua := range userAgentCorpus {
		if got, want := isBotUserAgent(ua), botUserAgentRegexp.MatchString(ua); got != want {
			t.Errorf("isBotUserAgent(%q) = %v, the expression says %v", ua, got, want)
		}
	}
}

func FuzzBotUserAgent(f *testing.F) {
	for _, ua := range userAgentCorpus {
		f.Add(ua)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		if got, want := isBotUserAgent(ua), botUserAgentRegexp.MatchString(ua); got != want {
			t.Fatalf("isBotUserAgent(%q) = %v, the expression says %v", ua, got, want)
		}
	})
}

// BenchmarkBotUserAgent compares the substring search with the expression
// it replaced on an app's agent, which matches nothing and so is read
// whole.
func BenchmarkBotUserAgent(b *testing.B) {
	const ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
	b.Run("substrings", func(b *testing.B) {
		for b.Loop() {
			isBotUserAgent(ua)
		}
	})
	replaced := regexp.MustCompile(`(?i)(bot\b|bot/|crawler|spider|slurp|curl/|wget/|python-requests|python-urllib|go-http-client|java/|okhttp/2|libwww|httpclient|headless|phantomjs|selenium|webdriver|puppeteer|playwright|lighthouse|facebookexternalhit|preview|monitor|pingdom|uptime)`)
	b.Run("regexp", func(b *testing.B) {
		for b.Loop() {
			replaced.MatchString(ua)
		}
	})
}
