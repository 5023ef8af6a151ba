package adspace

import (
	"context"
	"time"

	"github.com/adshare/adshare/decision"
)

var _ decision.Inventory = (*Service)(nil)

// Candidates implements decision.Inventory: approved content within its
// schedule, as the local engine's candidates.
func (s *Service) Candidates(ctx context.Context, now time.Time) ([]decision.Candidate, error) {
	contents, err := s.cfg.Contents.ServableContent(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make([]decision.Candidate, 0, len(contents))
	for _, c := range contents {
		out = append(out, s.candidate(c))
	}
	return out, nil
}

func (s *Service) candidate(c Content) decision.Candidate {
	f := s.formats[c.Format]
	model := decision.CPM
	if c.Bid.Model == BidCPC {
		model = decision.CPC
	}
	return decision.Candidate{
		ID: c.ID.String(), AdvertiserID: c.AdvertiserID.String(), Format: c.Format,
		Creative: decision.Creative{
			Format: c.Format, Title: c.Title, Body: c.Body, ImageURL: c.ImageURL,
			Width: firstNonZero(c.Image.Width, f.Width), Height: firstNonZero(c.Image.Height, f.Height),
			CallToAction: c.CallToAction, LandingURL: c.ClickURL,
		},
		Categories: c.Categories, Keywords: c.Keywords,
		Bid:               decision.Price{Model: model, Micros: c.Bid.Micros},
		DailyBudgetMicros: c.DailyBudgetMicros, TotalBudgetMicros: c.TotalBudgetMicros,
		Start: c.Schedule.Start, End: c.Schedule.End,
	}
}

func firstNonZero(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}
