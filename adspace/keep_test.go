package adspace

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
)

// TestKeepAdsNeverWritesItsInput: the Decider's answer may be shared (a
// cached one read by other fills at once), so filtering it keeps it as it
// was: all kept is the same slice, and a drop anywhere makes a copy of
// the rest, in order.
func TestKeepAdsNeverWritesItsInput(t *testing.T) {
	t.Parallel()
	ads := make([]decision.Ad, 5)
	for i := range ads {
		ads[i] = decision.Ad{ID: strconv.Itoa(i)}
	}
	before := append([]decision.Ad(nil), ads...)
	ids := func(ads []decision.Ad) []string {
		out := []string{}
		for _, a := range ads {
			out = append(out, a.ID)
		}
		return out
	}
	all := keepAds(ads, func(*decision.Ad) bool { return true })
	require.Same(t, &ads[0], &all[0], "nothing dropped: no copy")
	require.Len(t, all, 5)
	for drop, want := range map[string][]string{
		"0": {"1", "2", "3", "4"}, "2": {"0", "1", "3", "4"}, "4": {"0", "1", "2", "3"},
	} {
		got := keepAds(ads, func(a *decision.Ad) bool { return a.ID != drop })
		require.Equal(t, want, ids(got), drop)
		require.Equal(t, before, ads, "dropping %s wrote nothing into the input", drop)
		got[0].ID = "changed"
		require.Equal(t, before, ads, "the copy is the caller's own")
	}
	require.Empty(t, keepAds(ads, func(*decision.Ad) bool { return false }))
	require.Equal(t, before, ads)
	require.Empty(t, keepAds(nil, func(*decision.Ad) bool { return false }))
}
