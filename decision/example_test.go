package decision_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/adshare/adshare/decision"
)

// house is a Decider of the host's own: every placement gets one house ad.
// Any type with this Decide method can fill spaces (adshare.Config.Decider).
type house struct{}

func (house) Decide(ctx context.Context, req decision.Request) (decision.Response, error) {
	if err := req.Validate(); err != nil {
		return decision.Response{}, err // ErrInvalidRequest, with the field at fault
	}
	resp := decision.Response{UserKey: req.UserKey, Ads: map[string][]decision.Ad{}}
	for _, p := range req.Placements {
		resp.Ads[p.ID] = []decision.Ad{{
			ID: "house-" + p.ID, Source: "house", AdID: "welcome",
			Creative: decision.Creative{Format: "banner", Title: "Welcome aboard"},
			Price:    decision.Price{Model: decision.CPM, Micros: 0}, // house ads earn nothing
		}}
	}
	return resp, nil
}

// A Decider answers a Request for one or more placements; a request that
// breaks the rules is refused with ErrInvalidRequest.
func ExampleDecider() {
	var d decision.Decider = house{}
	ctx := context.Background()
	resp, err := d.Decide(ctx, decision.Request{
		Placements: []decision.Placement{{ID: "top", Formats: []string{"banner"}}, {ID: "bottom", Formats: []string{"banner"}}},
		UserKey:    "viewer-key",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Ads["top"][0].ID, resp.Ads["bottom"][0].Creative.Title)

	_, err = d.Decide(ctx, decision.Request{}) // no placement
	fmt.Println(errors.Is(err, decision.ErrInvalidRequest))
	// Output:
	// house-top Welcome aboard
	// true
}

// Validate checks a request before any ad server is asked, naming the
// field at fault.
func ExampleRequest_Validate() {
	banner := decision.Placement{ID: "slot", Formats: []string{"banner"}}
	fmt.Println(decision.Request{Placements: []decision.Placement{banner}}.Validate())

	err := decision.Request{Placements: []decision.Placement{{ID: "slot"}}}.Validate()
	fmt.Println(errors.Is(err, decision.ErrInvalidRequest))
	fmt.Println(err)
	// Output:
	// <nil>
	// true
	// the decision request is not valid (placements/0/ad_types: at least one ad type or format is required)
}
