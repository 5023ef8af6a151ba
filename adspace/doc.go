// Package adspace holds the ad space that every user owns: its settings and
// the storage interface behind them.
//
// A [Space] belongs to exactly one user (its owner) and is keyed by the
// owner's id. Settings are validated by [Settings.Validate] before any store
// sees them; stores enforce the same rules again with constraints.
//
// # Content URLs are never fetched
//
// Advertisers' content carries a click URL and an image URL, checked by
// [Rules.Check]: https only, no credentials, no port but 443, and no host
// that is, or is spelled to be read as, a private, loopback, link-local or
// reserved address, or localhost or another special-use name. The checks
// read the URL, not DNS: a public name that resolves to a private address
// passes. That is safe only because no part of the server fetches these
// URLs: a click is a redirect of the viewer's browser, the image is loaded
// by the app. Code that starts fetching them (an image proxy, a link
// checker, a preview) must refuse private addresses at connect time, where
// DNS can no longer change the answer; transport's
// TestNothingFetchesContentURLs fails as soon as one does.
package adspace
