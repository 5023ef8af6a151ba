package decisiontest_test

import (
	"testing"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/decisiontest"
)

func TestFakePassesTheSuite(t *testing.T) {
	t.Parallel()
	decisiontest.RunDecider(t, func(t *testing.T) decisiontest.Harness {
		f := &decisiontest.Fake{}
		return decisiontest.Harness{Decider: f, Stock: func(t *testing.T, stock []decisiontest.Stock) {
			for _, s := range stock {
				f.Ads = append(f.Ads, decision.Ad{
					Source: "fake", AdvertiserID: s.AdvertiserID, Categories: s.Categories,
					Creative: decision.Creative{Format: s.Format, Title: s.Title},
					Price:    decision.Price{Model: decision.CPM, Micros: s.PriceMicros},
				})
			}
		}}
	})
}
