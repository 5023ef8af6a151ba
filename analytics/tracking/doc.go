// Package tracking is what a tracking token says about one served ad, and
// the Sealer that seals it into the token and opens it again. It is the
// small package that adspace (which serves ads and seals their tokens) and
// analytics (which opens the tokens apps report and records their events)
// share, so that neither imports the other.
//
// The names say what each thing is:
//
//   - Ad is the served ad as its events record it: whose space showed it
//     to whom, which ad it was, its price, whether it may earn and when it
//     was served. analytics.Event carries it whole.
//   - Payload is everything a token holds: the single-use ID, the Ad, and
//     what only the server may read or needs only to answer a click
//     (the ad server's own pixels, the landing page) and the expiry.
//     Events never keep that part.
//   - A token is the sealed string that Seal returns and Open reads.
//
// Tokens are sealed with AES-256-GCM under one of several keys (rotation
// without breaking tokens in flight): the client can neither read a token
// (it holds the ad server's pixel URLs, which never reach clients) nor
// forge or alter one; tokens expire, and each names a single-use id. The
// wire format (a version byte, a key id, the nonce, and the sealed binary
// payload of version 2 bound to its purpose by the additional data) is
// pinned by a golden test: tokens in flight stay valid across releases.
package tracking
