// Package secret holds Secret, a credential that never shows itself: the
// Kevel API key, Stripe's secret key and webhook signing secrets are all
// Secrets, so that no log line, error or dump of a Config can hold one.
package secret

import (
	"log/slog"
	"regexp"
	"strings"
)

// Secret is a credential. It prints (fmt's string verbs), logs (slog)
// and marshals (JSON, and text for encoders such as YAML) as [Redacted];
// convert it to string only to send it. It unmarshals from a plain JSON
// string, so configuration files can hold one.
//
// Two holes no method can close: fmt cannot call methods on unexported
// struct fields, so a struct that keeps a Secret in an unexported field
// shows it when printed (keep it behind a pointer, which prints as an
// address, or in an exported field); and encoding/json writes a map key of
// a string type as it is (never make a Secret a map key).
type Secret string

// Redacted is what a Secret shows instead of itself.
const Redacted = "[redacted]"

// String implements fmt.Stringer.
func (Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return Redacted }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// minLen is the shortest secret Scrub replaces: shorter strings are too
// likely to occur in text by chance to be credentials worth hiding, and
// replacing them would garble messages.
const minLen = 8

// Scrub returns s with every occurrence of each secret (of at least eight
// bytes) replaced by Redacted.
func Scrub(s string, secrets ...Secret) string {
	for _, sec := range secrets {
		if len(sec) >= minLen {
			s = strings.ReplaceAll(s, string(sec), Redacted)
		}
	}
	return s
}

// stripeLike matches what looks like a Stripe credential: secret,
// restricted and publishable keys (Stripe shows them masked, as
// sk_test_****1234, which still gives away their end), webhook signing
// secrets and PaymentIntents' client secrets.
var stripeLike = regexp.MustCompile(`\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z*]+|\bwhsec_[0-9A-Za-z]+|_secret_[0-9A-Za-z]+`)

// ScrubStripe is Scrub, and also replaces anything shaped like a Stripe
// key, webhook secret or client secret, whoever's it is.
func ScrubStripe(s string, secrets ...Secret) string {
	return stripeLike.ReplaceAllString(Scrub(s, secrets...), Redacted)
}
