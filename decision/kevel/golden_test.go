package kevel

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/errs"
)

// goldenCase is one testdata/{exemplary,supplemental}/*.json file, in the
// manner of prebid-server's adapterstest: the input, the expected request
// to Kevel, Kevel's mocked answer and the expected output.
type goldenCase struct {
	Description string `json:"description"`
	// Config is the client's (NetworkID, SiteID, APIKey, UserAgent).
	Config struct {
		NetworkID int64
		SiteID    int64
		APIKey    string
		UserAgent string
	} `json:"config"`
	// Customize and CustomizePlacements, when set, are merged into the
	// wire request (and into each placement) by Config.Customize: how
	// hosts reach the fields a decision.Request cannot express.
	Customize           json.RawMessage `json:"customize"`
	CustomizePlacements json.RawMessage `json:"customizePlacements"`
	// Now and CallID are the call's clock and id.
	Now    time.Time `json:"now"`
	CallID string    `json:"callId"`

	Request         decision.Request `json:"request"`
	ExpectedRequest *struct {
		URI     string            `json:"uri"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"expectedRequest"`
	MockResponse *struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
		// BodyText is a body that is not JSON.
		BodyText *string `json:"bodyText"`
	} `json:"mockResponse"`
	ExpectedResponse json.RawMessage `json:"expectedResponse"`
	ExpectedError    *struct {
		Code       string            `json:"code"`
		Fields     map[string]string `json:"fields"`
		RetryAfter string            `json:"retryAfter"`
	} `json:"expectedError"`
	// ExpectedUnknown and ExpectedFiltered are what the parse left out.
	ExpectedUnknown  []string       `json:"expectedUnknown"`
	ExpectedFiltered map[string]int `json:"expectedFiltered"`
}

func goldenFiles(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, dir := range []string{"exemplary", "supplemental"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		require.NoError(t, err)
		require.NotEmpty(t, files, dir)
		out[dir] = files
	}
	return out
}

func loadGolden(t *testing.T, file string) goldenCase {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var c goldenCase
	require.NoError(t, d.Decode(&c), file)
	return c
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for dir, files := range goldenFiles(t) {
		for _, file := range files {
			t.Run(dir+"/"+filepath.Base(file), func(t *testing.T) {
				t.Parallel()
				c := loadGolden(t, file)
				runGolden(t, dir, c)
			})
		}
	}
}

func runGolden(t *testing.T, dir string, c goldenCase) {
	if dir == "exemplary" {
		require.Nil(t, c.ExpectedError, "exemplary cases succeed")
		require.Empty(t, c.ExpectedUnknown, "exemplary cases are clean")
	}
	cfg, err := Config{
		NetworkID: c.Config.NetworkID, SiteID: c.Config.SiteID,
		APIKey: Secret(c.Config.APIKey), UserAgent: c.Config.UserAgent,
	}.withDefaults()
	require.NoError(t, err)
	if c.Customize != nil || c.CustomizePlacements != nil {
		cfg.Customize = func(_ decision.Request, w *DecisionRequest) {
			if c.Customize != nil {
				require.NoError(t, json.Unmarshal(c.Customize, w))
			}
			for i := range w.Placements {
				if c.CustomizePlacements != nil {
					require.NoError(t, json.Unmarshal(c.CustomizePlacements, &w.Placements[i]))
				}
			}
		}
	}

	err = c.Request.Validate()
	var out outgoing
	if err == nil {
		out, err = buildRequest(&cfg, c.Request)
	}
	if c.ExpectedRequest == nil {
		require.NotNil(t, c.ExpectedError, "a case without expectedRequest expects a build error")
		checkError(t, c, err)
		return
	}
	require.NoError(t, err)
	require.Equal(t, c.ExpectedRequest.URI, out.URL)
	for k, v := range c.ExpectedRequest.Headers {
		require.Equal(t, v, out.Header.Get(k), "header %s", k)
	}
	body, err := json.Marshal(out.Body)
	require.NoError(t, err)
	require.JSONEq(t, string(c.ExpectedRequest.Body), string(body))

	require.NotNil(t, c.MockResponse)
	h := http.Header{}
	for k, v := range c.MockResponse.Headers {
		h.Set(k, v)
	}
	respBody := []byte(c.MockResponse.Body)
	if c.MockResponse.BodyText != nil {
		respBody = []byte(*c.MockResponse.BodyText)
	}
	o := outcome{status: c.MockResponse.Status, header: h, body: respBody, now: c.Now, secret: cfg.APIKey}
	resp, rep, err := decodeResponse(o, c.Request, callMeta{Now: c.Now, CallID: c.CallID}, nil)
	if c.ExpectedError != nil {
		checkError(t, c, err)
		return
	}
	require.NoError(t, err)
	var want decision.Response
	d := json.NewDecoder(bytes.NewReader(c.ExpectedResponse))
	d.UseNumber()
	d.DisallowUnknownFields()
	require.NoError(t, d.Decode(&want))
	require.Equal(t, want, resp)
	require.Equal(t, c.ExpectedUnknown, rep.Unknown)
	require.Equal(t, c.ExpectedFiltered, rep.Filtered)
}

