// Package tracing is adshare's thin layer over OpenTelemetry tracing: a
// Tracer that is off (nil) unless the host gave a TracerProvider, so that
// code paths pay nothing for tracing when it is off, and a slog.Handler
// that adds the trace and span ids of a log record's context.
package tracing

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/adshare/adshare/internal/errs"
)

// InstrumentationName names adshare's tracer (the instrumentation scope
// of its spans).
const InstrumentationName = "github.com/adshare/adshare"

// Tracer starts adshare's spans. The zero Tracer is off: Start returns
// the context unchanged and a non-recording span, without allocating.
type Tracer struct {
	t trace.Tracer
}

// New returns the Tracer of tp, or the zero (off) Tracer when tp is nil.
func New(tp trace.TracerProvider) Tracer {
	if tp == nil {
		return Tracer{}
	}
	return Tracer{t: tp.Tracer(InstrumentationName)}
}

// On reports whether spans are started at all. Callers building
// attributes check it (or the span's IsRecording) first, so that an off
// Tracer costs no allocation.
func (t Tracer) On() bool { return t.t != nil }

// Start starts a span named name as a child of ctx's span. Off, it
// returns ctx itself and the non-recording span ctx carries (a no-op one
// when none), allocating nothing.
func (t Tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t.t == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
	return t.t.Start(ctx, name, opts...)
}

// End ends span, marking it failed with err when err is not nil.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Outcome names a call's result for a span's adshare.outcome attribute:
// "ok", the code of an adshare error ("decision_timeout"), else "error".
func Outcome(err error) string {
	if err == nil {
		return "ok"
	}
	if e := errs.As(err); e != nil {
		return e.Code
	}
	return "error"
}

// Attributes of adshare's own spans.
const (
	AttrPlacements = attribute.Key("adshare.placements")
	AttrAds        = attribute.Key("adshare.ads")
	AttrOutcome    = attribute.Key("adshare.outcome")
	AttrEvents     = attribute.Key("adshare.events")
	AttrRequests   = attribute.Key("adshare.requests")
	AttrAccepted   = attribute.Key("adshare.accepted")
)

// Trace and span id attribute keys of log records.
const (
	LogTraceID = "trace_id"
	LogSpanID  = "span_id"
)

// LogHandler wraps h so that every record logged with a context carrying
// a valid span gets trace_id and span_id attributes (hex, as tracing
// backends show them). Records without one pass through unchanged.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(logHandler); ok {
		return h
	}
	return logHandler{h}
}

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String(LogTraceID, sc.TraceID().String()), slog.String(LogSpanID, sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}
