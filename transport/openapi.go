package transport

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"go.yaml.in/yaml/v3"
)

// openAPISource is the OpenAPI 3.1 document, written in YAML for people.
//
//go:embed openapi.yaml
var openAPISource []byte

// openAPIDocument is the same document as JSON, built once at start-up.
var openAPIDocument = mustJSONFromYAML(openAPISource)

// OpenAPI returns the OpenAPI 3.1 document of the API as JSON (a copy).
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

func (s *server) handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(openAPIDocument)
	})
}

// mustJSONFromYAML converts the embedded document; it can only fail on a
// malformed file, which the tests catch before anything ships.
func mustJSONFromYAML(src []byte) []byte {
	var doc any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		panic(fmt.Sprintf("transport: openapi.yaml: %v", err))
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("transport: openapi.yaml to JSON: %v", err))
	}
	return out
}