func checkError(t *testing.T, c goldenCase, err error) {
	t.Helper()
	require.Error(t, err)
	e := errs.As(err)
	require.NotNil(t, e, "a domain error: %v", err)
	require.Equal(t, c.ExpectedError.Code, e.Code, "%v", err)
	if c.ExpectedError.Fields != nil {
		require.Equal(t, c.ExpectedError.Fields, e.Fields)
	}
	if c.ExpectedError.RetryAfter != "" {
		d, perr := time.ParseDuration(c.ExpectedError.RetryAfter)
		require.NoError(t, perr)
		require.Equal(t, d, e.RetryAfter)
	}
}

// TestGoldenCoversTheSpec checks that every property the OpenAPI spec
// gives the request and response schemas (a copy of the spec is in
// testdata/spec) appears in at least one golden request body or mocked
// answer, and is a typed field of the wire types (not left to Extra).
func TestGoldenCoversTheSpec(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("testdata", "spec", "decision-openapi-3.yaml"))
	require.NoError(t, err)
	var spec struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	require.NoError(t, yaml.Unmarshal(b, &spec))

	seen := map[string]map[string]bool{} // schema → property → seen
	mark := func(schema string, v any) {
		if m, ok := v.(map[string]any); ok {
			if seen[schema] == nil {
				seen[schema] = map[string]bool{}
			}
			for k := range m {
				seen[schema][k] = true
			}
		}
	}
	each := func(v any, f func(any)) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				f(e)
			}
		case map[string]any:
			f(x)
		}
	}
	for _, files := range goldenFiles(t) {
		for _, file := range files {
			c := loadGolden(t, file)
			if c.ExpectedRequest != nil {
				var req map[string]any
				require.NoError(t, json.Unmarshal(c.ExpectedRequest.Body, &req))
				mark("DecisionRequest", req)
				mark("User", req["user"])
				mark("Consent", req["consent"])
				each(req["placements"], func(p any) {
					mark("Placement", p)
					mark("SkipFilters", p.(map[string]any)["skipFilters"])
				})
			}
			if c.MockResponse != nil && c.MockResponse.Body != nil {
				var resp map[string]any
				if json.Unmarshal(c.MockResponse.Body, &resp) != nil {
					continue
				}
				mark("DecisionResponse", resp)
				mark("User", resp["user"])
				decs, _ := resp["decisions"].(map[string]any)
				for _, ds := range decs {
					each(ds, func(d any) {
						mark("Decision", d)
						dm, _ := d.(map[string]any)
						mark("PricingData", dm["pricing"])
						each(dm["contents"], func(x any) { mark("Content", x) })
						each(dm["events"], func(x any) { mark("Event", x) })
						each(dm["matchedPoints"], func(x any) { mark("MatchedPoint", x) })
					})
				}
			}
		}
	}

	types := map[string]any{
		"DecisionRequest": DecisionRequest{}, "Placement": Placement{}, "User": User{}, "SkipFilters": SkipFilters{},
		"DecisionResponse": DecisionResponse{}, "Decision": Decision{}, "Content": Content{}, "PricingData": Pricing{},
		"Event": Event{}, "MatchedPoint": MatchedPoint{},
	}
	// The spec leaves consent free-form; these are Kevel's documented keys.
	want := map[string][]string{"Consent": {"gdpr", "gdprConsentString", "gdprConsentRequired", "gdprVendorId"}}
	types["Consent"] = Consent{}
	for name := range types {
		if name == "Consent" {
			continue
		}
		s, ok := spec.Components.Schemas[name]
		require.True(t, ok, "the spec has no schema %s", name)
		for k := range s.Properties {
			want[name] = append(want[name], k)
		}
	}
	var missing []string
	for name, props := range want {
		typed := jsonNames(reflect.TypeOf(types[name]))
		for _, p := range props {
			if !typed[p] {
				missing = append(missing, name+"."+p+" (no typed field)")
			}
			if !seen[name][p] {
				missing = append(missing, name+"."+p+" (in no golden file)")
			}
		}
	}
	// And the other way round: every key of a golden request is the spec's
	// (or documented), except the deliberate unknowns that test Extra.
	deliberate := map[string]bool{"DecisionRequest.block": true, "Placement.eCpmOverride": true, "SkipFilters.futureFilter": true}
	for name, props := range seen {
		if _, isRequest := map[string]bool{"DecisionRequest": true, "Placement": true, "SkipFilters": true, "Consent": true}[name]; !isRequest {
			continue
		}
		for p := range props {
			if !slices.Contains(want[name], p) && !deliberate[name+"."+p] {
				missing = append(missing, name+"."+p+" (sent, but not in the spec)")
			}
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing)
}
