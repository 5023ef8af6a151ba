// Package loadtest loads an adshare server at a fixed arrival rate over a
// mix of routes, as a fleet of apps does, and reports per route what came
// back: counts by status, errors, and latency percentiles measured from the
// moment each request was due, so a server that falls behind shows it
// (no coordinated omission).
//
// It is built on vegeta (github.com/tsenart/vegeta/v12) used as a
// library: an open-loop attacker that paces requests at the rate asked
// and adds workers when answers are slow instead of waiting for them,
// with a pluggable targeter and its own HDR-histogram reporter. The mix,
// the per-route accounting, the capacity search and the result files are
// this package's.
package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Request is one request of a scenario.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// Scenario is one kind of request in the mix.
type Scenario struct {
	// Route names the scenario's requests in the report, as a
	// net/http.ServeMux pattern with a method ("GET /ad-space/{userId}").
	// A result is counted under the most specific route that matches its
	// method and path.
	Route string
	// Weight is the scenario's share of the mix, relative to the others.
	Weight int
	// Next builds the scenario's n-th request (called concurrently).
	Next func(n uint64) Request
	// OK lists the statuses that count as success (default: 2xx and 3xx).
	// Any other answer is an error; a 5xx or a transport error always is.
	OK []int
}

// Config is one run.
type Config struct {
	// Rate is the arrival rate, requests per second over the whole mix.
	Rate int
	// Duration is how long requests are sent.
	Duration time.Duration
	// Mix is what is sent, by weight.
	Mix []Scenario
	// Timeout bounds each request (default 10 s): a request that hangs
	// past it is an error.
	Timeout time.Duration
	// Client is used when set (its Timeout is then the caller's).
	Client *http.Client
	// MaxInFlight bounds the requests outstanding at once, each on its
	// own connection (default 1024). Past a server's capacity an open
	// loop would otherwise open connections until it runs out of file
	// descriptors; capped, requests leave late instead, and their latency
	// still counts from when they were due.
	MaxInFlight int
	// Sockets, when set, are WebSocket clients held open beside the run
	// (Fleet.OpenSockets): the report ends with their figures since they
	// were opened, taken once the impressions sent are reported (or 3 s
	// after the run).
	Sockets *Sockets
}

// socketSettle is the longest a run's end waits for the last
// metrics.live (a second of coalescing and the group commit before it,
// more on a loaded machine); it stops sooner once none are missing or
// reports stop coming.
const socketSettle = 10 * time.Second

// Run sends cfg.Mix at cfg.Rate for cfg.Duration and reports.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("loadtest: Rate and Duration must be positive")
	}
	m, err := newMix(cfg.Mix)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	inFlight := cfg.MaxInFlight
	if inFlight <= 0 {
		inFlight = 1024
	}
	var opts []func(*vegeta.Attacker)
	if cfg.Client != nil {
		opts = append(opts, vegeta.Client(cfg.Client))
	} else {
		// The run's own connections, closed when it ends: one run's idle
		// connections must not hold file descriptors through the next.
		tr := &http.Transport{
			DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: inFlight, MaxConnsPerHost: inFlight, IdleConnTimeout: 30 * time.Second,
			DisableCompression: true,
		}
		defer tr.CloseIdleConnections()
		opts = append(opts, vegeta.Client(&http.Client{Transport: tr, Timeout: timeout}))
	}
	opts = append(opts, vegeta.Redirects(vegeta.NoFollow), vegeta.MaxWorkers(uint64(inFlight)))
	attacker := vegeta.NewAttacker(opts...)
	rep := newReport(cfg, m)
	pacer := vegeta.ConstantPacer{Freq: cfg.Rate, Per: time.Second}
	began := time.Now()
	results := attacker.Attack(m.targeter(), pacer, cfg.Duration, "adshare")
	interval := time.Second / time.Duration(cfg.Rate)
	for {
		select {
		case <-ctx.Done():
			attacker.Stop()
			for range results {
			}
			return rep.finish(began, cfg.Sockets, false), ctx.Err()
		case res, ok := <-results:
			if !ok {
				return rep.finish(began, cfg.Sockets, true), nil
			}
			// Latency from the time the request was due, not from when a
			// worker got to it. vegeta's constant pacer holds request n
			// (from 0) until n+1 intervals have passed.
			due := began.Add(time.Duration(res.Seq+1) * interval)
			if late := res.Timestamp.Sub(due); late > 0 {
				res.Latency += late
			}
			rep.add(m.route(res.Method, res.URL), res)
		}
	}
}

