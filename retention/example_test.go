package retention_test

import (
	"fmt"
	"time"

	"github.com/adshare/adshare/retention"
)

// The documented defaults, a policy that keeps raw events for ever, and
// one too short to be deliberate.
func ExamplePolicy() {
	days := func(d time.Duration) int { return int(d / (24 * time.Hour)) }
	p := retention.DefaultPolicy()
	fmt.Println("raw events", days(p.RawEvents), "days; audit", days(p.Audit), "days; IP addresses", days(p.IPAddresses), "days")

	forever := retention.Policy{RawEvents: -1}
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	_, purged := forever.Cutoffs(now)[retention.RawEvents]
	fmt.Println("raw events purged:", purged)

	fmt.Println(retention.Policy{Audit: 24 * time.Hour}.Validate())
	// Output:
	// raw events 400 days; audit 400 days; IP addresses 30 days
	// raw events purged: false
	// retention: Audit must be at least 30 days
}
