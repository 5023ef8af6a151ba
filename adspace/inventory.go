package adspace

import (
	"context"
	"errors"
	"time"

	"github.com/adshare/adshare/decision"
)

// Inventory is the first-party engine's supply (a decision.Inventory): the
// approved content within its schedule, read from the content store. It
// needs nothing but the store, so a host builds the local engine before
// the Service that the engine then fills for.
type Inventory struct {
	contents ContentStore
}

var _ decision.Inventory = (*Inventory)(nil)

// NewInventory returns the inventory of the content in contents.
func NewInventory(contents ContentStore) (*Inventory, error) {
	if contents == nil {
		return nil, errors.New("adspace: NewInventory needs the ContentStore (store/memory.New() or store/postgres)")
	}
	return &Inventory{contents: contents}, nil
}

// Candidates implements decision.Inventory: the content that may run at
// now, as candidates. It returns the store's error when it cannot read.
func (inv *Inventory) Candidates(ctx context.Context, now time.Time) ([]decision.Candidate, error) {
	contents, err := inv.contents.ServableContent(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make([]decision.Candidate, 0, len(contents))
	for _, c := range contents {
		out = append(out, candidate(c))
	}
	return out, nil
}

// candidate is c as the local engine sees it. Sizes are the image's own;
// Fill gives an ad without one its format's size.
func candidate(c Content) decision.Candidate {
	model := decision.CPM
	if c.Bid.Model == BidCPC {
		model = decision.CPC
	}
	return decision.Candidate{
		ID: c.ID.String(), AdvertiserID: c.AdvertiserID.String(), Format: c.Format,
		Creative: decision.Creative{
			Format: c.Format, Title: c.Title, Body: c.Body, ImageURL: c.ImageURL,
			Width: c.Image.Width, Height: c.Image.Height,
			CallToAction: c.CallToAction, LandingURL: c.ClickURL,
		},
		Categories: c.Categories, Keywords: c.Keywords,
		Bid:               decision.Price{Model: model, Micros: c.Bid.Micros},
		DailyBudgetMicros: c.DailyBudgetMicros, TotalBudgetMicros: c.TotalBudgetMicros,
		Start: c.Schedule.Start, End: c.Schedule.End,
	}
}
