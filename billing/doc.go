// Package billing is adshare's money: a double-entry ledger in integer
// micros, the revenue share by tier, settlement after the invalid-traffic
// hold, advertisers' top-ups and owners' payouts through a payments
// processor (billing/stripe: Stripe Connect; or manual, on the embedded
// defaults), the processor's webhooks, and the fraud controls around them.
//
// # The ledger
//
// Every movement of money is a [Transaction] of balanced [Entry] values:
// per currency, its debits equal its credits. Transactions are immutable;
// a correction is a new transaction that reverses another. Each has a
// unique idempotency key stored with a hash of its content: posting the
// same key again with the same content returns the first posting and
// changes nothing, and with other content fails with ErrKeyConflict. An
// account is named by what it holds ([AccountID]: its kind, its user for
// users' accounts, and its currency), so it exists from its first entry;
// its kind fixes its normal side and whether it may go below zero, which
// stores enforce under concurrency (ErrInsufficientFunds, changing
// nothing).
//
// Amounts are int64 micros of the currency unit (a millionth of a dollar)
// everywhere, Stripe's minor units (cents) only at the processor's edge:
// see [Currency.MicrosPerMinor]. Nothing is a float after a vendor's number
// is parsed.
//
// The accounts, per currency:
//
//	budget:<advertiser>     credit  never negative  prepaid budget not yet spent
//	held:<owner>            credit  never negative  earnings within the hold window
//	available:<owner>       credit  never negative  earnings that may be paid out
//	in_transit:<owner>      credit  never negative  a payout on its way to the owner
//	owed:<owner>            debit   never negative  clawbacks the owner owes (netted from later earnings)
//	platform:revenue        credit                  the platform's share
//	platform:cash           debit                   money at the processor
//	platform:kevel          debit                   revenue Kevel reported and owes
//	platform:fees           debit                   the processor's fees
//	platform:refunds        debit                   refunds of budget already spent
//	platform:disputes       debit                   disputes lost, and their fees
//	platform:unfunded       debit                   spend beyond an advertiser's budget
//	platform:settlement     debit                   advertisers' spend of a day being settled (zero after)
//
// # Rounding
//
// An impression's owner share is rounded down, per event, at ingest
// (analytics computes floor(spend × share / 10 000) in micros at the tier
// in force when the ad was served); the platform's share is the rest, so
// the platform owns every rounding remainder of the split. Settlement sums
// those per-event figures from the rollups, and so agrees with analytics to
// the micro. A payout moves whole minor units (cents): the micros below a
// cent stay in the owner's available balance for the next payout, so the
// owner owns the remainder of the conversion.
//
// # The flows
//
//   - Top-up: the processor confirms a payment (a webhook, never the app's
//     word): Dr platform:cash (net), Dr platform:fees (fee), Cr
//     budget:<advertiser> (gross).
//   - Settlement, once a day is over and no late event can arrive, in two
//     phases. Per owner: Dr platform:settlement (local advertisers' ads in
//     the owner's space), Dr platform:kevel (Kevel ads), Cr held:<owner>
//     (the owner's share), Cr platform:revenue (the rest). Then per
//     advertiser: Dr budget:<advertiser> (the day's spend, as far as the
//     budget holds; beyond it, platform:unfunded), Cr platform:settlement.
//   - Release, after the hold window: Dr held:<owner>; Cr owed:<owner> up
//     to what the owner owes, Cr available:<owner> the rest.
//   - Payout: reserved first (Dr available, Cr in_transit) together with
//     the payout's record, before the processor is called; then paid (Dr
//     in_transit, Cr platform:cash) or, on a definite failure, voided (Dr
//     in_transit, Cr available).
//   - Refund or dispute of a top-up: the advertiser's unspent budget is
//     taken back first (Dr budget); what was already spent and shared is
//     not clawed back from owners whose earnings are final: the platform
//     bears it (Dr platform:refunds or platform:disputes); Cr platform:cash.
//     A dispute won reverses its posting.
package billing
