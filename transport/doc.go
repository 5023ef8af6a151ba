// Package transport offers adshare's REST API as an http.Handler that a host
// application mounts in its own server: adshare never owns a listener, TLS
// or shutdown.
//
// [New] returns the handler with its middleware: request ids, structured
// access logs through the injected *slog.Logger, panic recovery, request body
// limits, security headers for a JSON API, CORS with an exact-origin
// allowlist, and Prometheus metrics on a registry the host passes in.
//
// Every error is an RFC 9457 application/problem+json document. Domain errors
// map to statuses in one table (errors.go); validation failures carry a list
// of field-level messages as JSON pointers into the request body:
//
//	{"type":"urn:adshare:problem:invalid_settings","title":"Unprocessable Content",
//	 "status":422,"detail":"the ad space settings are not valid","code":"invalid_settings",
//	 "request_id":"…","errors":[{"pointer":"#/refresh_interval","detail":"must be at least 30 seconds"}]}
//
// Request bodies are decoded strictly: only application/json, valid UTF-8,
// one JSON object with no duplicate keys, no unknown fields, no trailing data,
// and each field of the declared type. Malformed bodies get 400, well-formed
// but invalid ones 422, oversized ones 413.
//
// The routes are listed in routes.go; every route is documented in the
// OpenAPI 3.1 document served at GET /openapi.json, and a test keeps the two
// in step.
package transport
