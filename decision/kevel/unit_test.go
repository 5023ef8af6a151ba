package kevel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestToMicros(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in    string
		scale int64
		want  int64
		ok    bool
	}{
		{"2", 1, 2_000_000, true},
		{"2.5", 1, 2_500_000, true},
		{"0.0000005", 1, 0, true},  // half to even: 0.5 → 0
		{"0.0000015", 1, 2, true},  // 1.5 → 2
		{"0.0000025", 1, 2, true},  // 2.5 → 2
		{"0.00000251", 1, 3, true}, // above half
		{"1.5e-3", 1, 1500, true},
		{"1E2", 1, 100_000_000, true},
		{"0.0025", 1000, 2_500_000, true}, // revenue per impression → CPM
		{"9223372036854.775807", 1, 9223372036854775807, true},
		{"9223372036854.775808", 1, 0, false}, // overflows int64
		{"-1", 1, 0, false},
		{"1e31", 1, 0, false},
		{"1e-31", 1, 0, false},
		{"", 1, 0, false},
		{"abc", 1, 0, false},
		{strings.Repeat("1", 65), 1, 0, false},
	} {
		got, ok := toMicros(json.Number(tt.in), tt.scale)
		require.Equal(t, tt.ok, ok, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
}

func TestFormatMicros(t *testing.T) {
	t.Parallel()
	for in, want := range map[int64]string{0: "0", 1: "0.000001", 1_500_000: "1.5", 100_000_000: "100", -250_000: "-0.25", 12_345_678: "12.345678"} {
		require.Equal(t, want, formatMicros(in))
	}
}

func TestBreakerOpensOnTheFailureRatio(t *testing.T) {
	t.Parallel()
	var changes []string
	b := newBreaker(BreakerConfig{ConsecutiveFailures: 100, FailureRatio: 0.5, MinRequests: 10, Window: 10 * time.Second, CoolDown: time.Second},
		func(from, to breakerState) { changes = append(changes, from.String()+"→"+to.String()) })
	now := t0
	// Alternating failures: a 50% ratio, never 100 in a row.
	for i := range 9 {
		ok, probe, _ := b.allow(now)
		require.True(t, ok)
		b.record(now, probe, []verdict{verdictFailure, verdictSuccess}[i%2])
	}
	require.Equal(t, stateClosed, b.current(), "9 calls: below MinRequests")
	b.record(now, false, verdictSuccess)
	require.Equal(t, stateClosed, b.current(), "5 failures of 10 needs the 10th to fail")
	b.record(now, false, verdictFailure)
	require.Equal(t, stateOpen, b.current())
	require.Equal(t, []string{"closed→open"}, changes)

	ok, _, wait := b.allow(now.Add(400 * time.Millisecond))
	require.False(t, ok)
	require.Equal(t, 600*time.Millisecond, wait)
	ok, probe, _ := b.allow(now.Add(time.Second))
	require.True(t, ok)
	require.True(t, probe)
	ok, _, _ = b.allow(now.Add(time.Second))
	require.False(t, ok, "one probe at a time")
	b.record(now.Add(time.Second), true, verdictNeutral)
	ok, probe, _ = b.allow(now.Add(time.Second))
	require.True(t, ok && probe, "a neutral probe lets the next call probe")
	b.record(now.Add(time.Second), true, verdictSuccess)
	require.Equal(t, stateClosed, b.current())
	require.Equal(t, []string{"closed→open", "open→half-open", "half-open→closed"}, changes)
}

func TestBreakerWindowForgetsOldFailures(t *testing.T) {
	t.Parallel()
	b := newBreaker(BreakerConfig{ConsecutiveFailures: 100, FailureRatio: 0.5, MinRequests: 4, Window: 10 * time.Second, CoolDown: time.Second}, nil)
	b.record(t0, false, verdictSuccess)
	for range 3 {
		b.record(t0, false, verdictFailure)
	}
	require.Equal(t, stateOpen, b.current(), "3 of 4 failed")

	b = newBreaker(BreakerConfig{ConsecutiveFailures: 100, FailureRatio: 0.5, MinRequests: 4, Window: 10 * time.Second, CoolDown: time.Second}, nil)
	b.record(t0, false, verdictSuccess)
	b.record(t0, false, verdictFailure)
	b.record(t0, false, verdictSuccess)
	later := t0.Add(11 * time.Second)
	b.record(later, false, verdictFailure)
	b.record(later, false, verdictFailure)
	require.Equal(t, stateClosed, b.current(), "the first 3 calls left the window: 2 calls are below MinRequests (else 3 of 5 failed)")
}

func TestBreakerDisabled(t *testing.T) {
	t.Parallel()
	b := newBreaker(BreakerConfig{Disabled: true}, nil)
	for range 100 {
		b.record(t0, false, verdictFailure)
	}
	ok, _, _ := b.allow(t0)
	require.True(t, ok)
}

func TestTokenBucket(t *testing.T) {
	t.Parallel()
	b := newTokenBucket(10, 2)
	for range 2 {
		ok, _ := b.allow(t0)
		require.True(t, ok)
	}
	ok, wait := b.allow(t0)
	require.False(t, ok)
	require.Equal(t, 100*time.Millisecond, wait)
	ok, _ = b.allow(t0.Add(100 * time.Millisecond))
	require.True(t, ok)
	ok, _ = b.allow(t0.Add(time.Hour))
	require.True(t, ok)
	ok, _ = b.allow(t0.Add(time.Hour))
	require.True(t, ok)
	ok, _ = b.allow(t0.Add(time.Hour))
	require.False(t, ok, "refills up to the burst only")
	ok, _ = (*tokenBucket)(nil).allow(t0)
	require.True(t, ok, "nil: no limit")
	require.Nil(t, newTokenBucket(-1, 1))
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"":                              DefaultRetryAfter,
		"junk":                          DefaultRetryAfter,
		"7":                             7 * time.Second,
		"0":                             0,
		"-3":                            DefaultRetryAfter,
		"999999":                        MaxRetryAfter,
		"Sun, 01 Mar 2026 12:00:42 GMT": 42 * time.Second,
		"Sun, 01 Mar 2026 11:00:00 GMT": 0,
	} {
		require.Equal(t, want, retryAfter(http.Header{"Retry-After": {in}}, t0), in)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

func TestInterpretTransportErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		description string
		o           outcome
		want        error
	}{
		{"2xx", outcome{status: 204}, nil},
		{"our deadline", outcome{err: errors.New("read: connection reset"), ctxErr: context.DeadlineExceeded}, decision.ErrTimeout},
		{"a wrapped deadline", outcome{err: fmt.Errorf("post: %w", context.DeadlineExceeded)}, decision.ErrTimeout},
		{"cancelled", outcome{err: context.Canceled}, decision.ErrTimeout},
		{"net timeout", outcome{err: &net.OpError{Op: "read", Err: timeoutErr{}}}, decision.ErrTimeout},
		{"os deadline", outcome{err: os.ErrDeadlineExceeded}, decision.ErrTimeout},
		{"refused", outcome{err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, decision.ErrUnavailable},
		{"too large", outcome{err: errTooLarge, ctxErr: context.DeadlineExceeded}, decision.ErrUnavailable},
		{"malformed", outcome{err: fmt.Errorf("%w: x", errMalformed)}, decision.ErrUnavailable},
		{"404", outcome{status: 404}, decision.ErrUnavailable},
		{"413", outcome{status: 413}, decision.ErrInvalidRequest},
		{"3xx (redirects are not followed)", outcome{status: 302}, decision.ErrUnavailable},
	} {
		err := interpret(tt.o)
		if tt.want == nil {
			require.NoError(t, err, tt.description)
			continue
		}
		require.ErrorIs(t, err, tt.want, tt.description)
	}
}

func TestDecisionsShapes(t *testing.T) {
	t.Parallel()
	var r DecisionResponse
	require.NoError(t, json.Unmarshal([]byte(`{"decisions": {"a": null, "b": {"adId": 1}, "c": [{"adId": 2}, null, {"adId": 3}], "d": []}}`), &r))
	require.Nil(t, r.Decisions["a"])
	require.Equal(t, Decisions{{AdID: 1}}, r.Decisions["b"])
	require.Equal(t, Decisions{{AdID: 2}, {AdID: 3}}, r.Decisions["c"])
	require.Empty(t, r.Decisions["d"])
	require.Error(t, json.Unmarshal([]byte(`{"decisions": {"a": "x"}}`), &r))
}

func TestExtraRoundTrips(t *testing.T) {
	t.Parallel()
	in := `{"placements":[{"divName":"p","adTypes":[5],"eCpmOverride":3.2,"skipFilters":{"keyword":true,"future":true}}],"block":{"a":1},"searchTerm":"x"}`
	var r DecisionRequest
	require.NoError(t, json.Unmarshal([]byte(in), &r))
	require.Equal(t, json.RawMessage(`{"a":1}`), r.Extra["block"])
	require.Equal(t, json.RawMessage(`3.2`), r.Placements[0].Extra["eCpmOverride"])
	require.Equal(t, json.RawMessage(`true`), r.Placements[0].SkipFilters.Extra["future"])
	out, err := json.Marshal(r)
	require.NoError(t, err)
	require.JSONEq(t, in, string(out))

	// A known name in Extra never doubles a field; invalid JSON is refused.
	r.Extra["searchTerm"] = json.RawMessage(`"shadow"`)
	out, err = json.Marshal(r)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(out), "searchTerm"))
	r.Extra["bad"] = json.RawMessage(`{`)
	_, err = json.Marshal(r)
	require.Error(t, err)

	var d Decision
	require.NoError(t, json.Unmarshal([]byte(`{"adId":1,"relevancyScore":0.5}`), &d))
	require.Equal(t, json.RawMessage(`0.5`), d.Extra["relevancyScore"])
}

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := Secret("hunter2")
	cfg := Config{NetworkID: 1, APIKey: s}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "key", s, "cfg", cfg)
	b, err := json.Marshal(struct{ Key Secret }{s})
	require.NoError(t, err)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", cfg, cfg, cfg, s, s, s), logs.String(), string(b)} {
		require.NotContains(t, out, "hunter2")
	}
}

