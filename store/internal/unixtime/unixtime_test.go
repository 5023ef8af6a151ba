package unixtime_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/store/internal/unixtime"
)

func TestCeil(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ms, us := base.UnixMilli(), base.UnixMicro()
	for _, tc := range []struct {
		description string
		t           time.Time
		milli       int64
		micro       int64
	}{
		{"a whole millisecond stays", base, ms, us},
		{"a nanosecond past rounds up", base.Add(time.Nanosecond), ms + 1, us + 1},
		{"a whole microsecond stays a microsecond", base.Add(time.Microsecond), ms + 1, us + 1},
		{"just under a millisecond", base.Add(time.Millisecond - time.Nanosecond), ms + 1, us + 1000},
		{"before the epoch rounds towards it", time.Unix(0, -1500), 0, -1},
		{"a whole negative millisecond stays", time.UnixMilli(-3), -3, -3000},
		{"another time zone, the same instant", base.Add(time.Nanosecond).In(time.FixedZone("x", 3600)), ms + 1, us + 1},
	} {
		t.Run(tc.description, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.milli, unixtime.CeilMilli(tc.t), "milliseconds")
			require.Equal(t, tc.micro, unixtime.CeilMicro(tc.t), "microseconds")
		})
	}
}
