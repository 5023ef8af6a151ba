package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision/local"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/transport"
	"github.com/adshare/adshare/transport/client"
)

// appAgent is a device's user agent: Go's own counts as a bot.
const appAgent = "AdshareApp/1.0 (Android 15)"

// checked is an http.RoundTripper that validates every request and every
// answer against the OpenAPI document and counts the requests per path:
// where the document and the server disagree, the test fails.
type checked struct {
	t        testing.TB
	v        validator.Validator
	model    *libopenapi.DocumentModel[v3.Document]
	next     http.RoundTripper
	mu       sync.Mutex
	problems []string
	calls    map[string]int // by request path
}

func newChecker(t testing.TB) *checked {
	t.Helper()
	doc, err := libopenapi.NewDocument(transport.OpenAPI())
	require.NoError(t, err)
	v, errs := validator.NewValidator(doc)
	require.Empty(t, errs)
	model, err := doc.BuildV3Model()
	require.NoError(t, err)
	return &checked{t: t, v: v, model: model, next: http.DefaultTransport, calls: map[string]int{}}
}

// newChecked is a checking transport whose disagreements fail t.
func newChecked(t testing.TB) *checked {
	t.Helper()
	c := newChecker(t)
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range c.problems {
			t.Errorf("the OpenAPI document and the server disagree: %s", p)
		}
	})
	return c
}

func (c *checked) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))

	vreq := req.Clone(context.Background())
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	vresp := *resp
	vresp.Body = io.NopCloser(bytes.NewReader(respBody))
	var problems []string
	if ok, verrs := c.v.ValidateHttpRequest(vreq); !ok {
		for _, e := range verrs {
			problems = append(problems, fmt.Sprintf("request %s %s: %s (%s)", req.Method, req.URL.Path, e.Message, e.Reason))
		}
	}
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	if ok, verrs := c.v.ValidateHttpResponse(vreq, &vresp); !ok {
		for _, e := range verrs {
			detail := e.Reason
			for _, se := range e.SchemaValidationErrors {
				detail += "; " + se.Reason + " at " + se.FieldPath
			}
			problems = append(problems, fmt.Sprintf("answer %d to %s %s: %s (%s)", resp.StatusCode, req.Method, req.URL.Path, e.Message, detail))
		}
	}
	// A success must be one the document lists; errors fall to default
	// (Problem), which the validation above checked.
	if resp.StatusCode < 400 {
		if !c.documented(req, resp.StatusCode) {
			problems = append(problems, fmt.Sprintf("%s %s answered %d, which the document does not list", req.Method, req.URL.Path, resp.StatusCode))
		}
	}
	c.mu.Lock()
	c.problems = append(c.problems, problems...)
	c.calls[req.URL.Path]++
	c.mu.Unlock()
	return resp, nil
}

// documented reports whether the operation of req lists status.
func (c *checked) documented(req *http.Request, status int) bool {
	for path, item := range c.model.Model.Paths.PathItems.FromOldest() {
		if !matchTemplate(path, req.URL.Path) {
			continue
		}
		for method, op := range item.GetOperations().FromOldest() {
			if strings.EqualFold(method, req.Method) {
				if _, ok := op.Responses.Codes.Get(strconv.Itoa(status)); ok {
					return true
				}
			}
		}
	}
	return false
}

// matchTemplate reports whether path matches the OpenAPI path template
// tmpl ("/ad-space/{userId}").
func matchTemplate(tmpl, path string) bool {
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if !(strings.HasPrefix(ts[i], "{") && ps[i] != "") && ts[i] != ps[i] {
			return false
		}
	}
	return true
}

// count is how many requests went to path.
func (c *checked) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[path]
}

// testBundle is the example server assembled in-process, as
// examples/embed does (memory store, the local engine), behind a real
// listener.
type testBundle struct {
	store   *memory.Store
	url     string
	checked *checked
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	store := memory.New()
	inventory, err := adspace.NewInventory(store)
	require.NoError(t, err)
	engine, err := local.New(local.Config{Inventory: inventory, Stats: store, Frequency: memory.NewFrequencyCounter(time.Hour),
		RefreshInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(nil)
	app, err := adshare.New(&adshare.Config{Store: store, Shared: memory.NewShared(), Decider: engine,
		HTTP: transport.Config{PublicBaseURL: "http://" + srv.Listener.Addr().String()}})
	require.NoError(t, err)
	require.NoError(t, app.Start(ctx))
	srv.Config.Handler = app.Handler()
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, app.Stop(ctx))
	})
	return &testBundle{store: store, url: srv.URL, checked: newChecked(t)}
}

