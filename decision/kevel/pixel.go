package kevel

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare/internal/tracing"
)

// Defaults of FirerConfig.
const (
	// DefaultPixelTimeout bounds one fire.
	DefaultPixelTimeout = 5 * time.Second
	// DefaultPixelQueueSize bounds the pixels waiting to be fired.
	DefaultPixelQueueSize = 1024
	// DefaultPixelWorkers is how many pixels are fired at once.
	DefaultPixelWorkers = 4
	// DefaultPixelGuardTTL is how long a fired URL is remembered: the
	// life of Kevel's impression URLs.
	DefaultPixelGuardTTL = 24 * time.Hour
	// DefaultPixelGuardSize bounds the URLs remembered (about 80 bytes
	// each: some 20 MB at the default). Under load the oldest are
	// forgotten first, so recent duplicates, the likely ones, stay caught.
	DefaultPixelGuardSize = 250_000
	// DefaultPixelDialRetries is how many times a fire is re-sent after a
	// dial error.
	DefaultPixelDialRetries = 2
	// MaxPixelQuery bounds a pixel URL's query string, after '?', once
	// FireOpts parameters are appended (Kevel's documented limit).
	MaxPixelQuery = 1024
	// MaxEventMultiplier bounds FireOpts.EventMultiplier (Kevel's docs say
	// 1 to 100,000,000).
	MaxEventMultiplier = 100_000_000
)

// pixelKeyHeader is the header the official JS SDK sends its API key in
// on pixel fires (since its 2023 fix for key-enforced networks).
const pixelKeyHeader = "X-Kevel-ApiKey"

// FirerConfig configures NewFirer. NetworkID is required.
type FirerConfig struct {
	// NetworkID is the Kevel network: pixels of https://e-{NetworkID}.adzerk.net
	// are allowed.
	NetworkID int64
	// BaseURL, when set (a CNAME, or a fake server in tests), allows its
	// host too, with its scheme (http only then).
	BaseURL string
	// APIKey, when set, is sent as X-Kevel-ApiKey, as the official JS SDK
	// does for networks that enforce keys. Never logged.
	APIKey Secret

	// HTTPClient fires the pixels; redirects are never followed (on a
	// copy). Defaults to a client over Transport.
	HTTPClient *http.Client
	// Transport is used when HTTPClient is nil. Defaults to a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Timeout bounds one fire. Defaults to DefaultPixelTimeout.
	Timeout time.Duration
	// QueueSize defaults to DefaultPixelQueueSize.
	QueueSize int
	// Workers defaults to DefaultPixelWorkers.
	Workers int
	// GuardTTL defaults to DefaultPixelGuardTTL.
	GuardTTL time.Duration
	// GuardSize defaults to DefaultPixelGuardSize. When full, the oldest
	// URL is forgotten early (adshare_kevel_pixel_guard_evictions_total).
	GuardSize int
	// DialRetries defaults to DefaultPixelDialRetries; negative disables.
	DialRetries int
	// RetryBackoff is the first retry's maximum delay. Defaults to
	// DefaultRetryBackoff.
	RetryBackoff time.Duration
	// UserAgent is sent when FireOpts has none. Defaults to
	// DefaultUserAgent.
	UserAgent string

	// Logger defaults to discarding.
	Logger *slog.Logger
	// Metrics is where the adshare_kevel_pixel* collectors are
	// registered. Nil means none are exported.
	Metrics prometheus.Registerer
	// Now defaults to time.Now.
	Now func() time.Time

	// TracerProvider, when set, gives every fire a client span
	// "kevel.pixel" (kind, HTTP status): a child of the click's request
	// for FireClick, and for a queued pixel a span of its own linked to
	// the span that queued it (FireContext). No trace header goes to
	// Kevel. Nil: no spans, at no cost.
	TracerProvider trace.TracerProvider
}

// FireOpts are the optional parameters of one fire. Amounts are micros of
// the network's currency, appended as decimals.
type FireOpts struct {
	// RevenueOverride replaces the revenue Kevel records (override=); on
	// an event it creates revenue.
	RevenueOverride *int64
	// AdditionalRevenue adds revenue (additional=).
	AdditionalRevenue *int64
	// GrossMerchandiseValue feeds ROAS (gmv=).
	GrossMerchandiseValue *int64
	// EventMultiplier multiplies the event (eventMultiplier=), 1 to
	// MaxEventMultiplier; 0 omits it.
	EventMultiplier int
	// NoRedirect counts a click without redirecting (noredirect).
	NoRedirect bool
	// UserAgent is the end user's, forwarded. Defaults to
	// FirerConfig.UserAgent.
	UserAgent string
	// ExpiresAt, when set (from decision.Tracking.ExpiresAt), refuses the
	// pixel once passed: Kevel would answer 200 and count nothing.
	ExpiresAt time.Time
}

