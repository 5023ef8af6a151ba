package billing_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/billing"
)

func TestRequestsValidate(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	payment := billing.PaymentRequest{Key: "topup-1", Advertiser: id, Amount: 100, Currency: billing.USD}
	account := billing.AccountRequest{Key: "acct-1", Owner: id, Country: "US"}
	transfer := billing.TransferRequest{Key: "payout-1", Destination: "acct_1", Amount: 100, Currency: billing.USD}
	for _, tc := range []struct {
		description string
		err         error
		fieldHas    string
	}{
		{"a good payment", payment.Validate(), ""},
		{"a good account (no country: the platform's)", billing.AccountRequest{Key: "k", Owner: id}.Validate(), ""},
		{"a good transfer", transfer.Validate(), ""},
		{"a good onboarding link", billing.ValidateOnboardingLink("acct_1", "https://a.example/r", "http://localhost:8080/d"), ""},
		{"payment without key", func() error { r := payment; r.Key = ""; return r.Validate() }(), "Key"},
		{"payment key too long", func() error { r := payment; r.Key = strings.Repeat("k", billing.MaxKeyLength+1); return r.Validate() }(), "Key"},
		{"payment key at the limit", func() error { r := payment; r.Key = strings.Repeat("k", billing.MaxKeyLength); return r.Validate() }(), ""},
		{"payment without advertiser", func() error { r := payment; r.Advertiser = uuid.Nil; return r.Validate() }(), "Advertiser"},
		{"payment of nothing", func() error { r := payment; r.Amount = 0; return r.Validate() }(), "Amount"},
		{"payment in an unknown currency", func() error { r := payment; r.Currency = "USD"; return r.Validate() }(), "Currency"},
		{"account without owner", func() error { r := account; r.Owner = uuid.Nil; return r.Validate() }(), "Owner"},
		{"account in a lower-case country", func() error { r := account; r.Country = "us"; return r.Validate() }(), "Country"},
		{"account without key", func() error { r := account; r.Key = ""; return r.Validate() }(), "Key"},
		{"transfer without destination", func() error { r := transfer; r.Destination = ""; return r.Validate() }(), "Destination"},
		{"transfer of less than nothing", func() error { r := transfer; r.Amount = -5; return r.Validate() }(), "Amount"},
		{"transfer in no currency", func() error { r := transfer; r.Currency = ""; return r.Validate() }(), "Currency"},
		{"transfer without key", func() error { r := transfer; r.Key = ""; return r.Validate() }(), "Key"},
		{"onboarding without account", billing.ValidateOnboardingLink("", "https://a.example/r", "https://a.example/d"), "account"},
		{"onboarding to a relative URL", billing.ValidateOnboardingLink("acct_1", "/r", "https://a.example/d"), "URL"},
		{"onboarding to another scheme", billing.ValidateOnboardingLink("acct_1", "https://a.example/r", "javascript:alert(1)"), "URL"},
	} {
		if tc.fieldHas == "" {
			require.NoError(t, tc.err, tc.description)
			continue
		}
		pe, ok := errors.AsType[*billing.ProcessorError](tc.err)
		require.True(t, ok, "%s: %v", tc.description, tc.err)
		require.True(t, pe.Definite, tc.description)
		require.Equal(t, billing.CodeInvalidRequest, pe.Code, tc.description)
		require.Contains(t, pe.Message, tc.fieldHas, tc.description)
	}
}
