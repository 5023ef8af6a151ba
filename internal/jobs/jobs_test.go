package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/jobs"
)

func TestBackoffDoublesUpToTheCapWithJitter(t *testing.T) {
	t.Parallel()
	o, err := (&jobs.KindOpts{MinBackoff: time.Second, MaxBackoff: 10 * time.Second}).WithDefaults()
	require.NoError(t, err)
	tests := []struct {
		attempt int
		full    time.Duration
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second},
		{5, 10 * time.Second}, {50, 10 * time.Second}, {1 << 20, 10 * time.Second},
	}
	for _, tt := range tests {
		seen := make(map[time.Duration]bool)
		for range 200 {
			d := o.Backoff(tt.attempt)
			require.GreaterOrEqual(t, d, tt.full/2, "attempt %d", tt.attempt)
			require.LessOrEqual(t, d, tt.full, "attempt %d", tt.attempt)
			seen[d] = true
		}
		require.Greater(t, len(seen), 1, "attempt %d: the backoff has jitter", tt.attempt)
	}
}

func TestKindOptsDefaults(t *testing.T) {
	t.Parallel()
	o, err := (*jobs.KindOpts)(nil).WithDefaults()
	require.NoError(t, err)
	require.Equal(t, jobs.KindOpts{
		Timeout:     jobs.DefaultTimeout,
		MaxAttempts: jobs.DefaultMaxAttempts,
		MinBackoff:  jobs.DefaultMinBackoff,
		MaxBackoff:  jobs.DefaultMaxBackoff,
	}, o)

	o, err = (&jobs.KindOpts{MinBackoff: 2 * time.Hour}).WithDefaults()
	require.NoError(t, err)
	require.Equal(t, 2*time.Hour, o.MaxBackoff, "an unset cap is never below MinBackoff")

	for _, bad := range []jobs.KindOpts{
		{Timeout: -1}, {MaxAttempts: -1}, {MinBackoff: -1}, {MaxBackoff: -1},
		{MinBackoff: time.Minute, MaxBackoff: time.Second},
	} {
		_, err := bad.WithDefaults()
		require.ErrorIs(t, err, jobs.ErrInvalid, "%+v", bad)
	}
}

func TestPermanentAndSnooze(t *testing.T) {
	t.Parallel()
	cause := errors.New("cause")
	p := jobs.Permanent(cause)
	require.True(t, jobs.IsPermanent(p))
	require.True(t, jobs.IsPermanent(fmt.Errorf("wrapped: %w", p)))
	require.ErrorIs(t, p, cause, "the cause stays visible")
	require.False(t, jobs.IsPermanent(cause))
	require.True(t, jobs.IsPermanent(jobs.Permanent(nil)), "Permanent(nil) is still a failure")
	require.Error(t, jobs.Permanent(nil))

	d, ok := jobs.SnoozedFor(fmt.Errorf("wrapped: %w", jobs.Snooze(time.Minute)))
	require.True(t, ok)
	require.Equal(t, time.Minute, d)
	d, ok = jobs.SnoozedFor(jobs.Snooze(-time.Second))
	require.True(t, ok)
	require.Zero(t, d)
	_, ok = jobs.SnoozedFor(cause)
	require.False(t, ok)
}

func TestTypedDecodesArgsAndRefusesBadOnesForGood(t *testing.T) {
	t.Parallel()
	type args struct {
		N int `json:"n"`
	}
	var got args
	h := jobs.Typed(func(_ context.Context, a args) error {
		got = a
		return nil
	})
	require.NoError(t, h(context.Background(), json.RawMessage(`{"n":7}`)))
	require.Equal(t, args{N: 7}, got)
	err := h(context.Background(), json.RawMessage(`{"n":"seven"}`))
	require.Error(t, err)
	require.True(t, jobs.IsPermanent(err))
}

func TestValidKind(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"billing.settle", "billing.hold_release", "a", "privacy.export2"} {
		require.NoError(t, jobs.ValidKind(ok), ok)
	}
	for _, bad := range []string{"", "Billing.settle", "billing.", ".billing", "a..b", "a b", "1a", "a.1b", "a-b", string(make([]byte, 101))} {
		require.ErrorIs(t, jobs.ValidKind(bad), jobs.ErrInvalid, "%q", bad)
	}
}

func TestRunTurnsAPanicIntoAnError(t *testing.T) {
	t.Parallel()
	k := &jobs.Kind{Name: "test.panic", Opts: jobs.KindOpts{Timeout: time.Second}, Handler: func(context.Context, json.RawMessage) error {
		panic("boom")
	}}
	err := k.Run(context.Background(), nil)
	var p *jobs.PanicError
	require.ErrorAs(t, err, &p)
	require.Equal(t, "boom", p.Value)
	require.NotEmpty(t, p.Stack)
}