// Firer fires Kevel's impression, click and event URLs, each at most once
// per process: Kevel counts every GET (no deduplication), so a pixel is
// never fired twice and never re-sent after the request may have reached
// Kevel (only dial errors are retried). Fire queues asynchronously and
// never blocks; FireClick fires synchronously and returns the redirect.
// Only URLs of the configured Kevel host are fired, so a URL coming back
// from a client can never make the server call an internal address.
//
// Start the workers with Start and drain them with Stop. It is safe for
// concurrent use.
type Firer struct {
	cfg     FirerConfig
	http    *http.Client
	ownHTTP bool              // the transport is the Firer's own: Stop closes its connections
	allowed map[string]string // host[:port] → scheme
	guard   *onceGuard
	queue   chan pixelJob
	log     *slog.Logger
	metrics *pixelMetrics
	tracer  tracing.Tracer

	mu      sync.RWMutex // guards sending on queue against closing it
	started bool
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{}
	stopErr error
}

type pixelJob struct {
	url  string
	kind string
	ua   string
	key  guardKey
	// link is the span that queued the pixel, when traced.
	link trace.SpanContext
}

// NewFirer returns a Firer for cfg.
func NewFirer(cfg FirerConfig) (*Firer, error) {
	if cfg.NetworkID <= 0 {
		return nil, errors.New("kevel: FirerConfig.NetworkID is required: your Kevel network id (the 23 of e-23.adzerk.net)")
	}
	if cfg.Timeout < 0 || cfg.QueueSize < 0 || cfg.Workers < 0 || cfg.GuardTTL < 0 || cfg.GuardSize < 0 || cfg.RetryBackoff < 0 {
		return nil, errors.New("kevel: FirerConfig sizes and durations must not be negative (0 means the default)")
	}
	allowed := map[string]string{"e-" + strconv.FormatInt(cfg.NetworkID, 10) + ".adzerk.net": "https"}
	if cfg.BaseURL != "" {
		base, err := normalizeBaseURL(cfg.BaseURL, cfg.NetworkID)
		if err != nil {
			return nil, errors.New("kevel: FirerConfig.BaseURL must be an absolute http(s) URL without credentials or query, such as your CNAME")
		}
		u, _ := url.Parse(base)
		allowed[hostKey(u)] = u.Scheme
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultPixelTimeout)
	cfg.QueueSize = cmp.Or(cfg.QueueSize, DefaultPixelQueueSize)
	cfg.Workers = cmp.Or(cfg.Workers, DefaultPixelWorkers)
	cfg.GuardTTL = cmp.Or(cfg.GuardTTL, DefaultPixelGuardTTL)
	cfg.GuardSize = cmp.Or(cfg.GuardSize, DefaultPixelGuardSize)
	cfg.DialRetries = cmp.Or(cfg.DialRetries, DefaultPixelDialRetries)
	cfg.RetryBackoff = cmp.Or(cfg.RetryBackoff, DefaultRetryBackoff)
	cfg.UserAgent = cmp.Or(cfg.UserAgent, DefaultUserAgent)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc, own := newHTTPClient(cfg.HTTPClient, cfg.Transport)
	f := &Firer{
		cfg:     cfg,
		http:    hc,
		ownHTTP: own,
		allowed: allowed,
		queue:   make(chan pixelJob, cfg.QueueSize),
		log:     cfg.Logger,
		tracer:  tracing.New(cfg.TracerProvider),
		done:    make(chan struct{}),
	}
	m, err := newPixelMetrics(cfg.Metrics, func() float64 { return float64(len(f.queue)) })
	if err != nil {
		return nil, err
	}
	f.metrics = m
	f.guard = newOnceGuard(cfg.GuardTTL, cfg.GuardSize, m.evictions.Inc)
	return f, nil
}

