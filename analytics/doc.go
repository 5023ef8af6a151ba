// Package analytics turns what apps report (viewable impressions, clicks,
// conversions) into trusted events, and events into reports.
//
// It begins where a fill ends: every ad served carries a tracking token
// (see package tracking, which seals and opens them) that names the space,
// the ad, its price and whether it may be billed; an Event carries what its
// token says (tracking.Ad). Tokens are sealed with AES-256-GCM: the client
// cannot read them (they hold the ad server's own pixel URLs, which never
// reach clients) and cannot forge or alter them; they expire, and each
// names a single-use id.
package analytics
