package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSecretNeverShows(t *testing.T) {
	t.Parallel()
	s := Secret("hunter2-hunter2")
	type config struct {
		Key  Secret
		Keys []Secret
		ByID map[string]Secret
	}
	cfg := config{Key: s, Keys: []Secret{s}, ByID: map[string]Secret{"a": s}}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "key", s, "cfg", cfg)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("cfg", "key", s, "cfg", cfg)
	js, err := json.Marshal(cfg)
	require.NoError(t, err)
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %X", cfg, cfg, cfg, s, s, s, s), logs.String(), string(js),
	} {
		require.NotContains(t, out, "hunter2")
	}

	var back config
	require.NoError(t, json.Unmarshal([]byte(`{"Key":"from-a-file"}`), &back))
	require.Equal(t, "from-a-file", string(back.Key))
}

func TestScrub(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		description string
		in, want    string
		secrets     []Secret
		stripe      bool
	}{
		{description: "configured secret", in: "Authorization was 'Bearer abcdefgh12'", want: "Authorization was 'Bearer [redacted]'", secrets: []Secret{"abcdefgh12"}},
		{description: "short secrets stay (too likely by chance)", in: "a usd amount", want: "a usd amount", secrets: []Secret{"usd"}},
		{description: "every secret", in: "one two-secret three-secret", want: "one [redacted] [redacted]", secrets: []Secret{"two-secret", "three-secret"}},
		{description: "masked live key", in: "Invalid API Key provided: sk_live_****abcd", want: "Invalid API Key provided: [redacted]", stripe: true},
		{description: "restricted and test keys", in: "rk_test_51Habc, sk_test_x", want: "[redacted], [redacted]", stripe: true},
		{description: "webhook secret", in: "secret whsec_abc123 rolled", want: "secret [redacted] rolled", stripe: true},
		{description: "client secret", in: "pi_123_secret_456xyz", want: "pi_123[redacted]", stripe: true},
		{description: "plain ids stay", in: "acct_123 tr_456 pi_789", want: "acct_123 tr_456 pi_789", stripe: true},
	} {
		t.Run(tc.description, func(t *testing.T) {
			t.Parallel()
			got := Scrub(tc.in, tc.secrets...)
			if tc.stripe {
				got = ScrubStripe(tc.in, tc.secrets...)
			}
			require.Equal(t, tc.want, got)
		})
	}
}