// Start starts the workers. Pixels fired before Start wait in the queue.
// Cancelling ctx is a hard stop (in-flight fires are abandoned, queued
// ones dropped); Stop drains gracefully. It returns ErrFirerStopped after
// Stop, and nil when already started.
func (f *Firer) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return ErrFirerStopped
	}
	if f.started {
		return nil
	}
	f.started = true
	ctx, f.cancel = context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range f.cfg.Workers {
		wg.Go(func() { f.work(ctx) })
	}
	go func() {
		wg.Wait()
		close(f.done)
	}()
	return nil
}

// Stop stops accepting pixels and waits for the queued ones to be fired,
// until ctx ends: then in-flight fires are abandoned and the rest dropped
// (counted), and it returns ctx's error. It is idempotent and safe before
// Start (queued pixels are then dropped).
func (f *Firer) Stop(ctx context.Context) error {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		f.mu.RLock()
		defer f.mu.RUnlock()
		return f.stopErr
	}
	f.stopped = true
	close(f.queue)
	started := f.started
	f.mu.Unlock()

	defer f.closeIdle()
	if !started {
		for job := range f.queue {
			f.metrics.count(job.kind, "dropped")
		}
		close(f.done)
		return nil
	}
	var err error
	select {
	case <-f.done:
	case <-ctx.Done():
		err = ctx.Err()
		f.mu.Lock()
		f.stopErr = err
		f.mu.Unlock()
		f.cancel() // workers abandon in-flight fires and drop the rest
		<-f.done
	}
	f.cancel()
	return err
}

// closeIdle closes the idle connections of the Firer's own transport.
func (f *Firer) closeIdle() {
	if f.ownHTTP {
		f.http.CloseIdleConnections()
	}
}

// Fire queues rawURL to be fired once, without options: FireWith with nil
// options. With FireClick it makes the Firer an analytics.Pixels (held by
// a test, so that this package need not import analytics).
func (f *Firer) Fire(rawURL string) error { return f.FireWith(rawURL, nil) }

// FireWith queues rawURL to be fired once with opts (nil for none). It never
// blocks. A pixel that then fails is not retried (it may have reached
// Kevel), except when it could not even connect: it is then forgotten, and
// may be fired again. Errors: ErrPixelRefused when the URL is not a pixel of the
// configured host or the options are out of range; ErrPixelDuplicate when
// this process already fired it; ErrPixelQueueFull when the queue is full
// (the pixel is dropped, and may be fired again later); ErrFirerStopped
// after Stop.
func (f *Firer) FireWith(rawURL string, opts *FireOpts) error {
	return f.enqueue(rawURL, opts, trace.SpanContext{})
}

// FireContext is Fire for a caller with a context: when tracing, the
// pixel's span links to ctx's span (analytics' group commit uses it).
func (f *Firer) FireContext(ctx context.Context, rawURL string) error {
	return f.enqueue(rawURL, nil, trace.SpanContextFromContext(ctx))
}

// enqueue is FireWith, with the span to link the fire's span to.
func (f *Firer) enqueue(rawURL string, opts *FireOpts, link trace.SpanContext) error {
	job, key, err := f.prepare(rawURL, opts)
	if err != nil {
		return err
	}
	job.link = link
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.stopped {
		return ErrFirerStopped
	}
	if !f.guard.add(key, f.cfg.Now()) {
		f.metrics.count(job.kind, "duplicate")
		return ErrPixelDuplicate
	}
	select {
	case f.queue <- job:
		f.metrics.count(job.kind, "queued")
		return nil
	default:
		f.guard.remove(key)
		f.metrics.count(job.kind, "dropped")
		return ErrPixelQueueFull
	}
}

// FireClick fires a click URL now, for the click-redirect flow, and
// returns where Kevel redirects; it is FireClickWith without options.
func (f *Firer) FireClick(ctx context.Context, rawURL string) (location string, err error) {
	return f.FireClickWith(ctx, rawURL, nil)
}

