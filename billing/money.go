package billing

import (
	"fmt"

	"github.com/adshare/adshare/internal/errs"
)

// Currency is a lower-case ISO 4217 code, as Stripe writes it ("usd").
type Currency string

// USD is the default currency.
const USD Currency = "usd"

// minorExponents are the currencies adshare accepts and how many decimals
// their minor unit has (Stripe's list of zero-decimal currencies included).
var minorExponents = map[Currency]int{
	"usd": 2, "eur": 2, "gbp": 2, "cad": 2, "aud": 2, "nzd": 2, "chf": 2, "sek": 2, "nok": 2, "dkk": 2,
	"pln": 2, "czk": 2, "sgd": 2, "hkd": 2, "mxn": 2, "brl": 2, "inr": 2,
	"jpy": 0, "krw": 0,
}

// MicrosPerUnit is how many micros make one unit of any currency.
const MicrosPerUnit = 1_000_000

// ErrUnsupportedCurrency: the currency is not one adshare handles.
var ErrUnsupportedCurrency = errs.New(errs.Invalid, "unsupported_currency", "the currency is not supported")

// Valid reports whether c is a currency adshare handles.
func (c Currency) Valid() bool {
	_, ok := minorExponents[c]
	return ok
}

// MicrosPerMinor is how many micros make one minor unit of c (10 000 for a
// cent, 1 000 000 for a yen), or 0 when c is not valid.
func (c Currency) MicrosPerMinor() int64 {
	exp, ok := minorExponents[c]
	if !ok {
		return 0
	}
	m := int64(MicrosPerUnit)
	for range exp {
		m /= 10
	}
	return m
}

// ToMinor converts micros to whole minor units of c, rounding down; rest
// is what did not make a whole minor unit (0 ≤ rest < MicrosPerMinor). It
// panics on an invalid currency: validate first.
func (c Currency) ToMinor(micros int64) (minor, rest int64) {
	m := c.MicrosPerMinor()
	if m == 0 {
		panic(fmt.Sprintf("billing: ToMinor of an unsupported currency %q", c))
	}
	minor, rest = micros/m, micros%m
	if rest < 0 { // floor, also for negative amounts
		minor, rest = minor-1, rest+m
	}
	return minor, rest
}

// FromMinor converts whole minor units of c to micros. It reports false
// when the result would overflow int64 or c is not valid.
func (c Currency) FromMinor(minor int64) (int64, bool) {
	m := c.MicrosPerMinor()
	if m == 0 || minor > maxInt64/m || minor < -maxInt64/m {
		return 0, false
	}
	return minor * m, true
}

const maxInt64 = 1<<63 - 1
