package transport

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/privacy"
	"github.com/adshare/adshare/transport/realtime"
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
	s := &server{auth: &auth.Service{}, spaces: &adspace.Service{}, events: &analytics.Service{}, // every route
		billing: &billing.Service{}, cfg: Config{Realtime: &realtime.Hub{}, Announcer: &realtime.Announcer{}, Privacy: &privacy.Service{}}}
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

// The YAML source says what it means: no value is null and every schema
// is a schema. An unquoted flow-style description with a comma
// ({description: BCP 47 tag, or empty.}) makes YAML read a second key
// ("or empty.": null), which the JSON document then serves as a junk
// property; libopenapi takes it as a schema that allows anything.
func TestOpenAPISourceHasNoStrayKeys(t *testing.T) {
	t.Parallel()
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal(openAPISource, &root))
	var problems []string
	fail := func(n *yaml.Node, path, msg string) {
		problems = append(problems, fmt.Sprintf("line %d: %s: %s", n.Line, path, msg))
	}

	// No null anywhere: the document has no use for one, and a stray
	// key's value is null.
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		for i, c := range n.Content {
			switch {
			case n.Kind == yaml.MappingNode && i%2 == 0:
				if v := n.Content[i+1]; v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
					fail(c, path+"/"+c.Value, "is null (an unquoted comma or colon in a flow mapping?)")
				}
			case n.Kind == yaml.MappingNode:
				walk(c, path+"/"+n.Content[i-1].Value)
			default:
				walk(c, fmt.Sprintf("%s/%d", path, i))
			}
		}
	}
	walk(&root, "")

	// Every schema says what it is in known keywords, and every property
	// is named like one.
	propertyName := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	keywords := []string{"$ref", "type", "format", "description", "title", "default", "examples", "const", "enum",
		"properties", "required", "additionalProperties", "minProperties", "maxProperties", "items", "prefixItems",
		"minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "pattern", "minimum", "maximum",
		"exclusiveMinimum", "exclusiveMaximum", "multipleOf", "oneOf", "anyOf", "allOf", "not", "deprecated",
		"readOnly", "writeOnly", "discriminator", "contentMediaType", "contentEncoding"}
	schemas := 0
	var schema func(n *yaml.Node, path string)
	schema = func(n *yaml.Node, path string) {
		schemas++
		if n.Kind != yaml.MappingNode {
			fail(n, path, "is not a schema (a mapping)")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !slices.Contains(keywords, k.Value) {
				fail(k, path+"/"+k.Value, "is not a schema keyword")
			}
		}
		if !slices.ContainsFunc([]string{"type", "$ref", "oneOf", "anyOf", "allOf", "enum", "const"}, func(k string) bool {
			return mappingValue(n, k) != nil
		}) {
			fail(n, path, "has no type, $ref, oneOf, anyOf, allOf, enum or const")
		}
		if props := mappingValue(n, "properties"); props != nil {
			for i := 0; i+1 < len(props.Content); i += 2 {
				name := props.Content[i].Value
				if !propertyName.MatchString(name) {
					fail(props.Content[i], path+"/properties/"+name, "is not a property name")
				}
				schema(props.Content[i+1], path+"/properties/"+name)
			}
		}
		if items := mappingValue(n, "items"); items != nil {
			schema(items, path+"/items")
		}
		if extra := mappingValue(n, "additionalProperties"); extra != nil && extra.Kind == yaml.MappingNode {
			schema(extra, path+"/additionalProperties")
		}
		for _, k := range []string{"oneOf", "anyOf", "allOf"} {
			if list := mappingValue(n, k); list != nil {
				for i, s := range list.Content {
					schema(s, fmt.Sprintf("%s/%s/%d", path, k, i))
				}
			}
		}
	}
	// Schemas sit under components/schemas and at every "schema" key
	// (parameters, request and response bodies).
	var find func(n *yaml.Node, path string)
	find = func(n *yaml.Node, path string) {
		for i, c := range n.Content {
			if n.Kind != yaml.MappingNode {
				find(c, fmt.Sprintf("%s/%d", path, i))
				continue
			}
			if i%2 == 0 {
				continue
			}
			key := n.Content[i-1].Value
			switch {
			case key == "schema":
				schema(c, path+"/schema")
			case key == "schemas" && path == "/0/components":
				for j := 0; j+1 < len(c.Content); j += 2 {
					schema(c.Content[j+1], path+"/schemas/"+c.Content[j].Value)
				}
			default:
				find(c, path+"/"+key)
			}
		}
	}
	find(&root, "")
	require.Greater(t, schemas, 100, "the walk found the document's schemas")
	require.Empty(t, problems, "openapi.yaml:\n%s", strings.Join(problems, "\n"))
}

// mappingValue returns the value of key in the mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