// FireClickWith fires a click URL now with opts (nil for none), with the
// same host and once-only checks as Fire, and returns where Kevel
// redirects: the Location of a 3xx answer, or "" for a 2xx (with
// NoRedirect). It works whether or not the Firer is started (a click
// during shutdown still redirects). Errors: ErrPixelRefused,
// ErrPixelDuplicate, and ErrPixelFailed for a transport error, another
// status, or a Location that is not an absolute http(s) URL. A failed
// click is not retried, and stays marked as fired unless it failed to
// connect (then nothing reached Kevel, and it may be fired again).
func (f *Firer) FireClickWith(ctx context.Context, rawURL string, opts *FireOpts) (location string, err error) {
	job, key, err := f.prepare(rawURL, opts)
	if err != nil {
		return "", err
	}
	if !f.guard.add(key, f.cfg.Now()) {
		f.metrics.count(job.kind, "duplicate")
		return "", ErrPixelDuplicate
	}
	status, loc, err := f.fire(ctx, job)
	switch {
	case err != nil:
		f.metrics.count(job.kind, "failed")
		if isDialError(err) {
			f.guard.remove(key)
		}
		return "", ErrPixelFailed.WithCause(redact(err, f.cfg.APIKey))
	case status >= 300 && status < 400:
		u, perr := url.Parse(loc)
		if perr != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http") {
			f.metrics.count(job.kind, "failed")
			return "", ErrPixelFailed.WithCause(errors.New("kevel: click redirect to a Location that is not an absolute http(s) URL"))
		}
		f.metrics.count(job.kind, "sent")
		return loc, nil
	case status >= 200 && status < 300:
		f.metrics.count(job.kind, "sent")
		return "", nil
	default:
		f.metrics.count(job.kind, "failed")
		return "", ErrPixelFailed.WithCause(&statusError{status: status})
	}
}

// prepare checks rawURL and opts and returns the job and its guard key
// (the URL as given, before options).
func (f *Firer) prepare(rawURL string, opts *FireOpts) (pixelJob, guardKey, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" {
		f.metrics.count("other", "refused")
		return pixelJob{}, guardKey{}, ErrPixelRefused
	}
	kind := pixelKind(u.Path)
	if scheme, ok := f.allowed[hostKey(u)]; !ok || scheme != u.Scheme {
		f.metrics.count(kind, "refused")
		return pixelJob{}, guardKey{}, ErrPixelRefused
	}
	u.Fragment, u.RawFragment = "", ""
	key := keyOf(u.String())
	var o FireOpts
	if opts != nil {
		o = *opts
	}
	if !o.ExpiresAt.IsZero() && !f.cfg.Now().Before(o.ExpiresAt) {
		f.metrics.count(kind, "refused")
		return pixelJob{}, guardKey{}, ErrPixelRefused.WithMessage("the pixel expired: Kevel would not count it")
	}
	var add []string
	for _, p := range []struct {
		name string
		v    *int64
	}{{"override", o.RevenueOverride}, {"additional", o.AdditionalRevenue}, {"gmv", o.GrossMerchandiseValue}} {
		if p.v != nil {
			add = append(add, p.name+"="+formatMicros(*p.v))
		}
	}
	if o.EventMultiplier != 0 {
		if o.EventMultiplier < 1 || o.EventMultiplier > MaxEventMultiplier {
			f.metrics.count(kind, "refused")
			return pixelJob{}, guardKey{}, ErrPixelRefused.WithMessage("eventMultiplier must be between 1 and 100000000")
		}
		add = append(add, "eventMultiplier="+strconv.Itoa(o.EventMultiplier))
	}
	if o.NoRedirect {
		add = append(add, "noredirect")
	}
	if len(add) > 0 {
		q := strings.Join(add, "&")
		if u.RawQuery != "" {
			q = u.RawQuery + "&" + q
		}
		if len(q) > MaxPixelQuery {
			f.metrics.count(kind, "refused")
			return pixelJob{}, guardKey{}, ErrPixelRefused.WithMessage("the pixel's query would exceed 1024 characters")
		}
		u.RawQuery = q
	}
	return pixelJob{url: u.String(), kind: kind, ua: cmp.Or(o.UserAgent, f.cfg.UserAgent), key: key}, key, nil
}

// hostKey is a URL's host in lower case, without the scheme's default port.
func hostKey(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" || (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		return host
	}
	return host + ":" + port
}

// pixelKind names a pixel by its path, for metrics.
func pixelKind(path string) string {
	switch path {
	case "/i.gif":
		return "impression"
	case "/r":
		return "click"
	case "/e.gif":
		return "event"
	}
	return "other"
}

