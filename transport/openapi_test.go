package transport

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
)

func TestOpenAPIDocumentIsValid31(t *testing.T) {
	t.Parallel()
	doc, err := libopenapi.NewDocument(openAPIDocument)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(doc.GetVersion(), "3.1"), "version %s", doc.GetVersion())
	ok, verrs := schema_validation.ValidateOpenAPIDocument(doc)
	for _, e := range verrs {
		t.Errorf("%s", e.Error())
		for _, se := range e.SchemaValidationErrors {
			t.Errorf("  %s at %s", se.Reason, se.FieldPath)
		}
	}
	require.True(t, ok)
	_, err = doc.BuildV3Model()
	require.NoError(t, err)
}

// Every route is documented and every documented operation is routed.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	doc, err := libopenapi.NewDocument(openAPIDocument)
	require.NoError(t, err)
	model, err := doc.BuildV3Model()
	require.NoError(t, err)

	var documented []string
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	s := &server{auth: &auth.Service{}, spaces: &adspace.Service{}, events: &analytics.Service{}} // every route
	var routed []string
	for _, rt := range s.routes() {
		routed = append(routed, rt.method+" "+rt.path)
	}
	slices.Sort(documented)
	slices.Sort(routed)
	require.Equal(t, routed, documented)
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	resp := b.do(t, http.MethodGet, "/openapi.json", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	var doc map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	require.Equal(t, "3.1.0", doc["openapi"])
	require.Equal(t, OpenAPI(), openAPIDocument)
}
