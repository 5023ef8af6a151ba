package tracking_test

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/analytics/tracking"
)

// A tracking token is what a fill gives the app for each ad: sealed with
// AES-256-GCM, so the app can neither read nor change it, and opened by
// analytics when the app reports the ad. Keys rotate: the first seals, all
// open.
func ExampleSealer() {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)

	before, err := tracking.NewSealer([][]byte{oldKey}, clock)
	if err != nil {
		panic(err)
	}
	token, err := before.Seal(tracking.Payload{
		ID:        uuid.MustParse("0190a3b4-0000-7000-8000-000000000001"),
		Ad:        tracking.Ad{Owner: uuid.New(), Source: "local", AdID: "bikes", PriceModel: "cpm", PriceMicros: 2_000_000, Billable: true, IssuedAt: now},
		ExpiresAt: now.Add(time.Hour),
	})
	if err != nil {
		panic(err)
	}

	// After a rotation the new key seals and the old one still opens.
	after, err := tracking.NewSealer([][]byte{newKey, oldKey}, clock)
	if err != nil {
		panic(err)
	}
	p, err := after.Open(token)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.ID, p.AdID, p.PriceMicros, p.Billable)

	flip := byte('A')
	if token[10] == 'A' {
		flip = 'B'
	}
	tampered := token[:10] + string(flip) + token[11:] // one character changed
	_, err = after.Open(tampered)
	fmt.Println(errors.Is(err, tracking.ErrInvalidToken))

	now = now.Add(2 * time.Hour) // past ExpiresAt
	_, err = after.Open(token)
	fmt.Println(errors.Is(err, tracking.ErrExpiredToken))
	// Output:
	// 0190a3b4-0000-7000-8000-000000000001 bikes 2000000 true
	// true
	// true
}
