//go:build race

package tracking_test

// raceEnabled: the race detector makes values escape that otherwise do
// not, so allocation counts are not checked under it.
const raceEnabled = true