// mix is a validated Config.Mix.
type mix struct {
	scenarios []Scenario
	slots     []int // scenario index per slot, by weight
	mux       *http.ServeMux
	ok        map[string][]int // by route
	mu        sync.Mutex
	seq       []uint64 // next request number per scenario
}

func newMix(ss []Scenario) (*mix, error) {
	if len(ss) == 0 {
		return nil, errors.New("loadtest: the mix is empty")
	}
	m := &mix{scenarios: ss, mux: http.NewServeMux(), ok: map[string][]int{}, seq: make([]uint64, len(ss))}
	seen := map[string]bool{}
	for i, s := range ss {
		if s.Weight <= 0 || s.Next == nil || s.Route == "" {
			return nil, fmt.Errorf("loadtest: scenario %d (%q) needs a route, a positive weight and Next", i, s.Route)
		}
		if !seen[s.Route] {
			seen[s.Route] = true
			if err := register(m.mux, s.Route); err != nil {
				return nil, err
			}
		}
		m.ok[s.Route] = s.OK
		for range s.Weight {
			m.slots = append(m.slots, i)
		}
	}
	// Interleave the slots so that every stretch of the run has the mix,
	// not all of one scenario then all of the next.
	spread := make([]int, len(m.slots))
	step := coprime(len(m.slots))
	for i := range m.slots {
		spread[i] = m.slots[(i*step)%len(m.slots)]
	}
	m.slots = spread
	return m, nil
}

// register adds a route pattern to mux, reporting a bad pattern as an
// error (ServeMux panics).
func register(mux *http.ServeMux, pattern string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("loadtest: route %q: %v", pattern, r)
		}
	}()
	mux.HandleFunc(pattern, func(http.ResponseWriter, *http.Request) {})
	return nil
}

// coprime returns a step near n/φ that is coprime with n, so that
// i*step mod n visits every slot once.
func coprime(n int) int {
	if n <= 2 {
		return 1
	}
	for s := max(int(float64(n)/math.Phi), 1); s < n; s++ {
		if gcd(s, n) == 1 {
			return s
		}
	}
	return 1
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (m *mix) targeter() vegeta.Targeter {
	var next uint64
	return func(t *vegeta.Target) error {
		m.mu.Lock()
		i := m.slots[next%uint64(len(m.slots))]
		next++
		n := m.seq[i]
		m.seq[i]++
		m.mu.Unlock()
		r := m.scenarios[i].Next(n)
		t.Method, t.URL, t.Body = cmp.Or(r.Method, http.MethodGet), r.URL, r.Body
		t.Header = r.Header
		if t.Header == nil {
			t.Header = http.Header{}
		}
		return nil
	}
}

// route is the scenario route that a result's request matches.
func (m *mix) route(method, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "unmatched"
	}
	_, pattern := m.mux.Handler(&http.Request{Method: method, URL: u, Host: u.Host})
	if pattern == "" {
		return "unmatched"
	}
	return pattern
}

// Latency summarises a route's latencies, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// RouteReport is what one route's requests got.
type RouteReport struct {
	Route    string `json:"route"`
	Requests int    `json:"requests"`
	// Errors are answers outside the route's OK statuses, 5xx and
	// transport errors (a timeout, a refused or reset connection).
	Errors int `json:"errors"`
	// ServerErrors are the 5xx answers.
	ServerErrors int `json:"server_errors"`
	// Transport counts requests that got no HTTP answer.
	Transport int `json:"transport_errors"`
	// Statuses counts answers by status code ("0" for none).
	Statuses map[string]int `json:"statuses"`
	// ErrorSamples are a few distinct transport errors.
	ErrorSamples []string `json:"error_samples,omitempty"`
	Latency      Latency  `json:"latency"`

	hist *histogram
}

// ErrorRate is Errors over Requests.
func (r *RouteReport) ErrorRate() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Errors) / float64(r.Requests)
}

