// Package client is a Go client for adshare's HTTP API, for host services
// and integration tests: sign-up and sign-in, ad space settings, ad
// content and its review, fills, tracking events, click links, top-ups and
// the reports.
//
// It is written by hand rather than generated from /openapi.json. The
// surface it covers is small (the calls a host service or a test makes,
// not every admin endpoint), a generator (oapi-codegen, ogen) would add a
// build-time dependency and regenerated code to review on every change of
// the document, and a generated client turns the document's oneOf bodies
// and problem answers into awkward union types. By hand, every call
// returns plain structs and every error answer is a *Problem carrying the
// RFC 9457 fields and the stable code, so callers write
//
//	var p *client.Problem
//	if errors.As(err, &p) && p.Code == "email_taken" { … }
//
// The document is held to the client the other way round: the package's
// tests drive the whole user flow through a transport that validates
// every request and answer against transport/openapi.yaml, so the client,
// the document and the server cannot drift apart unnoticed.
//
// # Tokens
//
// A Client signed in (Register, Login, or SetTokens with tokens kept from
// before) sends the access token on every authenticated call and refreshes
// it for the caller: shortly before it expires (Config.RefreshBefore) and
// once after a 401 whose token was the current one. Refreshes happen one
// at a time: concurrent calls that find the token stale wait for the one
// refresh in flight and use its result, because the server rotates the
// refresh token on every use and a second, concurrent use of the same
// token is only forgiven within a short grace window (after which it
// revokes the whole session). Config.OnTokens hears of every new pair, to
// store the refresh token.
//
// A Client is safe for concurrent use.
package client
