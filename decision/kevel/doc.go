// Package kevel is the decision.Decider backed by the Kevel (ex-Adzerk)
// Decision API, with Kevel's pixels and UserDB.
//
// Three parts:
//
//   - [Client] implements decision.Decider: it maps a decision.Request onto
//     POST /api/v2 (pure function buildRequest), sends it with a deadline,
//     a client-side token bucket, a circuit breaker and retries on dial
//     errors only, and maps the answer back (pure function parseResponse).
//     Failures become the decision package's errors in one function
//     (interpret). [Client.UserDB] reads and writes UserDB records.
//   - [Firer] fires impression, click and event URLs at most once each,
//     from a bounded queue, never re-sending a request that may have
//     reached Kevel (Kevel counts every fire), and only to the configured
//     Kevel host.
//   - The wire types ([DecisionRequest], [DecisionResponse] and their
//     parts) are the spec's JSON, with Extra for unknown fields; hosts
//     reach the fields a decision.Request cannot express through
//     Config.Customize.
//
// Tracking URLs are Kevel's own and must not reach clients: the server
// fires them (through a Firer) after its own checks.
//
// The mapping is tested with golden files in testdata (prebid's
// adapterstest layout: each holds the input decision.Request, the expected
// Kevel request, the mocked Kevel answer and the expected
// decision.Response), which together cover every field of the spec. The
// package kevelfake is a fake Kevel server for tests and demos.
package kevel
