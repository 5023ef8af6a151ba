// Package decisiontest helps test code that uses a decision.Decider: a
// programmable fake, and the behaviour suite that every Decider in adshare
// passes (host applications can run it against their own).
package decisiontest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/adshare/adshare/decision"
)

// Fake is a Decider for tests. Its zero value answers every valid request
// with no ads. It validates requests like a real Decider, records them, and
// honours ctx. It is safe for concurrent use; set its fields before use.
type Fake struct {
	// Ads are returned for every placement (up to the placement's count)
	// whose formats include the ad's format, each with a fresh decision ID.
	Ads []decision.Ad
	// Err, when set, is returned instead of an answer.
	Err error
	// Delay is waited before answering (or until ctx ends).
	Delay time.Duration
	// Func, when set, answers instead of Ads and Err.
	Func func(ctx context.Context, req decision.Request) (decision.Response, error)

	mu    sync.Mutex
	calls []decision.Request
	seq   int
}

var _ decision.Decider = (*Fake)(nil)

// Decide implements decision.Decider.
func (f *Fake) Decide(ctx context.Context, req decision.Request) (decision.Response, error) {
	f.mu.Lock()
	f.calls = append(f.calls, req)
	f.mu.Unlock()
	if err := req.Validate(); err != nil {
		return decision.Response{}, err
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return decision.Response{}, decision.ErrTimeout.WithCause(ctx.Err())
		}
	}
	if err := ctx.Err(); err != nil {
		return decision.Response{}, decision.ErrTimeout.WithCause(err)
	}
	if f.Func != nil {
		return f.Func(ctx, req)
	}
	if f.Err != nil {
		return decision.Response{}, f.Err
	}
	resp := decision.Response{UserKey: req.UserKey, Ads: map[string][]decision.Ad{}}
	for _, p := range req.Placements {
		ads := []decision.Ad{}
		for _, ad := range f.Ads {
			if len(ads) == p.CountOrOne() {
				break
			}
			if excluded(ad, req.Exclude) || (len(p.Formats) > 0 && !slices.Contains(p.Formats, ad.Creative.Format)) {
				continue
			}
			f.mu.Lock()
			f.seq++
			ad.ID = fmt.Sprintf("fake-%d", f.seq)
			f.mu.Unlock()
			ads = append(ads, ad)
		}
		resp.Ads[p.ID] = ads
	}
	return resp, nil
}

// Calls returns the requests seen so far.
func (f *Fake) Calls() []decision.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]decision.Request(nil), f.calls...)
}

func excluded(ad decision.Ad, ex decision.Exclusions) bool {
	for _, a := range ex.Advertisers {
		if a == ad.AdvertiserID {
			return true
		}
	}
	for _, c := range ex.Creatives {
		if c == ad.CreativeID {
			return true
		}
	}
	for _, c := range ex.Categories {
		for _, ac := range ad.Categories {
			if c == ac {
				return true
			}
		}
	}
	return false
}
