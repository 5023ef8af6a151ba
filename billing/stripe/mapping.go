package stripe

import (
	"slices"
	"time"

	"github.com/google/uuid"
	stripego "github.com/stripe/stripe-go/v76"

	"github.com/adshare/adshare/billing"
)

// The metadata keys adshare writes on Stripe objects and reads back from
// them (Stripe searches and the dashboard show them too).
const (
	// MetadataAdvertiser is the advertiser's id, on a top-up's
	// PaymentIntent.
	MetadataAdvertiser = "adshare_advertiser"
	// MetadataTopUp is the top-up's id (its idempotency key), on its
	// PaymentIntent.
	MetadataTopUp = "adshare_top_up"
	// MetadataOwner is the owner's id, on a connected account.
	MetadataOwner = "adshare_owner"
	// MetadataPayout is the payout's id, on a transfer.
	MetadataPayout = "adshare_payout"
)

// expandPaymentCharge is what Payment expands: the PaymentIntent's latest
// charge and that charge's balance transaction, where the fee is.
const expandPaymentCharge = "latest_charge.balance_transaction"

// Request building: pure functions from adshare's requests to stripe-go's
// params. The caller sets the params' Context.

func paymentParams(r billing.PaymentRequest) *stripego.PaymentIntentParams {
	p := &stripego.PaymentIntentParams{
		Amount:                  stripego.Int64(r.Amount),
		Currency:                stripego.String(string(r.Currency)),
		AutomaticPaymentMethods: &stripego.PaymentIntentAutomaticPaymentMethodsParams{Enabled: stripego.Bool(true)},
		Metadata:                map[string]string{MetadataAdvertiser: r.Advertiser.String(), MetadataTopUp: r.Key},
	}
	if r.Group != "" {
		p.TransferGroup = stripego.String(r.Group)
	}
	p.SetIdempotencyKey(r.Key)
	return p
}

func paymentGetParams() *stripego.PaymentIntentParams {
	p := &stripego.PaymentIntentParams{}
	p.AddExpand(expandPaymentCharge)
	return p
}

// accountParams makes an Express account able to receive transfers:
// Stripe requires card_payments beside transfers for Express accounts
// under the full service agreement (the default), even though the
// platform charges, not the account.
func accountParams(r billing.AccountRequest) *stripego.AccountParams {
	p := &stripego.AccountParams{
		Type: stripego.String(string(stripego.AccountTypeExpress)),
		Capabilities: &stripego.AccountCapabilitiesParams{
			Transfers:    &stripego.AccountCapabilitiesTransfersParams{Requested: stripego.Bool(true)},
			CardPayments: &stripego.AccountCapabilitiesCardPaymentsParams{Requested: stripego.Bool(true)},
		},
		Metadata: map[string]string{MetadataOwner: r.Owner.String()},
	}
	if r.Email != "" {
		p.Email = stripego.String(r.Email)
	}
	if r.Country != "" {
		p.Country = stripego.String(r.Country)
	}
	p.SetIdempotencyKey(r.Key)
	return p
}

func accountLinkParams(accountID, refreshURL, returnURL string) *stripego.AccountLinkParams {
	return &stripego.AccountLinkParams{
		Account:    stripego.String(accountID),
		RefreshURL: stripego.String(refreshURL),
		ReturnURL:  stripego.String(returnURL),
		Type:       stripego.String(string(stripego.AccountLinkTypeAccountOnboarding)),
	}
}

func transferParams(r billing.TransferRequest) *stripego.TransferParams {
	p := &stripego.TransferParams{
		Amount:      stripego.Int64(r.Amount),
		Currency:    stripego.String(string(r.Currency)),
		Destination: stripego.String(r.Destination),
	}
	if r.Group != "" {
		p.TransferGroup = stripego.String(r.Group)
	}
	if r.Payout != uuid.Nil {
		p.Metadata = map[string]string{MetadataPayout: r.Payout.String()}
	}
	p.SetIdempotencyKey(r.Key)
	return p
}

// listPage is the page size of listings: Stripe's largest.
const listPage = 100

func transferListParams(group string, since time.Time) *stripego.TransferListParams {
	p := &stripego.TransferListParams{}
	p.Limit = stripego.Int64(listPage)
	if group != "" {
		p.TransferGroup = stripego.String(group)
	}
	if !since.IsZero() {
		p.CreatedRange = &stripego.RangeQueryParams{GreaterThanOrEqual: since.Unix()}
	}
	return p
}

func balanceTransactionListParams(since time.Time) *stripego.BalanceTransactionListParams {
	p := &stripego.BalanceTransactionListParams{}
	p.Limit = stripego.Int64(listPage)
	p.AddExpand("data.source") // a charge's payment, for reconciliation
	p.CreatedRange = &stripego.RangeQueryParams{GreaterThanOrEqual: since.Unix()}
	return p
}

// Response mapping: pure functions from stripe-go's objects to adshare's,
// shared by the Client (API answers) and Webhooks (events' objects).