func TestHostKey(t *testing.T) {
	t.Parallel()
	f, err := NewFirer(FirerConfig{NetworkID: 7, BaseURL: "https://Ads.Example.com:8443/"})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"e-7.adzerk.net": "https", "ads.example.com:8443": "https"}, f.allowed)
}

// TestOnceGuardAgainstAModel runs random operations against a plain map.
func TestOnceGuardAgainstAModel(t *testing.T) {
	t.Parallel()
	var evictions int
	g := newOnceGuard(10*time.Second, 50, func() { evictions++ })
	model := map[guardKey]time.Time{} // key → expiry
	order := []guardKey{}
	r := rand.New(rand.NewPCG(1, 2))
	now := t0
	for i := range 20_000 {
		now = now.Add(time.Duration(r.IntN(20)) * time.Millisecond)
		k := keyOf(fmt.Sprint(r.IntN(120)))
		if r.IntN(10) == 0 {
			g.remove(k)
			delete(model, k)
			continue
		}
		// The model: expire, refuse live keys, evict the oldest at the bound.
		for kk, exp := range model {
			if !exp.After(now) {
				delete(model, kk)
			}
		}
		_, live := model[k]
		got := g.add(k, now)
		require.Equal(t, !live, got, "step %d", i)
		if got {
			if len(model) >= 50 {
				for len(order) > 0 {
					oldest := order[0]
					order = order[1:]
					if _, ok := model[oldest]; ok {
						delete(model, oldest)
						break
					}
				}
			}
			model[k] = now.Add(10 * time.Second)
			order = slicesDelete(order, k)
			order = append(order, k)
		}
		require.Equal(t, len(model), g.len(), "step %d", i)
	}
	require.Positive(t, evictions)
}

func slicesDelete(s []guardKey, k guardKey) []guardKey {
	out := s[:0]
	for _, x := range s {
		if x != k {
			out = append(out, x)
		}
	}
	return out
}