// Report is what a run measured.
type Report struct {
	Rate     int           `json:"rate_per_s"`
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"duration_s"`
	Started  time.Time     `json:"started"`
	// Achieved is the rate the answers came back at over the run.
	Achieved float64 `json:"achieved_per_s"`
	// Unsent counts the requests due in the run that never left: every
	// one of MaxInFlight was still outstanding (the server fell behind).
	// A run whose context ended early does not count them.
	Unsent int            `json:"unsent"`
	Total  *RouteReport   `json:"total"`
	Routes []*RouteReport `json:"routes"`
	// Sockets are the WebSocket clients' figures (Config.Sockets).
	Sockets *SocketReport `json:"sockets,omitempty"`

	ok     map[string][]int
	byName map[string]*RouteReport
	vm     vegeta.Metrics // every result, for the HDR histogram
}

func newReport(cfg Config, m *mix) *Report {
	return &Report{Rate: cfg.Rate, Duration: cfg.Duration, Seconds: cfg.Duration.Seconds(), ok: m.ok,
		byName: map[string]*RouteReport{}, Total: newRoute("total")}
}

func newRoute(name string) *RouteReport {
	return &RouteReport{Route: name, Statuses: map[string]int{}, hist: newHistogram()}
}

func (r *Report) add(route string, res *vegeta.Result) {
	rr := r.byName[route]
	if rr == nil {
		rr = newRoute(route)
		r.byName[route] = rr
		r.Routes = append(r.Routes, rr)
	}
	failed := r.failed(route, res)
	for _, x := range []*RouteReport{rr, r.Total} {
		x.Requests++
		x.Statuses[fmt.Sprint(res.Code)]++
		x.hist.record(res.Latency)
		if res.Code >= 500 {
			x.ServerErrors++
		}
		if res.Code == 0 {
			x.Transport++
			sample := res.Error
			if len(sample) > 200 {
				sample = sample[:200] + "…"
			}
			if len(x.ErrorSamples) < 5 && !slices.Contains(x.ErrorSamples, sample) {
				x.ErrorSamples = append(x.ErrorSamples, sample)
			}
		}
		if failed {
			x.Errors++
		}
	}
	r.vm.Add(res)
}

func (r *Report) failed(route string, res *vegeta.Result) bool {
	if res.Code == 0 || res.Code >= 500 {
		return true
	}
	if ok := r.ok[route]; len(ok) > 0 {
		return !slices.Contains(ok, int(res.Code))
	}
	return res.Code >= 400
}

// finish completes the report; whole says the run went its full
// Duration (a run cut short has no count of requests never sent).
func (r *Report) finish(began time.Time, sockets *Sockets, whole bool) *Report {
	r.Started = began.UTC()
	r.vm.Close()
	elapsed := time.Since(began).Seconds()
	if elapsed > 0 {
		r.Achieved = float64(r.Total.Requests) / elapsed
	}
	// The pacer sends one request per interval; a load generator short of
	// CPU may miss the last few before the run's end, which is not the
	// server's doing: a hundredth is let go.
	if due := int(r.Duration.Seconds() * float64(r.Rate)); whole && r.Total.Requests < due-max(2, due/100) {
		r.Unsent = due - r.Total.Requests
	}
	if sockets != nil {
		r.Sockets = sockets.Report(socketSettle)
	}
	sort.Slice(r.Routes, func(i, j int) bool { return r.Routes[i].Route < r.Routes[j].Route })
	for _, x := range append([]*RouteReport{r.Total}, r.Routes...) {
		x.Latency = x.hist.summary()
	}
	return r
}

// Route returns the report of one route (nil when none of its requests
// was sent).
func (r *Report) Route(name string) *RouteReport { return r.byName[name] }

// Failures describes what broke the budget: every route with a server
// error, a transport error, or an error rate above maxErrorRate, a share
// of requests never sent (Unsent) above maxErrorRate, and WebSocket
// clients that failed to connect, were closed or were not open at the end.
func (r *Report) Failures(maxErrorRate float64) []string {
	var out []string
	if r.Sockets != nil {
		out = r.Sockets.failures()
	}
	if due := r.Unsent + r.Total.Requests; r.Unsent > 0 && float64(r.Unsent) > maxErrorRate*float64(due) {
		out = append(out, fmt.Sprintf("%d of %d requests due were never sent: MaxInFlight requests were outstanding (the server fell behind) or the load generator was short of CPU", r.Unsent, due))
	}
	for _, x := range r.Routes {
		if x.ServerErrors > 0 || x.Transport > 0 || x.ErrorRate() > maxErrorRate {
			out = append(out, fmt.Sprintf("%s: %d of %d failed (%d 5xx, %d without answer; statuses %v; %s)",
				x.Route, x.Errors, x.Requests, x.ServerErrors, x.Transport, x.Statuses, strings.Join(x.ErrorSamples, "; ")))
		}
	}
	return out
}
