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

// The document is a product: every operation says what it does (summary,
// description, tags that the document describes), documents its problem
// answers (a 4xx with application/problem+json), and names its security
// when it needs a token; the user flow's operations carry examples of
// what is sent and answered. redocly lint (in .ci/run) checks the rest.
func TestOpenAPIIsAProduct(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(openAPISource, &doc))
	m := func(v any) map[string]any { r, _ := v.(map[string]any); return r }
	components := m(doc["components"])
	require.Contains(t, m(components["securitySchemes"]), "bearer")
	tagDescribed := map[string]bool{}
	for _, tg := range doc["tags"].([]any) {
		tagDescribed[m(tg)["name"].(string)] = m(tg)["description"] != nil
	}
	resolve := func(v any) map[string]any {
		r := m(v)
		if ref, ok := r["$ref"].(string); ok {
			return m(m(components["responses"])[strings.TrimPrefix(ref, "#/components/responses/")])
		}
		return r
	}
	hasExample := func(media map[string]any) bool {
		if media["example"] != nil || media["examples"] != nil {
			return true
		}
		s := m(media["schema"])
		if ref, ok := s["$ref"].(string); ok {
			s = m(m(components["schemas"])[strings.TrimPrefix(ref, "#/components/schemas/")])
		}
		if s["examples"] != nil {
			return true
		}
		for _, alt := range []string{"oneOf", "anyOf"} { // a oneOf of items with examples
			if list, ok := s[alt].([]any); ok {
				for _, a := range list {
					if ref, ok := m(a)["$ref"].(string); ok && m(m(components["schemas"])[strings.TrimPrefix(ref, "#/components/schemas/")])["examples"] != nil {
						return true
					}
				}
			}
		}
		return false
	}
	flow := map[string]bool{"POST /auth/register": true, "POST /auth/login": true, "POST /auth/refresh": true,
		"GET /ad-space/settings": true, "PUT /ad-space/settings": true, "POST /ad-space/content": true,
		"GET /ad-space/{userId}": true, "POST /events": true, "POST /billing/topups": true, "GET /healthz": true, "GET /readyz": true}
	operations := 0
	for path, item := range m(doc["paths"]) {
		for method, v := range m(item) {
			op := m(v)
			if op == nil || method == "parameters" {
				continue
			}
			operations++
			name := strings.ToUpper(method) + " " + path
			require.NotEmpty(t, op["summary"], "%s: summary", name)
			require.NotEmpty(t, op["description"], "%s: description", name)
			tags, _ := op["tags"].([]any)
			require.NotEmpty(t, tags, "%s: tags", name)
			for _, tg := range tags {
				require.True(t, tagDescribed[tg.(string)], "%s: tag %q is described at the top", name, tg)
			}
			problem := false
			for code, r := range m(op["responses"]) {
				if strings.HasPrefix(code, "4") && m(resolve(r)["content"])["application/problem+json"] != nil {
					problem = true
				}
			}
			require.True(t, problem, "%s: a 4xx problem+json answer", name)
			if sec, ok := op["security"].([]any); ok {
				for _, req := range sec {
					for scheme := range m(req) {
						require.Contains(t, m(components["securitySchemes"]), scheme, "%s: security scheme", name)
					}
				}
			}
			if !flow[name] {
				continue
			}
			if body := m(op["requestBody"]); body != nil {
				require.True(t, hasExample(m(m(body["content"])["application/json"])), "%s: a request example", name)
			}
			for code, r := range m(op["responses"]) {
				if strings.HasPrefix(code, "2") {
					require.True(t, hasExample(m(m(resolve(r)["content"])["application/json"])), "%s: an example of the %s answer", name, code)
				}
			}
		}
	}
	require.Greater(t, operations, 60)
}
