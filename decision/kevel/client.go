package kevel

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/internal/tracing"
)

// Client asks the Kevel Decision API for ads and talks to UserDB. It is
// safe for concurrent use.
type Client struct {
	cfg     Config
	http    *http.Client
	ownHTTP bool // the transport is the Client's own: Stop closes its connections
	limiter *tokenBucket
	breaker *breaker
	metrics *clientMetrics
	log     *slog.Logger
	tracer  tracing.Tracer

	retryUntil atomic.Int64 // unix nanoseconds before which a 429 refuses calls locally
	calls      atomic.Uint64
	callPrefix string
}

var _ decision.Decider = (*Client)(nil)

// New returns a Client for cfg (see Config for what is required and the
// defaults). It registers its metrics on cfg.Metrics.
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newClientMetrics(cfg.Metrics, cfg.MaxPlacementLabels)
	if err != nil {
		return nil, err
	}
	var prefix [4]byte
	_, _ = crand.Read(prefix[:])
	hc, own := newHTTPClient(cfg.HTTPClient, cfg.Transport)
	c := &Client{
		cfg:        cfg,
		http:       hc,
		ownHTTP:    own,
		limiter:    newTokenBucket(cfg.RatePerSecond, cfg.RateBurst),
		metrics:    m,
		log:        cfg.Logger,
		tracer:     tracing.New(cfg.TracerProvider),
		callPrefix: hex.EncodeToString(prefix[:]),
	}
	c.breaker = newBreaker(cfg.Breaker, func(from, to breakerState) {
		m.circuit.Set(float64(to))
		c.log.Warn("kevel: circuit breaker "+to.String(), slog.String("from", from.String()))
	})
	return c, nil
}

// Stop closes the idle connections of the Client's own transport (a
// configured HTTPClient or Transport stays the host's to close). Calls in
// flight finish; Stop it after the last one. It is idempotent and never
// fails.
func (c *Client) Stop(context.Context) error {
	if c.ownHTTP {
		c.http.CloseIdleConnections()
	}
	return nil
}

// Decide implements decision.Decider: it asks Kevel for the request's
// placements (see buildRequest for the mapping and parseResponse for the
// answer's) within Config.Timeout or ctx's deadline, whichever is sooner.
//
// Errors: decision.ErrInvalidRequest before any call when req is not valid
// or Kevel cannot express it, and when Kevel answers 400; ErrTimeout when
// the deadline passed or ctx was cancelled; ErrRateLimited when Kevel
// answered 429 (later calls then fail at once until its Retry-After has
// passed) or the client-side token bucket is empty; ErrUnavailable for
// transport errors, 5xx, malformed or oversized answers, and while the
// circuit breaker is open. RetryAfter is set on the last three when known.
//
// Retries: a decision is re-sent only after a dial error (connection
// refused, DNS failure): the request never left this process, so Kevel
// cannot have counted it. Nothing else is retried, and never after a
// timeout or an error mid-exchange: whether a decision request alone has
// side effects at Kevel (pacing, frequency caps, selection counts) is not
// documented, and the caller's deadline is short anyway; it falls back to
// house content instead. Retries wait a random delay up to RetryBackoff,
// doubling, and only while the deadline leaves time for one.
//
// With Config.TracerProvider, each call is a client span "kevel.decide".
func (c *Client) Decide(ctx context.Context, req decision.Request) (decision.Response, error) {
	if !c.tracer.On() {
		return c.decide(ctx, req, nil)
	}
	ctx, span := c.tracer.Start(ctx, "kevel.decide", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(tracing.AttrPlacements.Int(len(req.Placements))))
	var status int
	resp, err := c.decide(ctx, req, &status)
	if span.IsRecording() {
		n := 0
		for _, ads := range resp.Ads {
			n += len(ads)
		}
		span.SetAttributes(tracing.AttrAds.Int(n), tracing.AttrOutcome.String(outcomeOf(err)))
		if status != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", status))
		}
	}
	tracing.End(span, err)
	return resp, err
}

