package transport

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	oasvalidator "github.com/pb33f/libopenapi-validator"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/testenv"
)

// testBundle is what most transport tests need: a handler and the log it
// writes.
type testBundle struct {
	handler http.Handler
	logs    *testenv.Buffer
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// setup builds a handler with cfg (its Logger replaced by a JSON logger into
// the bundle) and any extra routes.
func setup(t *testing.T, cfg Config, extra ...route) *testBundle {
	t.Helper()
	logs := &testenv.Buffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := newHandler(cfg, extra)
	require.NoError(t, err)
	return &testBundle{handler: h, logs: logs}
}

// do serves one request and returns the recorded response.
func (b *testBundle) do(t *testing.T, method, target string, body io.Reader, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	return rec.Result()
}

// problemOf decodes a problem+json answer, failing unless it is one.
func problemOf(t *testing.T, resp *http.Response) Problem {
	t.Helper()
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	var p Problem
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&p))
	require.Equal(t, resp.StatusCode, p.Status)
	require.True(t, strings.HasPrefix(p.Type, problemTypePrefix), "type %q", p.Type)
	require.NotEmpty(t, p.Code)
	require.NotEmpty(t, p.Title)
	require.Equal(t, resp.Header.Get(RequestIDHeader), p.RequestID)
	return p
}

// openAPIValidator checks requests and responses against the served
// document, so the document cannot drift from what handlers answer.
func openAPIValidator(t *testing.T) oasvalidator.Validator {
	t.Helper()
	doc, err := libopenapi.NewDocument(openAPIDocument)
	require.NoError(t, err)
	v, errs := oasvalidator.NewValidator(doc)
	require.Empty(t, errs)
	return v
}

// requireDocumented fails unless resp (to req) matches the OpenAPI document.
func requireDocumented(t *testing.T, v oasvalidator.Validator, req *http.Request, resp *http.Response) {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	ok, verrs := v.ValidateHttpResponse(req, resp)
	if !ok {
		var msgs []string
		for _, e := range verrs {
			msgs = append(msgs, e.Error())
			for _, se := range e.SchemaValidationErrors {
				msgs = append(msgs, "  "+se.Reason+" at "+se.FieldPath)
			}
		}
		t.Fatalf("%s %s answered %d, which the OpenAPI document does not allow:\n%s\nbody: %s",
			req.Method, req.URL.Path, resp.StatusCode, strings.Join(msgs, "\n"), body)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
}
