// Package local is adshare's first-party ad engine: a decision.Decider over
// the approved, funded ads that users create (decision.Inventory), the
// embedded default when no Kevel network is configured.
//
// For each placement it keeps the candidates of the requested formats that
// are within schedule, not excluded by the owner, under budget (with daily
// pacing) and under the viewer's frequency cap, and ranks them by expected
// revenue per thousand impressions:
//
//	eCPM = bid                         for CPM bids
//	eCPM = bid × pCTR × 1000           for CPC bids
//	pCTR = (clicks + a) / (impressions + a + b)
//
// where a/(a+b) is the prior CTR (1%) and a+b its strength (200
// impressions): a new ad starts at the prior and its own record takes over
// as it accumulates. A keyword match between the request and the ad raises
// the score by 10% per keyword (at most 50%). At most one ad per advertiser
// per placement.
//
// Inventory and delivery stats are read into an immutable snapshot in the
// background (every Config.RefreshInterval), so a decision touches no store
// except the frequency counter of the few ads it picks: a decision over
// 10,000 candidates costs microseconds, not round trips.
package local
