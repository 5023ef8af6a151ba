package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// histogram keeps every latency of a route: exact percentiles for runs of
// up to a few million requests (8 bytes each).
type histogram struct {
	d []time.Duration
}

func newHistogram() *histogram { return &histogram{} }

func (h *histogram) record(d time.Duration) { h.d = append(h.d, d) }

func (h *histogram) summary() Latency {
	if len(h.d) == 0 {
		return Latency{}
	}
	slices.Sort(h.d)
	var sum time.Duration
	for _, d := range h.d {
		sum += d
	}
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(h.d)))) - 1
		return ms(h.d[min(max(i, 0), len(h.d)-1)])
	}
	return Latency{P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: ms(h.d[len(h.d)-1]),
		Mean: ms(sum / time.Duration(len(h.d)))}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// WriteJSON writes the report as JSON (indented), for comparing runs.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteHDR writes every request's latency (from its due time) in the
// HdrHistogram plot format (hdrhistogram.github.io/HdrHistogram/plotFiles.html).
func (r *Report) WriteHDR(w io.Writer) error {
	return vegeta.NewHDRHistogramPlotReporter(&r.vm)(w)
}

// WriteMarkdown writes a table of the routes: requests, errors, statuses
// and latency percentiles.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d req/s for %s (achieved %.0f req/s, %d due never sent), started %s\n\n", r.Rate, r.Duration, r.Achieved, r.Unsent,
		r.Started.Format(time.RFC3339))
	b.WriteString("| route | requests | errors | 5xx | no answer | statuses | p50 ms | p99 ms | p99.9 ms | max ms |\n")
	b.WriteString("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|\n")
	for _, x := range append(slices.Clone(r.Routes), r.Total) {
		codes := make([]string, 0, len(x.Statuses))
		for code, n := range x.Statuses {
			codes = append(codes, fmt.Sprintf("%s×%d", code, n))
		}
		slices.Sort(codes)
		fmt.Fprintf(&b, "| `%s` | %d | %d | %d | %d | %s | %.2f | %.2f | %.2f | %.2f |\n", x.Route, x.Requests, x.Errors,
			x.ServerErrors, x.Transport, strings.Join(codes, " "), x.Latency.P50, x.Latency.P99, x.Latency.P999, x.Latency.Max)
	}
	if s := r.Sockets; s != nil {
		s.writeMarkdown(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeMarkdown writes the WebSocket clients' section of a report.
func (s *SocketReport) writeMarkdown(b *strings.Builder) {
	var codes []string
	for _, c := range slices.Sorted(maps.Keys(s.CloseCodes)) {
		codes = append(codes, fmt.Sprintf(" %s×%d", c, s.CloseCodes[c]))
	}
	fmt.Fprintf(b, "\nWebSocket clients: %d, %d open at the end; %d connections, %d failed, %d unexpected closes%s; %d without metrics.live\n\n",
		s.Clients, s.Open, s.Connects, s.ConnectErrors, s.UnexpectedCloses, strings.Join(codes, ","), s.WithoutMetrics)
	b.WriteString("| message | received |\n|---|---:|\n")
	types := slices.Sorted(maps.Keys(s.Messages))
	for _, t := range types {
		fmt.Fprintf(b, "| `%s` | %d |\n", t, s.Messages[t])
	}
	l := s.MetricsLatency
	fmt.Fprintf(b, "\nmetrics.live after an impression was sent: %d timed (%d reported in all, %d not yet), p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		s.Samples, s.ImpressionsReported, s.Unreported, l.P50, l.P90, l.P99, l.Max)
}
