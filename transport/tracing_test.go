package transport

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/adshare/adshare/internal/tracing/tracingtest"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// spanAttr returns the value of a span's attribute, or an invalid Value.
func spanAttr(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// A client's traceparent: trace 4bf9..., span 00f0...
const clientTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestRequestSpans(t *testing.T) {
	t.Parallel()
	handler := func(status int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// What serves the request sees its span.
			if !trace.SpanContextFromContext(r.Context()).IsValid() {
				t.Error("the handler's context carries no span")
			}
			w.WriteHeader(status)
		})
	}
	setupTraced := func(t *testing.T, cfg Config) (*testBundle, *tracetest.SpanRecorder) {
		rec, tp := tracingtest.NewRecorder()
		cfg.TracerProvider = tp
		return setup(t, cfg, route{http.MethodGet, "/test/items/{id}", handler(http.StatusTeapot)},
			route{http.MethodGet, "/test/broken", handler(http.StatusBadGateway)}), rec
	}

	t.Run("a server span per request, named by route, its ids in the access log", func(t *testing.T) {
		t.Parallel()
		b, rec := setupTraced(t, Config{})
		resp := b.do(t, http.MethodGet, "/test/items/42", nil, nil)
		spans := rec.Ended()
		require.Len(t, spans, 1)
		s := spans[0]
		require.Equal(t, "GET /test/items/{id}", s.Name())
		require.Equal(t, trace.SpanKindServer, s.SpanKind())
		require.Equal(t, "GET", spanAttr(s, "http.request.method").AsString())
		require.Equal(t, "/test/items/{id}", spanAttr(s, "http.route").AsString())
		require.EqualValues(t, http.StatusTeapot, spanAttr(s, "http.response.status_code").AsInt64())
		require.Equal(t, resp.Header.Get(RequestIDHeader), spanAttr(s, "adshare.request_id").AsString())
		require.Equal(t, codes.Unset, s.Status().Code, "a 4xx is not the server's error")
		require.False(t, s.Parent().IsValid())

		var entry map[string]any
		line, _, _ := strings.Cut(b.logs.String(), "\n")
		require.NoError(t, json.Unmarshal([]byte(line), &entry))
		require.Equal(t, "http request", entry["msg"])
		require.Equal(t, s.SpanContext().TraceID().String(), entry["trace_id"])
		require.Equal(t, s.SpanContext().SpanID().String(), entry["span_id"])
	})

	t.Run("a 5xx marks the span failed", func(t *testing.T) {
		t.Parallel()
		b, rec := setupTraced(t, Config{})
		b.do(t, http.MethodGet, "/test/broken", nil, nil)
		require.Equal(t, codes.Error, rec.Ended()[0].Status().Code)
	})

	t.Run("an untrusted traceparent is only a link", func(t *testing.T) {
		t.Parallel()
		b, rec := setupTraced(t, Config{})
		b.do(t, http.MethodGet, "/test/items/1", nil, http.Header{"Traceparent": {clientTraceParent}})
		s := rec.Ended()[0]
		require.NotEqual(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.SpanContext().TraceID().String())
		require.False(t, s.Parent().IsValid())
		require.Len(t, s.Links(), 1)
		require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.Links()[0].SpanContext.TraceID().String())
	})

	t.Run("a trusted traceparent is the parent", func(t *testing.T) {
		t.Parallel()
		b, rec := setupTraced(t, Config{TrustTraceParent: true})
		b.do(t, http.MethodGet, "/test/items/1", nil, http.Header{"Traceparent": {clientTraceParent}})
		s := rec.Ended()[0]
		require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.SpanContext().TraceID().String())
		require.Equal(t, "00f067aa0ba902b7", s.Parent().SpanID().String())
		require.True(t, s.Parent().IsRemote())
		require.Empty(t, s.Links())
	})

	t.Run("no provider: no trace ids anywhere", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{}, route{http.MethodGet, "/test/untraced", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if trace.SpanContextFromContext(r.Context()).IsValid() {
				t.Error("a span without a provider")
			}
		})})
		b.do(t, http.MethodGet, "/test/untraced", nil, http.Header{"Traceparent": {clientTraceParent}})
		require.NotContains(t, b.logs.String(), "trace_id")
	})
}