// paymentOf maps a PaymentIntent. Fee, Refunded and Disputed come from its
// latest charge when that is expanded (Payment expands it; events never
// do): Fee only when the charge's balance transaction is in the payment's
// currency (a platform settling in another currency gets 0: the fee is in
// the settlement currency, in BalanceTransactions). ClientSecret is never
// set here: only CreatePayment returns it.
func paymentOf(pi *stripego.PaymentIntent) billing.Payment {
	p := billing.Payment{
		ID:         pi.ID,
		Advertiser: metadataID(pi.Metadata, MetadataAdvertiser),
		Amount:     pi.Amount,
		Currency:   billing.Currency(pi.Currency),
		Status:     paymentStatus(pi),
		Created:    unix(pi.Created),
	}
	if ch := pi.LatestCharge; ch != nil {
		p.Refunded = ch.AmountRefunded
		if ch.Disputed {
			// The charge says it was disputed (and goes on saying so
			// after the dispute closed), not for how much nor how it
			// ended: the charge.dispute.* events do.
			p.Disputed = ch.Amount
		}
		if bt := ch.BalanceTransaction; bt != nil && bt.Currency == pi.Currency {
			p.Fee = bt.Fee
		}
	}
	return p
}

// paymentStatus maps Stripe's seven statuses onto adshare's four. A failed
// attempt sends a PaymentIntent back to requires_payment_method with its
// last_payment_error set (the payer may try again): that is "failed".
func paymentStatus(pi *stripego.PaymentIntent) billing.PaymentStatus {
	switch pi.Status {
	case stripego.PaymentIntentStatusSucceeded:
		return billing.PaymentSucceeded
	case stripego.PaymentIntentStatusCanceled:
		return billing.PaymentCanceled
	case stripego.PaymentIntentStatusRequiresPaymentMethod:
		if pi.LastPaymentError != nil {
			return billing.PaymentFailed
		}
	}
	return billing.PaymentPending
}

// accountOf maps a connected account. RequirementsDue is what is past due,
// then what is currently due.
func accountOf(a *stripego.Account) billing.ConnectedAccount {
	c := billing.ConnectedAccount{
		ID:               a.ID,
		Owner:            metadataID(a.Metadata, MetadataOwner),
		PayoutsEnabled:   a.PayoutsEnabled,
		DetailsSubmitted: a.DetailsSubmitted,
	}
	if a.Capabilities != nil {
		c.TransfersEnabled = a.Capabilities.Transfers == stripego.AccountCapabilityStatusActive
	}
	if r := a.Requirements; r != nil {
		for _, f := range slices.Concat(r.PastDue, r.CurrentlyDue) {
			if !slices.Contains(c.RequirementsDue, f) {
				c.RequirementsDue = append(c.RequirementsDue, f)
			}
		}
		c.DisabledReason = string(r.DisabledReason)
	}
	return c
}

func transferOf(t *stripego.Transfer) billing.Transfer {
	tr := billing.Transfer{
		ID:       t.ID,
		Amount:   t.Amount,
		Currency: billing.Currency(t.Currency),
		Group:    t.TransferGroup,
		Payout:   metadataID(t.Metadata, MetadataPayout),
		Reversed: t.AmountReversed,
		Created:  unix(t.Created),
	}
	if t.Destination != nil {
		tr.Destination = t.Destination.ID
	}
	return tr
}

func balanceTransactionOf(bt *stripego.BalanceTransaction) billing.BalanceTransaction {
	b := billing.BalanceTransaction{
		ID:       bt.ID,
		Type:     string(bt.Type),
		Amount:   bt.Amount,
		Fee:      bt.Fee,
		Net:      bt.Net,
		Currency: billing.Currency(bt.Currency),
		Created:  unix(bt.Created),
	}
	if bt.Source != nil {
		b.Source = bt.Source.ID
		if ch := bt.Source.Charge; ch != nil && ch.PaymentIntent != nil {
			b.Payment = ch.PaymentIntent.ID
		}
	}
	return b
}

// refundOf maps the charge of a charge.refunded event. On API version
// 2023-10-16 a charge's refunds are not included unless expanded, and
// events expand nothing: ID is empty then, and Amount (the charge's total
// refunded) is what to act on.
func refundOf(ch *stripego.Charge) billing.Refund {
	r := billing.Refund{
		Charge:   ch.ID,
		Amount:   ch.AmountRefunded,
		Currency: billing.Currency(ch.Currency),
	}
	if ch.PaymentIntent != nil {
		r.Payment = ch.PaymentIntent.ID
	}
	if ch.Refunds != nil && len(ch.Refunds.Data) > 0 {
		r.ID = ch.Refunds.Data[0].ID // newest first
	}
	return r
}

// disputeOf maps a dispute. Fee is the sum of the fees of its balance
// transactions in its currency (the dispute fee, less any returned).
func disputeOf(d *stripego.Dispute) billing.Dispute {
	out := billing.Dispute{
		ID:       d.ID,
		Amount:   d.Amount,
		Currency: billing.Currency(d.Currency),
		Status:   string(d.Status),
	}
	if d.Charge != nil {
		out.Charge = d.Charge.ID
	}
	if d.PaymentIntent != nil {
		out.Payment = d.PaymentIntent.ID
	}
	for _, bt := range d.BalanceTransactions {
		if bt != nil && bt.Currency == d.Currency {
			out.Fee += bt.Fee
		}
	}
	return out
}

func payoutOf(p *stripego.Payout) billing.ConnectedPayout {
	return billing.ConnectedPayout{
		ID:          p.ID,
		Amount:      p.Amount,
		Currency:    billing.Currency(p.Currency),
		Status:      string(p.Status),
		FailureCode: string(p.FailureCode),
	}
}

// metadataID reads an id adshare wrote; uuid.Nil when it is absent or not
// a UUID (an object adshare did not make).
func metadataID(md map[string]string, key string) uuid.UUID {
	id, err := uuid.Parse(md[key])
	if err != nil {
		return uuid.Nil
	}
	return id
}

// unix is a Stripe timestamp in UTC (zero for zero).
func unix(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}
