// Package billing will hold adshare's money: a double-entry ledger in int64
// micros, the revenue-share policy by tier, settlement after the
// invalid-traffic hold, and payouts through a payments interface whose Stripe
// Connect implementation lives in billing/stripe.
//
// Nothing is implemented yet; the package exists so that the layout of the
// module is the one host applications will import.
package billing
