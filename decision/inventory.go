package decision

import (
	"context"
	"time"
)

// Candidate is an ad a first-party engine may choose: approved, funded
// content within its schedule.
type Candidate struct {
	// ID identifies the ad (the content id).
	ID           string
	AdvertiserID string
	// Format is the shape the ad renders in; a placement must ask for it.
	Format     string
	Creative   Creative
	Categories []string
	Keywords   []string
	// Bid is what the advertiser pays per thousand impressions or per click.
	Bid Price
	// DailyBudgetMicros (0: none) and TotalBudgetMicros cap spending.
	DailyBudgetMicros int64
	TotalBudgetMicros int64
	// Start and End bound when it may run (zero End: open).
	Start time.Time
	End   time.Time
}

// Inventory supplies the candidates of a first-party engine.
type Inventory interface {
	// Candidates returns every ad that may run at now.
	Candidates(ctx context.Context, now time.Time) ([]Candidate, error)
}

// AdStats are an ad's delivery so far, for pacing and ranking.
type AdStats struct {
	SpentTodayMicros int64
	SpentTotalMicros int64
	Impressions      int64
	Clicks           int64
}

// StatsSource reports delivery per ad. The analytics pipeline keeps it.
type StatsSource interface {
	// AdStats returns the stats of the given ads for the day containing
	// day (UTC); ads without stats are absent from the map.
	AdStats(ctx context.Context, ids []string, day time.Time) (map[string]AdStats, error)
}

// FrequencyCounter counts how often each viewer was shown each ad within a
// rolling window, for frequency caps.
type FrequencyCounter interface {
	// Counts returns, for each id, how often it was recorded for viewer in
	// the current window (absent means zero).
	Counts(ctx context.Context, viewer string, ids []string) (map[string]int, error)
	// Record counts one showing of each id to viewer.
	Record(ctx context.Context, viewer string, ids []string) error
}
