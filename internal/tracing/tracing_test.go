package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/adshare/adshare/internal/tracing/tracingtest"
)

func TestOffTracerAllocatesNothing(t *testing.T) {
	var tr Tracer
	if tr.On() || New(nil).On() {
		t.Fatal("a nil provider must give an off Tracer")
	}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, span := tr.Start(ctx, "x")
		if span.IsRecording() || c != ctx {
			t.Fatal("an off Tracer must not record nor change the context")
		}
		End(span, nil)
	})
	if allocs != 0 {
		t.Fatalf("off Tracer: %v allocations per span, want 0", allocs)
	}
}

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	rec, tp := tracingtest.NewRecorder()
	tr := New(tp)
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("k", "v")
	ctx, span := tr.Start(context.Background(), "op")
	log.InfoContext(ctx, "traced")
	span.End()
	log.InfoContext(context.Background(), "untraced")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("got %d lines", len(lines))
	}
	var traced, untraced map[string]any
	_ = json.Unmarshal(lines[0], &traced)
	_ = json.Unmarshal(lines[1], &untraced)
	sc := rec.Ended()[0].SpanContext()
	if traced[LogTraceID] != sc.TraceID().String() || traced[LogSpanID] != sc.SpanID().String() || traced["k"] != "v" {
		t.Errorf("traced record %v, want trace %s span %s", traced, sc.TraceID(), sc.SpanID())
	}
	if _, ok := untraced[LogTraceID]; ok {
		t.Errorf("untraced record has a trace id: %v", untraced)
	}
	if h := LogHandler(log.Handler()); h != log.Handler() {
		t.Error("wrapping twice must not add the ids twice")
	}
}
