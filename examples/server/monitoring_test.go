package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const monitoringDir = "deploy/monitoring"

// promtool returns the path of Prometheus' promtool (Debian: apt-get
// install prometheus), which these tests need.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool is needed (Debian: apt-get install prometheus; .ci/run installs it)")
	return path
}

func TestMonitoringRules(t *testing.T) {
	t.Parallel()
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", "adshare-rules.yml"}, {"test", "rules", "adshare-rules_test.yml", "adshare-rules_slow_test.yml"}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = monitoringDir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	}
}

// An alert without a test is an alert nobody saw fire: every alert of the
// rule file has a case in the rule tests, and a runbook line.
func TestEveryAlertIsTestedAndHasARunbook(t *testing.T) {
	t.Parallel()
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Record      string            `yaml:"record"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, filepath.Join(monitoringDir, "adshare-rules.yml"), &rules)
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	fired := map[string]bool{}
	for _, file := range []string{"adshare-rules_test.yml", "adshare-rules_slow_test.yml"} {
		tests.Tests = nil
		readYAML(t, filepath.Join(monitoringDir, file), &tests)
		for _, tc := range tests.Tests {
			for _, a := range tc.AlertRuleTest {
				fired[a.Alertname] = fired[a.Alertname] || len(a.ExpAlerts) > 0
			}
		}
	}
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			require.True(t, fired[r.Alert], "no rule test makes %s fire", r.Alert)
			require.NotEmpty(t, r.Annotations["runbook"], "%s has no runbook line", r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], "%s has no summary", r.Alert)
		}
	}
	require.GreaterOrEqual(t, alerts, 10)
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, v), path)
}

// recordingRegistry is a registry that remembers the name of every metric
// registered on it, whether or not it has a sample yet.
type recordingRegistry struct {
	*prometheus.Registry
	mu    sync.Mutex
	names map[string]prometheus.Collector
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Register implements prometheus.Registerer.
func (r *recordingRegistry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = c
		}
	}
	return nil
}

// MustRegister implements prometheus.Registerer.
func (r *recordingRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// registeredNames assembles the example server with every part that
// exports metrics (Kevel, the decision cache, Stripe, billing, ingest,
// auth, HTTP) and returns the names registered.
func registeredNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := &recordingRegistry{Registry: prometheus.NewRegistry(), names: map[string]prometheus.Collector{}}
	env := map[string]string{"ADSHARE_STRIPE_SECRET_KEY": "sk_test_monitoring", "ADSHARE_STRIPE_WEBHOOK_SECRETS": "whsec_monitoring"}
	cfg, _, err := parseConfig("server", []string{"-kevel-fake",
		"-payout-onboarding-return-url", "https://app.example/payouts/done",
		"-payout-onboarding-refresh-url", "https://app.example/payouts/again"}, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	ctx := context.Background()
	app, cleanup, err := assemble(ctx, cfg, slog.New(slog.DiscardHandler), reg)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, app.Stop(ctx))
		cleanup()
	})
	names := map[string]bool{}
	for n := range reg.names {
		names[n] = true
	}
	for _, must := range []string{"adshare_http_requests_total", "adshare_kevel_circuit_state", "adshare_billing_payouts_total",
		"adshare_stripe_calls_total", "adshare_ingest_events_total", "adshare_auth_logins_total", "adshare_business_impressions_today", "adshare_ws_connections"} {
		require.True(t, names[must], "%s is not registered by the assembly: the list below is incomplete\n%v", must, slices.Sorted(mapKeys(names)))
	}
	return names
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

var (
	metricName    = regexp.MustCompile(`\badshare_[a-z0-9_]+`)
	recordingName = regexp.MustCompile(`\badshare:[a-z0-9_:]+`)
)

// A rule or a panel on a metric the code does not register shows nothing
// and alerts never: every name used in the rules and dashboards is
// registered (a histogram's _bucket, _sum and _count by its name), and
// every recording rule used is defined.
func TestRulesAndDashboardsUseRegisteredMetrics(t *testing.T) {
	t.Parallel()
	names := registeredNames(t)
	rulesText, err := os.ReadFile(filepath.Join(monitoringDir, "adshare-rules.yml"))
	require.NoError(t, err)
	recorded := map[string]bool{}
	for _, m := range regexp.MustCompile(`record: (\S+)`).FindAllStringSubmatch(string(rulesText), -1) {
		recorded[m[1]] = true
	}
	sources := map[string]string{"adshare-rules.yml": string(rulesText)}
	dashboards, err := filepath.Glob(filepath.Join(monitoringDir, "grafana", "*.json"))
	require.NoError(t, err)
	require.Len(t, dashboards, 3, "performance, business and users")
	for _, path := range dashboards {
		var d struct {
			UID    string `json:"uid"`
			Title  string `json:"title"`
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &d), path)
		require.NotEmpty(t, d.UID, path)
		require.NotEmpty(t, d.Panels, path)
		var exprs []string
		for _, p := range d.Panels {
			require.NotEmpty(t, p.Targets, "%s: panel %q queries nothing", path, p.Title)
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
		}
		sources[filepath.Base(path)] = strings.Join(exprs, "\n")
	}
	for file, text := range sources {
		for _, n := range metricName.FindAllString(text, -1) {
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if trimmed, ok := strings.CutSuffix(n, suffix); ok && names[trimmed] {
					base = trimmed
				}
			}
			require.True(t, names[base], "%s uses %s, which the code does not register", file, n)
		}
		for _, n := range recordingName.FindAllString(text, -1) {
			require.True(t, recorded[n], "%s uses the recording rule %s, which the rule file does not define", file, n)
		}
	}
}

// promtool check metrics finds nothing to say about what the example
// server exports, after traffic has filled the labelled series.
func TestMetricsPassPromtool(t *testing.T) {
	t.Parallel()
	bin := promtool(t)
	base, _ := startServer(t, nil, "-kevel-fake")
	owner := postJSON(t, base+"/auth/register", "", `{"email":"metrics@example.com","password":"a long enough passphrase"}`, http.StatusCreated)
	ownerID := owner["user"].(map[string]any)["id"].(string)
	status, _ := get(t, base+"/ad-space/"+ownerID+"?device=d1&gdpr_applies=false")
	require.Equal(t, http.StatusOK, status)
	status, _ = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, status)
	status, body := get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, status)
	for _, n := range []string{"adshare_http_requests_total", "adshare_auth_registrations_total", "adshare_ready 1", "adshare_business_fill_ratio_today"} {
		require.Contains(t, body, n)
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "promtool check metrics has findings")
}