// formatMicros writes micros as a decimal without trailing zeros.
func formatMicros(m int64) string {
	neg := m < 0
	u := uint64(m)
	if neg {
		u = uint64(-m)
	}
	s := strconv.FormatUint(u/1_000_000, 10)
	if frac := u % 1_000_000; frac != 0 {
		f := strconv.FormatUint(frac+1_000_000, 10)[1:]
		s += "." + strings.TrimRight(f, "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}

// work fires queued pixels until the queue is closed and empty.
func (f *Firer) work(ctx context.Context) {
	for job := range f.queue {
		if ctx.Err() != nil {
			f.metrics.count(job.kind, "dropped")
			continue
		}
		status, _, err := f.fire(ctx, job)
		switch {
		case err != nil:
			f.metrics.count(job.kind, "failed")
			if isDialError(err) {
				f.guard.remove(job.key) // nothing reached Kevel
			}
			f.log.LogAttrs(ctx, slog.LevelWarn, "kevel: pixel failed", slog.String("kind", job.kind),
				slog.String("error", redact(err, f.cfg.APIKey).Error()))
		case status >= 400:
			f.metrics.count(job.kind, "failed")
			f.log.LogAttrs(ctx, slog.LevelWarn, "kevel: pixel refused by Kevel", slog.String("kind", job.kind), slog.Int("status", status))
		default:
			f.metrics.count(job.kind, "sent")
		}
	}
}

// fire sends one GET, re-sending only after a dial error, and returns the
// status and Location. The body is read (a little) and always closed.
func (f *Firer) fire(ctx context.Context, job pixelJob) (status int, location string, err error) {
	if !f.tracer.On() {
		return f.send(ctx, job)
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attribute.String("adshare.pixel", job.kind))}
	if job.link.IsValid() {
		opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: job.link}))
	}
	ctx, span := f.tracer.Start(ctx, "kevel.pixel", opts...)
	status, location, err = f.send(ctx, job)
	if status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	if status >= 400 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	tracing.End(span, redact(err, f.cfg.APIKey))
	return status, location, err
}

// send is fire, untraced.
func (f *Firer) send(ctx context.Context, job pixelJob) (status int, location string, err error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		req, err := newPixelRequest(ctx, job.url)
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("User-Agent", job.ua)
		if f.cfg.APIKey != "" {
			req.Header.Set(pixelKeyHeader, string(f.cfg.APIKey))
		}
		resp, err := f.http.Do(req)
		if err != nil {
			scrubURL(err)
			if attempt < f.cfg.DialRetries && isDialError(err) && backoff(ctx, f.cfg.RetryBackoff, attempt) {
				continue
			}
			return 0, "", err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location"), nil
	}
}

// newPixelRequest returns a GET that net/http never re-sends by itself.
//
// http.Transport silently retries a "replayable" request (a GET without a
// body is one) when a reused keep-alive connection fails after the request
// was written but before an answer arrived. Harmless for most GETs, not
// for a pixel: Kevel counts every fire. A request whose Body is non-nil
// and has no GetBody is not replayable. The transport probes that body,
// finds it empty, and sends a plain GET (no Content-Length, no
// Transfer-Encoding). Dial errors, where nothing was sent, are retried by
// fire itself.
func newPixelRequest(ctx context.Context, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(emptyReader{})
	req.GetBody = nil
	req.ContentLength = 0
	return req, nil
}

type emptyReader struct{}

// Read implements io.Reader: always at the end.
func (emptyReader) Read([]byte) (int, error) { return 0, io.EOF }

// pixelMetrics are the Firer's collectors.
type pixelMetrics struct {
	pixels    *prometheus.CounterVec
	evictions prometheus.Counter
}

func newPixelMetrics(reg prometheus.Registerer, queueLen func() float64) (*pixelMetrics, error) {
	m := &pixelMetrics{
		pixels: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "kevel", Name: "pixels_total",
			Help: "Pixels by kind (impression, click, event, other) and result (queued, sent, failed, dropped, duplicate, refused).",
		}, []string{"kind", "result"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "adshare", Subsystem: "kevel", Name: "pixel_guard_evictions_total",
			Help: "Fired URLs forgotten before their TTL because the once-only guard was full; raise GuardSize if it grows.",
		}),
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "adshare", Subsystem: "kevel", Name: "pixel_queue_length",
		Help: "Pixels waiting to be fired.",
	}, queueLen)
	return m, register(reg, m.pixels, m.evictions, queue)
}

func (m *pixelMetrics) count(kind, result string) { m.pixels.WithLabelValues(kind, result).Inc() }
