// Package stripe is adshare's payments processor on Stripe Connect, with
// stripe-go v76: [Client] implements billing.Processor and [Webhooks]
// implements billing.EventVerifier.
//
// # Money flow
//
// Separate charges and transfers: an advertiser's top-up is a
// PaymentIntent on the platform account (automatic payment methods; the
// advertiser and top-up ids in its metadata); owners have Express
// connected accounts, onboarded through account links; a payout is a
// Transfer from the platform's available balance to the owner's account,
// under the payout's id as idempotency key and transfer group. Stripe pays
// the owner's bank from there on the account's own schedule.
//
// # API version
//
// stripe-go v76 pins Stripe API version 2023-10-16 (stripego.APIVersion):
// every call is made on it, and events of any other version are refused
// (billing.ErrWebhookVersion). Create both webhook endpoints on that
// version (in the dashboard, or POST /v1/webhook_endpoints with
// api_version=2023-10-16); the account's default version does not matter.
//
//   - The platform endpoint: payment_intent.succeeded,
//     payment_intent.payment_failed, charge.refunded,
//     charge.dispute.created, charge.dispute.closed, transfer.reversed.
//   - The Connect endpoint (connect=true), for events on connected
//     accounts (Event.Account is set): account.updated, payout.failed.
//
// Each endpoint has its own signing secret, so each gets its own
// [Webhooks]; list both secrets while one is rolled. A live Connect
// endpoint also receives connected accounts' test-mode events: check
// Event.Livemode.
//
// # What an event carries
//
// Events are notifications, delivered at least once and in no order: apply
// each once by Event.ID, and read the object again where its state
// matters (Client.Payment, Client.Account). On 2023-10-16 Stripe expands
// nothing in an event's object, so:
//
//   - payment_intent.*: Payment has ID, Advertiser (uuid.Nil for a payment
//     adshare did not make), Amount, Currency, Status and Created; never
//     Fee, Refunded or Disputed (the latest charge is only an id) and
//     never ClientSecret. Client.Payment reads them: it expands the latest
//     charge's balance transaction, where the fee is; Stripe may make that
//     transaction a little after the payment succeeds, so a Fee of 0 may be
//     filled by reading again later. Fee is set only when the balance
//     transaction is in the payment's currency. Disputed is the charge's
//     whole amount once it was disputed (the charge has only a flag, which
//     stays set after the dispute closes): the charge.dispute.* events say
//     how much and how it ended.
//   - charge.refunded: Refund has Charge, Payment, Currency and Amount, the
//     charge's total refunded so far (act on the difference from what was
//     recorded); ID is empty (the charge's refunds are not included).
//   - charge.dispute.*: Dispute has everything, Fee being the sum of its
//     balance transactions' fees.
//   - account.updated: Connect has the account's flags; TransfersEnabled
//     is the transfers capability being active; RequirementsDue is what is
//     past due, then what is currently due.
//   - transfer.reversed: Transfer, Reversed being the total reversed.
//   - payout.failed: Payout with its failure code; the money stays in the
//     owner's Stripe balance.
//
// # Errors and retries
//
// Every failure is a *billing.ProcessorError. Definite (Stripe did
// nothing): card errors, idempotency errors (the key was used before with
// other parameters), and 4xx answers other than 409 and 429. Ambiguous
// (Stripe may have acted: retry with the same key, or look the result
// up): timeouts, network errors, 409, 429 (rate limits, lock timeouts) and
// 5xx (Stripe stores a 5xx under its key and replays it). Stripe keeps
// idempotency keys for 24 hours at least; past that, a payout looks its
// transfer up with TransfersInGroup before sending it again. stripe-go
// itself retries a call at most Config.MaxNetworkRetries times, with the
// same key.
//
// # Secrets and logs
//
// The secret key and the webhook secrets come from the host's
// configuration as [Secret] values, which never print. Each call is logged
// (debug, or warn when it failed) with its operation, Stripe's request id
// and the idempotency key; errors and logs are scrubbed of the key and of
// anything shaped like a Stripe key or client secret.
//
// # Tests
//
// stripe-mock (v0.203.0, started on loopback ports by the tests) checks
// the shape of every request this package sends; it keeps no state, so
// behaviour (balances, idempotent replay, failures after the fact,
// duplicated and reordered webhooks) is tested against billingtest's
// stateful fake, which hosts can use too.
//
// # Upgrading
//
// stripe-go v76 is frozen on 2023-10-16. The next step is v82.1 or later
// (stripe.NewClient, context-first calls, a webhook check that accepts any
// version of the same release train, retries of every 5xx); the change
// stays inside this package.
package stripe