// newClient is a client of the bundle's server through the checking
// transport; now, when set, is its clock.
func (b *testBundle) newClient(t *testing.T, now func() time.Time) *client.Client {
	t.Helper()
	c, err := client.New(b.url, &client.Config{HTTPClient: &http.Client{Transport: b.checked, Timeout: 10 * time.Second},
		UserAgent: appAgent, Now: now})
	require.NoError(t, err)
	return c
}

const password = "a long enough passphrase"

// TestClientUserFlow drives the whole user flow through the client:
// register, sign in, the space's settings, an advertiser's funded and
// approved content, a fill, the viewable impression, the click and the
// reports, with token refresh along the way; every request and answer
// is checked against the OpenAPI document.
func TestClientUserFlow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)

	// The owner signs up, and signs in again.
	var offset atomic.Int64 // the owner's clock runs ahead by this much
	owner := b.newClient(t, func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	reg, err := owner.Register(ctx, client.RegisterRequest{Email: "owner@example.com", Password: password, DisplayName: "Olive"})
	require.NoError(t, err)
	require.Equal(t, "Bearer", reg.TokenType)
	require.NotNil(t, reg.User)
	ownerID := reg.User.ID
	_, err = owner.Register(ctx, client.RegisterRequest{Email: "owner@example.com", Password: password})
	var p *client.Problem
	require.ErrorAs(t, err, &p, "a problem answer is a typed error")
	require.Equal(t, http.StatusConflict, p.Status)
	require.Equal(t, "email_taken", p.Code)
	require.NotEmpty(t, p.RequestID)
	require.ErrorIs(t, err, &client.Problem{Code: "email_taken"})
	_, err = owner.Login(ctx, "owner@example.com", "not the passphrase")
	require.ErrorIs(t, err, &client.Problem{Code: "invalid_credentials"})
	login, err := owner.Login(ctx, "owner@example.com", password)
	require.NoError(t, err)
	me, err := owner.Me(ctx)
	require.NoError(t, err)
	require.Equal(t, "Olive", me.DisplayName)
	require.Equal(t, ownerID, me.ID)

	// Settings: read, then change with the version read.
	space, err := owner.Settings(ctx)
	require.NoError(t, err)
	require.Equal(t, ownerID, space.OwnerID)
	settings := space.Settings
	settings.RefreshIntervalSeconds, settings.Keywords = 45, []string{"cycling"}
	updated, err := owner.PutSettings(ctx, settings, space.Version)
	require.NoError(t, err)
	require.Equal(t, 45, updated.Settings.RefreshIntervalSeconds)
	require.Greater(t, updated.Version, space.Version)
	_, err = owner.PutSettings(ctx, settings, space.Version)
	require.ErrorAs(t, err, &p, "a stale version is refused")
	require.Equal(t, http.StatusConflict, p.Status)

	// An advertiser funds a budget (confirmed by an admin: no payment
	// processor here) and creates an ad, which the admin approves.
	adv := b.newClient(t, nil)
	_, err = adv.Register(ctx, client.RegisterRequest{Email: "adv@example.com", Password: password})
	require.NoError(t, err)
	u, err := adv.BecomeAdvertiser(ctx, auth.DefaultAdvertiserTerms)
	require.NoError(t, err)
	require.Equal(t, "advertiser", u.Role)
	topUp, err := adv.StartTopUp(ctx, 5000, "usd")
	require.NoError(t, err)
	require.Equal(t, "awaiting_confirmation", topUp.Status)

	admin := b.newClient(t, nil)
	a, err := admin.Register(ctx, client.RegisterRequest{Email: "admin@example.com", Password: password})
	require.NoError(t, err)
	_, err = b.store.SetRole(ctx, a.User.ID, auth.RoleAdmin, time.Now()) // as the users command does
	require.NoError(t, err)
	_, err = admin.Login(ctx, "admin@example.com", password)
	require.NoError(t, err)
	topUp, err = admin.ConfirmTopUp(ctx, topUp.ID)
	require.NoError(t, err)
	require.Equal(t, "succeeded", topUp.Status)

	content, err := adv.CreateContent(ctx, client.ContentRequest{Format: "banner", Title: "Ride further", Body: "Bikes for every road.",
		ClickURL: "https://bikes.example.com/", Bid: client.Bid{Model: "cpm", Micros: 2_000_000}, TotalBudgetMicros: 1_000_000_000, Submit: true})
	require.NoError(t, err)
	require.Equal(t, "pending_review", content.Status)
	listed, err := adv.ListContent(ctx, "pending_review")
	require.NoError(t, err)
	require.Len(t, listed, 1)
	approved, err := admin.Approve(ctx, content.ID)
	require.NoError(t, err)
	require.Equal(t, "approved", approved.Status)

	// A signed-in viewer fills the owner's space once the engine has the ad.
	viewer := b.newClient(t, nil)
	_, err = viewer.Register(ctx, client.RegisterRequest{Email: "viewer@example.com", Password: password})
	require.NoError(t, err)
	no := false
	var fill *client.Fill
	require.Eventually(t, func() bool {
		fill, err = viewer.Fill(ctx, ownerID, &client.FillParams{Device: "device-1", GDPRApplies: &no, OS: "android"})
		require.NoError(t, err)
		return len(fill.Ads) > 0
	}, 10*time.Second, 50*time.Millisecond, "the approved, funded ad fills the space")
	ad := fill.Ads[0]
	require.Equal(t, "Ride further", ad.Title)
	require.Equal(t, 45, fill.RefreshIntervalSeconds)
	require.True(t, fill.Billable)

	// The impression, once viewable (a second on screen), then the click.
	time.Sleep(1100 * time.Millisecond)
	results, err := viewer.ReportEvents(ctx, []client.EventReport{{Type: client.Impression, Token: ad.Tracking.Token}})
	require.NoError(t, err)
	require.Len(t, results, 1)
	require.Equal(t, "accepted", results[0].Status)
	require.True(t, results[0].Valid, "rule %q", results[0].Rule)
	require.True(t, results[0].Billable)
	results, err = viewer.ReportEvents(ctx, []client.EventReport{{Type: client.Impression, Token: ad.Tracking.Token}})
	require.NoError(t, err)
	require.Equal(t, "duplicate", results[0].Status, "an impression counts once")
	time.Sleep(600 * time.Millisecond) // a person's click comes a moment after the view
	target, err := viewer.Click(ctx, ad.Tracking.ClickURL)
	require.NoError(t, err)
	require.Equal(t, "https://bikes.example.com/", target)

	// The owner's reports have it, through a refreshed token: the owner's
	// clock is past the access token's expiry, so ten concurrent calls
	// share one refresh.
	offset.Store(int64(time.Duration(login.ExpiresIn) * time.Second))
	before := b.checked.count("/auth/refresh")
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() { _, errs[i] = owner.Me(ctx) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.Equal(t, before+1, b.checked.count("/auth/refresh"), "one refresh at a time, shared")
	require.NotEqual(t, login.RefreshToken, owner.Tokens().RefreshToken, "the refresh token rotated")
	offset.Store(0)

	require.Eventually(t, func() bool {
		perf, err := owner.Performance(ctx, nil)
		require.NoError(t, err)
		return perf.Totals.Impressions == 1 && perf.Totals.Clicks == 1
	}, 10*time.Second, 50*time.Millisecond, "the performance report counts the impression and the click")
	perf, err := owner.Performance(ctx, &client.ReportParams{Granularity: "day", TZ: "UTC"})
	require.NoError(t, err)
	require.Equal(t, int64(1), perf.Totals.ValidClicks)
	require.Equal(t, int64(1), perf.Totals.BillableImpressions)
	require.Positive(t, perf.Totals.EstimatedOwnerEarningsMicros)
	rev, err := owner.Revenue(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, perf.Totals.EstimatedOwnerEarningsMicros, rev.Estimated.OwnerMicros)
	require.Equal(t, rev.Estimated.GrossMicros, rev.Estimated.OwnerMicros+rev.Estimated.PlatformMicros)

	// Signed out: the session is over on the server, and the client
	// knows it has no tokens.
	stale := owner.Tokens()
	require.NoError(t, owner.Logout(ctx))
	_, err = owner.Me(ctx)
	require.ErrorIs(t, err, client.ErrNotSignedIn)
	owner.SetTokens(stale)
	_, err = owner.Me(ctx)
	require.ErrorIs(t, err, &client.Problem{Code: "token_revoked"})
}

// The checking transport notices a server that disagrees with the
// document: an answer missing required fields, an undocumented success
// status, an undocumented path.
func TestCheckerCatchesDisagreement(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/users/me":
			_, _ = io.WriteString(w, `{"id":"01a24d7d-04e3-7508-968d-7180949f0616"}`)
		case "/auth/sessions":
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"sessions":[]}`)
		default:
			_, _ = io.WriteString(w, `{}`)
		}
	}))
	defer srv.Close()
	c := newChecker(t)
	hc := &http.Client{Transport: c}
	for _, path := range []string{"/users/me", "/auth/sessions", "/nowhere"} {
		resp, err := hc.Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
	}
	joined := strings.Join(c.problems, "\n")
	require.Contains(t, joined, "/users/me", "missing required fields")
	require.Contains(t, joined, "GET /auth/sessions answered 202", "an undocumented status")
	require.Contains(t, joined, "/nowhere", "an undocumented path")
}
