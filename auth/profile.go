package auth

import (
	"strings"
	"time"
	_ "time/tzdata" // time zones validate the same on every host
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"

	"github.com/adshare/adshare/internal/errs"
)

// Limits on profile fields.
const (
	// MaxDisplayNameLen is the longest display name, in characters.
	MaxDisplayNameLen = 64
)

// Profile is what a user may change about their own account.
type Profile struct {
	DisplayName string
	Preferences Preferences
	Settings    Settings
}

// Preferences shape how the app presents itself to the user.
type Preferences struct {
	// Locale is a BCP 47 language tag such as "en-US"; empty means the app decides.
	Locale string `json:"locale"`
	// TimeZone is an IANA zone such as "Europe/Berlin"; reports use it.
	// Empty means UTC.
	TimeZone string `json:"time_zone"`
	// Theme is "system", "light" or "dark".
	Theme string `json:"theme"`
	// Notifications say what the user wants to hear about.
	Notifications Notifications `json:"notifications"`
}

// Notifications are the user's opt-ins.
type Notifications struct {
	// Email: account and security mail beyond what must be sent.
	Email bool `json:"email"`
	// Push: live alerts on the device (earnings milestones, moderation results).
	Push bool `json:"push"`
	// WeeklyReport: a weekly summary of the ad space's performance.
	WeeklyReport bool `json:"weekly_report"`
	// Payouts: a message when a payout is sent or fails.
	Payouts bool `json:"payouts"`
}

// Settings are the user's privacy and money choices.
type Settings struct {
	// PersonalizedAds is the user's consent (GDPR) to ads personalised with
	// data about them when they view other users' spaces. Off by default:
	// consent must be given, not assumed.
	PersonalizedAds bool `json:"personalized_ads"`
	// DoNotSell is the user's opt-out (CCPA/CPRA) of the sale or sharing of
	// their personal information; when set, no user key reaches the ad server.
	DoNotSell bool `json:"do_not_sell"`
	// PayoutCurrency is the ISO 4217 code payouts are made in.
	PayoutCurrency string `json:"payout_currency"`
}

// PayoutCurrencies are the currencies payouts can be made in.
var PayoutCurrencies = []string{"USD", "EUR", "GBP", "CAD", "AUD"}

// DefaultProfile is a new user's profile: system theme, UTC, security
// mail and payout notices on, no personalised ads, payouts in USD.
func DefaultProfile() Profile {
	return Profile{
		Preferences: Preferences{Theme: "system", Notifications: Notifications{Email: true, Payouts: true}},
		Settings:    Settings{PayoutCurrency: "USD"},
	}
}

// ProfileUpdate is a partial change to a profile: nil fields stay as they
// are (JSON merge-patch semantics, RFC 7396, without deletion).
type ProfileUpdate struct {
	DisplayName *string
	Locale      *string
	TimeZone    *string
	Theme       *string
	// Notification opt-ins.
	NotifyEmail        *bool
	NotifyPush         *bool
	NotifyWeeklyReport *bool
	NotifyPayouts      *bool
	// Privacy and money.
	PersonalizedAds *bool
	DoNotSell       *bool
	PayoutCurrency  *string
}

// Apply returns p with the update's non-nil fields set, normalised and
// validated, or an error matching ErrInvalidProfile with a message for each
// bad field (named as in the JSON API).
func (u ProfileUpdate) Apply(p Profile) (Profile, error) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	setBool := func(dst *bool, src *bool) {
		if src != nil {
			*dst = *src
		}
	}
	set(&p.DisplayName, u.DisplayName)
	set(&p.Preferences.Locale, u.Locale)
	set(&p.Preferences.TimeZone, u.TimeZone)
	set(&p.Preferences.Theme, u.Theme)
	setBool(&p.Preferences.Notifications.Email, u.NotifyEmail)
	setBool(&p.Preferences.Notifications.Push, u.NotifyPush)
	setBool(&p.Preferences.Notifications.WeeklyReport, u.NotifyWeeklyReport)
	setBool(&p.Preferences.Notifications.Payouts, u.NotifyPayouts)
	setBool(&p.Settings.PersonalizedAds, u.PersonalizedAds)
	setBool(&p.Settings.DoNotSell, u.DoNotSell)
	set(&p.Settings.PayoutCurrency, u.PayoutCurrency)
	return p.Normalize()
}

// Normalize returns the profile in canonical form (trimmed display name,
// canonical locale tag, upper-case currency) or an error matching
// ErrInvalidProfile.
func (p Profile) Normalize() (Profile, error) {
	var f errs.Fields
	name, err := normalizeDisplayName(p.DisplayName)
	if err != "" {
		f.Add("display_name", err)
	}
	p.DisplayName = name

	if p.Preferences.Locale != "" {
		tag, perr := language.Parse(p.Preferences.Locale)
		if perr != nil || len(p.Preferences.Locale) > 35 {
			f.Add("preferences/locale", "must be a BCP 47 language tag such as en-US")
		} else {
			p.Preferences.Locale = tag.String()
		}
	}
	if tz := p.Preferences.TimeZone; tz != "" {
		if len(tz) > 64 || strings.HasPrefix(tz, "/") || strings.Contains(tz, "..") || tz == "Local" {
			f.Add("preferences/time_zone", "must be an IANA time zone such as Europe/Berlin")
		} else if _, lerr := time.LoadLocation(tz); lerr != nil {
			f.Add("preferences/time_zone", "must be an IANA time zone such as Europe/Berlin")
		}
	}
	switch p.Preferences.Theme {
	case "system", "light", "dark":
	case "":
		p.Preferences.Theme = "system"
	default:
		f.Add("preferences/theme", "must be system, light or dark")
	}
	cur := strings.ToUpper(p.Settings.PayoutCurrency)
	known := false
	for _, c := range PayoutCurrencies {
		known = known || c == cur
	}
	if !known {
		f.Add("settings/payout_currency", "must be one of "+strings.Join(PayoutCurrencies, ", "))
	}
	p.Settings.PayoutCurrency = cur
	if err := f.Err(ErrInvalidProfile); err != nil {
		return Profile{}, err
	}
	return p, nil
}

// normalizeDisplayName trims and collapses whitespace; it refuses control
// and format characters (which can reorder text, as in bidi spoofing),
// invalid UTF-8 and names over MaxDisplayNameLen characters. It returns the
// problem as a message, empty when none.
func normalizeDisplayName(s string) (string, string) {
	if !utf8.ValidString(s) {
		return "", "must be valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "", "must not contain control or formatting characters"
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > MaxDisplayNameLen {
		return "", "must be at most 64 characters"
	}
	return s, ""
}
