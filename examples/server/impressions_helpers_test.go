package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics/tracking"
)

// appAgent is the User-Agent of the app's event reports (Go's own counts
// as a bot).
const appAgent = "AdshareApp/1.0 (Android 15)"

// impressionSealer seals the tracking tokens a fill would have handed
// out: billable CPM impressions of a local ad, issued long enough ago to
// be viewable, each for its own viewer.
type impressionSealer struct {
	sealer *tracking.Sealer
}

// newImpressionSealer seals with the first of the comma-separated base64
// tracking keys the servers were given (ADSHARE_TRACKING_KEYS).
func newImpressionSealer(tb testing.TB, trackingKeys string) *impressionSealer {
	tb.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.Split(trackingKeys, ",")[0])
	require.NoError(tb, err)
	s, err := tracking.NewSealer([][]byte{key}, nil)
	require.NoError(tb, err)
	return &impressionSealer{sealer: s}
}

// seal returns the token of one new impression in owner's space.
func (s *impressionSealer) seal(tb testing.TB, owner uuid.UUID) string {
	tb.Helper()
	return s.sealAd(tb, owner, fmt.Sprint("viewer-", uuid.NewString()), "ad-1")
}

// sealAd returns the token of one new impression of ad by viewer in
// owner's space.
func (s *impressionSealer) sealAd(tb testing.TB, owner uuid.UUID, viewer, ad string) string {
	tb.Helper()
	now := time.Now().UTC()
	tok, err := s.sealer.Seal(tracking.Payload{
		ID: uuid.Must(uuid.NewV7()),
		Ad: tracking.Ad{Owner: owner, ViewerKey: viewer, Placement: "main",
			Source: "local", AdID: ad, AdvertiserID: "adv-1", PriceModel: "cpm", PriceMicros: 2_000_000, Billable: true,
			IssuedAt: now.Add(-5 * time.Second)},
		ExpiresAt: now.Add(time.Hour),
	})
	require.NoError(tb, err)
	return tok
}

// eventResult is one event's answer from POST /events.
type eventResult struct {
	TrackingID uuid.UUID `json:"tracking_id"`
	Status     string    `json:"status"`
	Valid      bool      `json:"valid"`
}

// postImpressions reports the tokens as viewable impressions in one
// batch, as the app does, and returns the answer per event; err is a
// transport error or a status other than 200.
func postImpressions(client *http.Client, base string, tokens []string) ([]eventResult, error) {
	events := make([]map[string]string, len(tokens))
	for i, tok := range tokens {
		events[i] = map[string]string{"type": "impression", "token": tok}
	}
	body, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, base+"/events", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", appAgent)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST /events: %d %s", resp.StatusCode, raw)
	}
	var out struct {
		Results []eventResult `json:"results"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != len(tokens) {
		return nil, fmt.Errorf("POST /events: %d results for %d events", len(out.Results), len(tokens))
	}
	return out.Results, nil
}
