package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/uuidv7"
)

// middleware wraps a handler.
type middleware func(http.Handler) http.Handler

type requestIDKey struct{}

// RequestIDFromContext returns the id of the request being served, or "".
func RequestIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// RequestIDHeader carries the request id in both directions (in the
// canonical form of its key).
const RequestIDHeader = "X-Request-Id"

// withRequestContext gives every request its context, in one copy of
// the request: an id (in the context and the X-Request-Id response
// header; an incoming one is kept only when the host trusts it,
// Config.TrustRequestID, and it is short and plain), who is calling (for
// rate limits, sessions and the audit log) and the deadline of
// Config.RequestTimeout (GET /ws, a long-lived connection, aside).
func (s *server) withRequestContext(next http.Handler) http.Handler {
	trust, timeout := s.cfg.TrustRequestID, s.cfg.RequestTimeout
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !trust || !plainID(id) {
			id = uuidv7.New().String()
		}
		w.Header()[RequestIDHeader] = []string{id}
		c := auth.Client{IP: clientIP(r, s.cfg.TrustedProxies), UserAgent: cleanUserAgent(r.UserAgent())}
		ctx := auth.NewContextWithClient(context.WithValue(r.Context(), requestIDKey{}, id), c)
		if timeout > 0 && !(r.Method == http.MethodGet && r.URL.Path == "/ws") {
			var release func()
			ctx, release = withRequestDeadline(ctx, timeout)
			defer release()
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func plainID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) < 0
}

// responseRecorder remembers the status and size of a response. It keeps
// Flush and Hijack working for streaming and WebSocket handlers.
type responseRecorder struct {
	http.ResponseWriter
	status  int
	written int64
	route   string // the pattern that served the request, set by routed
}

func (rec *responseRecorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *responseRecorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *responseRecorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// Flush implements http.Flusher.
func (rec *responseRecorder) Flush() {
	_ = http.NewResponseController(rec.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker, for WebSocket upgrades.
func (rec *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err == nil && rec.status == 0 {
		rec.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

func (rec *responseRecorder) statusOrOK() int {
	if rec.status == 0 {
		return http.StatusOK
	}
	return rec.status
}

// withObservation records each request in the access log and the metrics.
// It sits outside recovery, so a panic is logged with its 500.
func (s *server) withObservation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		done := s.metrics.begin(r.Method)
		rec := &responseRecorder{ResponseWriter: w}
		var span trace.Span
		if s.tracer.On() {
			rec.route = s.routeOf(r)
			r, span = s.startSpan(r, rec.route)
		}
		defer func() {
			elapsed := time.Since(start)
			// routed names the route as the mux serves it (matching is not
			// free); answers given before it (a 429, a preflight) are
			// matched here.
			route := rec.route
			if route == "" {
				route = s.routeOf(r)
			}
			status := rec.statusOrOK()
			done(route, status, elapsed)
			if span != nil {
				endSpan(span, status)
			}
			if s.cfg.DisableAccessLog && status < 500 {
				return
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			// The query string is left out: it may carry tokens.
			s.logger.LogAttrs(r.Context(), level, "http request",
				slog.String("request_id", RequestIDFromContext(r.Context())),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Int64("bytes", rec.written),
				slog.Duration("duration", elapsed),
				slog.String("remote", r.RemoteAddr),
			)
		}()
		next.ServeHTTP(rec, r)
	})
}

// traceContext reads W3C traceparent and tracestate headers.
var traceContext propagation.TraceContext

// startSpan starts r's server span, named by its route, and returns r
// with the span in its context. An incoming traceparent is the parent
// when the host trusts it (Config.TrustTraceParent), and otherwise only a
// link, so that a client chooses neither the trace id nor sampling.
func (s *server) startSpan(r *http.Request, route string) (*http.Request, trace.Span) {
	ctx := r.Context()
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("http.route", routePath(route)),
		attribute.String("adshare.request_id", RequestIDFromContext(ctx)),
	)}
	if r.Header.Get("Traceparent") != "" {
		remote := traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))
		if s.cfg.TrustTraceParent {
			ctx = remote
		} else if sc := trace.SpanContextFromContext(remote); sc.IsValid() {
			opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	ctx, span := s.tracer.Start(ctx, route, opts...)
	return r.WithContext(ctx), span
}

// routePath is a route's path pattern without its method.
func routePath(route string) string {
	if _, path, ok := strings.Cut(route, " "); ok {
		return path
	}
	return route
}

// endSpan ends a request's span with its status, an error for a 5xx (a
// 4xx is the client's, not the server's, by OpenTelemetry's conventions).
func endSpan(span trace.Span, status int) {
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// withRecovery turns a panic into a 500 problem (when nothing was written
// yet) and logs it with its stack. http.ErrAbortHandler passes through, as
// net/http expects.
func (s *server) withRecovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, _ := w.(*responseRecorder)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logger.ErrorContext(r.Context(), "transport: handler panicked",
				slog.String("request_id", RequestIDFromContext(r.Context())),
				slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())))
			if rec == nil || rec.status == 0 {
				s.writeError(w, r, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// withSecurityHeaders sets securityHeaders on every response: an API
// serves no documents, so the policy forbids everything a browser could
// load or frame.
//
// They are the ones a JSON API's answers need (OWASP's REST Security
// Cheat Sheet, ASVS 3.4): CSP's frame-ancestors 'none' stands for
// X-Frame-Options in every browser that runs the Flutter web app, and
// Cross-Origin-Resource-Policy would guard nothing, since a cross-origin
// page's no-cors load carries no bearer token and gets only what it could
// ask for itself. Leaving those two out keeps an answer's header within
// the eight keys that net/http's header map holds without growing into a
// table, which it would then clone at WriteHeader, on every answer. The
// dashboard's HTML page sets its own.
func (s *server) withSecurityHeaders(next http.Handler) http.Handler {
	headers := securityHeaders(s.cfg.HSTSMaxAge)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, f := range headers {
			h[f.key] = f.value
		}
		next.ServeHTTP(w, r)
	})
}

// headerField is one response header, its key in canonical form.
type headerField struct {
	key   string
	value []string
}

// securityHeaders lists the headers withSecurityHeaders sets, with
// Strict-Transport-Security when hstsMaxAge is positive. Every request
// shares the value slices: each has length equal to its capacity, so
// Header.Add copies rather than writes into it, and Header.Set replaces
// it. Assigning them skips the key canonicalization and the allocation
// Header.Set makes per header per request.
func securityHeaders(hstsMaxAge time.Duration) []headerField {
	fields := []headerField{
		{"Content-Security-Policy", []string{"default-src 'none'; frame-ancestors 'none'"}},
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"Referrer-Policy", []string{"no-referrer"}},
		{"Cache-Control", []string{"no-store"}},
	}
	if hstsMaxAge > 0 {
		fields = append(fields, headerField{"Strict-Transport-Security",
			[]string{"max-age=" + strconv.FormatInt(int64(hstsMaxAge/time.Second), 10) + "; includeSubDomains"}})
	}
	return fields
}

// withBodyLimit refuses a declared Content-Length over the limit at once,
// and caps what a handler can read from a body of unknown length.
func (s *server) withBodyLimit(next http.Handler) http.Handler {
	limit := s.cfg.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.isWebhook(r) { // capped by the webhook's own limit
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > limit {
			s.writeError(w, r, errBodyTooLarge.WithMessage(fmt.Sprintf("the request body must be at most %d bytes", limit)))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}