// decide is Decide, untraced; it reports Kevel's HTTP status in *status
// when status is not nil and a call was made.
func (c *Client) decide(ctx context.Context, req decision.Request, statusOut *int) (decision.Response, error) {
	if err := req.Validate(); err != nil {
		c.metrics.decisions.WithLabelValues(outcomeInvalid).Inc()
		return decision.Response{}, err
	}
	out, err := buildRequest(&c.cfg, req)
	if err != nil {
		c.metrics.decisions.WithLabelValues(outcomeInvalid).Inc()
		return decision.Response{}, err
	}
	if err := ctx.Err(); err != nil {
		c.metrics.decisions.WithLabelValues(outcomeTimeout).Inc()
		return decision.Response{}, decision.ErrTimeout.WithCause(err)
	}
	now := c.cfg.Now()
	if until := c.retryUntil.Load(); until > now.UnixNano() {
		c.metrics.decisions.WithLabelValues(outcomeThrottled).Inc()
		return decision.Response{}, decision.ErrRateLimited.WithRetryAfter(time.Duration(until - now.UnixNano())).WithCause(errRetryAfter)
	}
	if ok, wait := c.limiter.allow(now); !ok {
		c.metrics.decisions.WithLabelValues(outcomeThrottled).Inc()
		return decision.Response{}, decision.ErrRateLimited.WithRetryAfter(wait).WithCause(errThrottled)
	}
	ok, probe, wait := c.breaker.allow(now)
	if !ok {
		c.metrics.decisions.WithLabelValues(outcomeCircuitOpen).Inc()
		return decision.Response{}, decision.ErrUnavailable.WithRetryAfter(wait).WithCause(errCircuitOpen)
	}
	body, err := json.Marshal(out.Body)
	if err != nil { // only when Customize put invalid JSON in an Extra
		c.breaker.record(now, probe, verdictNeutral)
		c.metrics.decisions.WithLabelValues(outcomeInvalid).Inc()
		return decision.Response{}, decision.ErrInvalidRequest.WithCause(err)
	}
	callID := c.callPrefix + "-" + strconv.FormatUint(c.calls.Add(1), 10)
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()

	status, header, respBody, err := c.send(cctx, http.MethodPost, out.URL, out.Header, body)
	if statusOut != nil {
		*statusOut = status
	}
	o := outcome{err: err, status: status, header: header, body: respBody, now: c.cfg.Now(), secret: c.cfg.APIKey}
	resp, rep, derr := decodeResponse(o, req, callMeta{Now: now, CallID: callID}, cctx.Err)
	elapsed := time.Since(start)

	outcomeLabel, v := outcomeOf(derr), verdictSuccess
	switch {
	case errors.Is(derr, decision.ErrRateLimited):
		v = verdictNeutral
		if e := errs.As(derr); e != nil {
			c.retryUntil.Store(o.now.Add(e.RetryAfter).UnixNano())
		}
	case errors.Is(derr, decision.ErrTimeout) && ctx.Err() != nil:
		v = verdictNeutral // the caller's deadline or cancellation, not Kevel's slowness
	case errors.Is(derr, decision.ErrTimeout), errors.Is(derr, decision.ErrUnavailable):
		v = verdictFailure
	}
	c.breaker.record(c.cfg.Now(), probe, v)
	c.metrics.decisions.WithLabelValues(outcomeLabel).Inc()
	c.metrics.duration.WithLabelValues(outcomeLabel).Observe(elapsed.Seconds())

	attrs := []slog.Attr{
		slog.String("call_id", callID), slog.String("outcome", outcomeLabel),
		slog.Int("status", status), slog.Duration("elapsed", elapsed), slog.Int("placements", len(req.Placements)),
	}
	if derr != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "kevel: decision failed", append(attrs, slog.String("error", derr.Error()))...)
		return decision.Response{}, derr
	}
	c.record(req, resp, rep)
	if len(rep.Unknown) > 0 {
		attrs = append(attrs, slog.Any("unknown_div_names", rep.Unknown))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "kevel: decision", attrs...)
	return resp, nil
}

// record counts fill per placement and what parseResponse left out.
func (c *Client) record(req decision.Request, resp decision.Response, rep parseReport) {
	for _, p := range req.Placements {
		label := c.metrics.labels.value(p.ID)
		c.metrics.placements.WithLabelValues(label).Inc()
		filled := c.metrics.filled.WithLabelValues(label)
		if len(resp.Ads[p.ID]) > 0 {
			filled.Inc()
		}
	}
	c.metrics.unknown.Add(float64(len(rep.Unknown)))
	for reason, n := range rep.Filtered {
		c.metrics.filtered.WithLabelValues(reason).Add(float64(n))
	}
}

// outcomeOf names a Decide result for metrics and logs.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, decision.ErrInvalidRequest):
		return outcomeInvalid
	case errors.Is(err, decision.ErrTimeout):
		return outcomeTimeout
	case errors.Is(err, decision.ErrRateLimited):
		return outcomeRateLimited
	}
	return outcomeUnavailable
}

// send does one HTTP exchange, re-sending only after dial errors (see
// Decide), and reads at most MaxResponseBytes of the answer. It always
// closes the body.
func (c *Client) send(ctx context.Context, method, url string, header http.Header, body []byte) (status int, h http.Header, respBody []byte, err error) {
	for attempt := 0; ; attempt++ {
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, r)
		if err != nil {
			return 0, nil, nil, err
		}
		req.Header = header
		resp, err := c.http.Do(req)
		if err != nil {
			scrubURL(err)
			if attempt < c.cfg.MaxRetries && isDialError(err) && backoff(ctx, c.cfg.RetryBackoff, attempt) {
				c.metrics.retries.Inc()
				continue
			}
			return 0, nil, nil, err
		}
		b, err := readCapped(resp.Body, c.cfg.MaxResponseBytes)
		_ = resp.Body.Close()
		return resp.StatusCode, resp.Header, b, err
	}
}

// scrubURL drops the query from the URL that net/http puts in its
// errors: UserDB URLs carry the user key there, and errors end up in logs.
func scrubURL(err error) {
	var ue *url.Error
	if errors.As(err, &ue) {
		if i := strings.IndexByte(ue.URL, '?'); i >= 0 {
			ue.URL = ue.URL[:i] + "?[redacted]"
		}
	}
}

// isDialError reports whether err happened while connecting, before any
// byte of the request was written.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// backoff waits a random delay up to base·2^attempt ("full jitter") and
// reports whether a retry still fits before ctx's deadline.
func backoff(ctx context.Context, base time.Duration, attempt int) bool {
	ceiling := base << min(attempt, 10)
	d := time.Duration(rand.Int64N(int64(ceiling)) + 1)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 2*d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// readCapped reads r to the end, failing with errTooLarge past limit
// bytes.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}
