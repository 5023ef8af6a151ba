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

	"github.com/google/uuid"
)

// middleware wraps a handler.
type middleware func(http.Handler) http.Handler

type requestIDKey struct{}

// RequestIDFromContext returns the id of the request being served, or "".
func RequestIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-Id"

// withRequestID gives every request an id, in its context and in the
// response header. An incoming X-Request-Id is kept only when the host
// trusts it (Config.TrustRequestID) and it is short and plain.
func withRequestID(trust bool) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(RequestIDHeader)
			if !trust || !plainID(id) {
				id = uuid.Must(uuid.NewV7()).String()
			}
			w.Header().Set(RequestIDHeader, id)
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
		})
	}
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
		route := s.routeOf(r)
		done := s.metrics.begin(r.Method, route)
		rec := &responseRecorder{ResponseWriter: w}
		defer func() {
			elapsed := time.Since(start)
			status := rec.statusOrOK()
			done(status, elapsed)
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

// securityHeaders are set on every response: an API serves no documents, so
// the policy forbids everything a browser could load or frame.
func (s *server) withSecurityHeaders(next http.Handler) http.Handler {
	hsts := ""
	if s.cfg.HSTSMaxAge > 0 {
		hsts = "max-age=" + strconv.FormatInt(int64(s.cfg.HSTSMaxAge/time.Second), 10) + "; includeSubDomains"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Resource-Policy", "same-site")
		h.Set("Cache-Control", "no-store")
		if hsts != "" {
			h.Set("Strict-Transport-Security", hsts)
		}
		next.ServeHTTP(w, r)
	})
}

// withBodyLimit refuses a declared Content-Length over the limit at once,
// and caps what a handler can read from a body of unknown length.
func (s *server) withBodyLimit(next http.Handler) http.Handler {
	limit := s.cfg.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			s.writeError(w, r, errBodyTooLarge.WithMessage(fmt.Sprintf("the request body must be at most %d bytes", limit)))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}
