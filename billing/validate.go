package billing

import (
	"net/url"

	"github.com/google/uuid"
)

// MaxKeyLength is the longest idempotency key a Processor takes (Stripe's
// limit, in bytes).
const MaxKeyLength = 255

// CodeInvalidRequest is the ProcessorError code of a request refused
// before it reached the processor (see the requests' Validate methods).
const CodeInvalidRequest = "invalid_request"

// Validate checks r before it is sent. It returns a definite
// *ProcessorError with code CodeInvalidRequest naming the field, or nil.
// Processors call it first, so that a fake and the real processor refuse
// the same requests.
func (r PaymentRequest) Validate() error {
	switch {
	case !validKey(r.Key):
		return invalidRequest("PaymentRequest.Key must be the top-up's id: 1 to 255 bytes")
	case r.Advertiser == uuid.Nil:
		return invalidRequest("PaymentRequest.Advertiser is required")
	case r.Amount <= 0:
		return invalidRequest("PaymentRequest.Amount must be positive (minor units)")
	case !r.Currency.Valid():
		return invalidRequest("PaymentRequest.Currency is not a supported currency")
	}
	return nil
}

// Validate checks r before it is sent, as [PaymentRequest.Validate] does.
func (r AccountRequest) Validate() error {
	switch {
	case !validKey(r.Key):
		return invalidRequest("AccountRequest.Key must be 1 to 255 bytes")
	case r.Owner == uuid.Nil:
		return invalidRequest("AccountRequest.Owner is required")
	case r.Country != "" && !isCountry(r.Country):
		return invalidRequest(`AccountRequest.Country must be an ISO 3166-1 alpha-2 code in capitals ("US"), or empty for the platform's`)
	}
	return nil
}

// Validate checks r before it is sent, as [PaymentRequest.Validate] does.
func (r TransferRequest) Validate() error {
	switch {
	case !validKey(r.Key):
		return invalidRequest("TransferRequest.Key must be the payout's id: 1 to 255 bytes")
	case r.Destination == "":
		return invalidRequest("TransferRequest.Destination (the connected account id) is required")
	case r.Amount <= 0:
		return invalidRequest("TransferRequest.Amount must be positive (minor units)")
	case !r.Currency.Valid():
		return invalidRequest("TransferRequest.Currency is not a supported currency")
	}
	return nil
}

// ValidateOnboardingLink checks the arguments of Processor.OnboardingLink
// as [PaymentRequest.Validate] checks a request: an account id, and two
// absolute http(s) URLs (Stripe takes http only in test mode).
func ValidateOnboardingLink(accountID, refreshURL, returnURL string) error {
	if accountID == "" {
		return invalidRequest("the connected account id is required")
	}
	for _, u := range []string{refreshURL, returnURL} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return invalidRequest("the refresh and return URLs must be absolute https URLs")
		}
	}
	return nil
}

func validKey(k string) bool { return k != "" && len(k) <= MaxKeyLength }

func isCountry(c string) bool {
	return len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z'
}

func invalidRequest(msg string) *ProcessorError {
	return NewProcessorError(true, CodeInvalidRequest, msg, "", nil)
}
