package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds each call when Config.HTTPClient is nil.
	DefaultTimeout = 30 * time.Second
	// DefaultRefreshBefore is how long before its expiry an access token
	// is refreshed.
	DefaultRefreshBefore = 30 * time.Second
	// DefaultUserAgent is sent when Config.UserAgent is empty.
	DefaultUserAgent = "adshare-go-client/1"
)

// maxAnswerBytes bounds a successful answer's body.
const maxAnswerBytes = 8 << 20

// ErrNotSignedIn: the call needs tokens and the Client has none (sign in,
// or SetTokens).
var ErrNotSignedIn = errors.New("client: not signed in: call Register or Login, or SetTokens with stored tokens")

// Config tunes a Client. A zero Config is fine.
type Config struct {
	// HTTPClient sends the requests. Its CheckRedirect is left alone, but
	// Click never follows a redirect. Defaults to a client with a
	// DefaultTimeout timeout.
	HTTPClient *http.Client
	// UserAgent is sent on every request. Defaults to DefaultUserAgent.
	// The server's invalid-traffic rules count well-known library agents
	// as bots: apps and tests reporting events should name themselves.
	UserAgent string
	// RefreshBefore is how long before its expiry the access token is
	// refreshed. Defaults to DefaultRefreshBefore.
	RefreshBefore time.Duration
	// OnTokens, when set, is called (outside any lock) with every new
	// token pair: sign-in, sign-up and each refresh, so that the caller
	// can store the refresh token.
	OnTokens func(Tokens)
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Client calls one adshare API. Create it with New.
type Client struct {
	base *url.URL
	cfg  Config
	http *http.Client

	mu       sync.Mutex
	tokens   *Tokens
	inflight *refreshFlight // the refresh in progress, if any
}

// refreshFlight is one refresh that concurrent callers share.
type refreshFlight struct {
	done chan struct{}
	err  error
}

// New returns a client of the API at baseURL (such as
// "https://api.example.com" or "http://127.0.0.1:8080/adshare"); cfg may
// be nil.
func New(baseURL string, cfg *Config) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want an absolute http(s) URL such as https://api.example.com", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u}
	if cfg != nil {
		c.cfg = *cfg
	}
	c.cfg.UserAgent = cmp.Or(c.cfg.UserAgent, DefaultUserAgent)
	c.cfg.RefreshBefore = cmp.Or(c.cfg.RefreshBefore, DefaultRefreshBefore)
	if c.cfg.Now == nil {
		c.cfg.Now = time.Now
	}
	c.http = c.cfg.HTTPClient
	if c.http == nil {
		c.http = &http.Client{Timeout: DefaultTimeout}
	}
	return c, nil
}

// Tokens returns the current tokens, or nil when not signed in.
func (c *Client) Tokens() *Tokens {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil {
		return nil
	}
	t := *c.tokens
	return &t
}

// SetTokens signs the client in with tokens kept from before (nil signs
// it out locally). With a zero ExpiresAt the access token is used until
// the server refuses it.
func (c *Client) SetTokens(t *Tokens) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t == nil {
		c.tokens = nil
		return
	}
	cp := *t
	c.tokens = &cp
}

// Register creates an account and signs the client in as it (201).
// Errors: a *Problem, such as 409 email_taken or 422 invalid_body with
// field errors.
func (c *Client) Register(ctx context.Context, req RegisterRequest) (*Tokens, error) {
	return c.signIn(ctx, "/auth/register", req, http.StatusCreated)
}

// Login signs the client in with email and password. Errors: a *Problem,
// such as 401 invalid_credentials or 429 rate_limited (RetryAfter).
func (c *Client) Login(ctx context.Context, email, password string) (*Tokens, error) {
	return c.signIn(ctx, "/auth/login", map[string]string{"email": email, "password": password}, http.StatusOK)
}

func (c *Client) signIn(ctx context.Context, path string, body any, want int) (*Tokens, error) {
	var t Tokens
	if err := c.call(ctx, call{method: http.MethodPost, path: path, body: body, want: want, out: &t}); err != nil {
		return nil, err
	}
	c.adopt(&t)
	return &t, nil
}

// adopt makes t the client's tokens and tells OnTokens.
func (c *Client) adopt(t *Tokens) {
	if t.ExpiresIn > 0 {
		t.ExpiresAt = c.cfg.Now().Add(time.Duration(t.ExpiresIn) * time.Second)
	}
	c.mu.Lock()
	cp := *t
	c.tokens = &cp
	c.mu.Unlock()
	if c.cfg.OnTokens != nil {
		c.cfg.OnTokens(*t)
	}
}

// Refresh exchanges the refresh token for a new pair now, sharing a
// refresh already in flight. Authenticated calls refresh by themselves;
// call it only to refresh ahead of time. Errors: ErrNotSignedIn, or a
// *Problem (401 invalid_grant: the session is over; sign in again).
func (c *Client) Refresh(ctx context.Context) error {
	c.mu.Lock()
	if c.tokens == nil {
		c.mu.Unlock()
		return ErrNotSignedIn
	}
	stale := c.tokens.AccessToken
	c.mu.Unlock()
	return c.refresh(ctx, stale)
}

// refresh replaces the access token stale, unless another refresh has
// replaced it already; one refresh runs at a time, and callers that
// arrive while it runs wait for it and share its result.
func (c *Client) refresh(ctx context.Context, stale string) error {
	c.mu.Lock()
	if c.tokens == nil {
		c.mu.Unlock()
		return ErrNotSignedIn
	}
	if c.tokens.AccessToken != stale { // refreshed while the caller was busy
		c.mu.Unlock()
		return nil
	}
	if f := c.inflight; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f := &refreshFlight{done: make(chan struct{})}
	c.inflight = f
	refreshToken := c.tokens.RefreshToken
	c.mu.Unlock()

	// The refresh outlives the caller's cancellation: once sent, its
	// answer carries the only valid successor, which must not be lost.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultTimeout)
	defer cancel()
	var t Tokens
	err := c.call(rctx, call{method: http.MethodPost, path: "/auth/refresh",
		body: map[string]string{"refresh_token": refreshToken}, want: http.StatusOK, out: &t})
	if err == nil {
		c.adopt(&t)
	}
	c.mu.Lock()
	c.inflight = nil
	f.err = err
	close(f.done)
	c.mu.Unlock()
	return err
}

// Logout ends the session on the server and forgets the tokens.
func (c *Client) Logout(ctx context.Context) error {
	err := c.call(ctx, call{method: http.MethodPost, path: "/auth/logout", auth: true, want: http.StatusNoContent})
	c.SetTokens(nil)
	return err
}

// Me returns the signed-in account.
func (c *Client) Me(ctx context.Context) (*User, error) {
	var u User
	return &u, c.call(ctx, call{method: http.MethodGet, path: "/users/me", auth: true, want: http.StatusOK, out: &u})
}

// BecomeAdvertiser accepts the advertiser terms of termsVersion and
// returns the account, now an advertiser. The access token's role claim
// is refreshed with it.
func (c *Client) BecomeAdvertiser(ctx context.Context, termsVersion string) (*User, error) {
	var u User
	if err := c.call(ctx, call{method: http.MethodPost, path: "/users/me/advertiser", auth: true,
		body: map[string]string{"terms_version": termsVersion}, want: http.StatusOK, out: &u}); err != nil {
		return nil, err
	}
	return &u, c.Refresh(ctx)
}

// Settings returns the signed-in owner's ad space.
func (c *Client) Settings(ctx context.Context) (*Space, error) {
	var s Space
	return &s, c.call(ctx, call{method: http.MethodGet, path: "/ad-space/settings", auth: true, want: http.StatusOK, out: &s})
}

// PutSettings replaces the space's settings. With version > 0 it is sent
// as If-Match, and a space changed since answers 409 (a conflict).
func (c *Client) PutSettings(ctx context.Context, settings SpaceSettings, version int64) (*Space, error) {
	h := http.Header{}
	if version > 0 {
		h.Set("If-Match", strconv.Quote(strconv.FormatInt(version, 10)))
	}
	var s Space
	return &s, c.call(ctx, call{method: http.MethodPut, path: "/ad-space/settings", auth: true, header: h,
		body: settings, want: http.StatusOK, out: &s})
}

// CreateContent creates an ad (an advertiser's); with Submit it goes to
// review at once.
func (c *Client) CreateContent(ctx context.Context, req ContentRequest) (*Content, error) {
	var ct Content
	return &ct, c.call(ctx, call{method: http.MethodPost, path: "/ad-space/content", auth: true, body: req,
		want: http.StatusCreated, out: &ct})
}

// Content returns one of the caller's ads.
func (c *Client) Content(ctx context.Context, id uuid.UUID) (*Content, error) {
	var ct Content
	return &ct, c.call(ctx, call{method: http.MethodGet, path: "/ad-space/content/" + id.String(), auth: true,
		want: http.StatusOK, out: &ct})
}

// ListContent returns the caller's ads, filtered by status when given.
func (c *Client) ListContent(ctx context.Context, status string) ([]Content, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	var out struct {
		Contents []Content `json:"contents"`
	}
	return out.Contents, c.call(ctx, call{method: http.MethodGet, path: "/ad-space/content", query: q, auth: true,
		want: http.StatusOK, out: &out})
}

// Approve approves an ad under review (moderators and admins).
func (c *Client) Approve(ctx context.Context, id uuid.UUID) (*Content, error) {
	var ct Content
	return &ct, c.call(ctx, call{method: http.MethodPost, path: "/moderation/content/" + id.String() + "/approve",
		auth: true, want: http.StatusOK, out: &ct})
}

// Fill asks what owner's space shows now. It is sent signed in when the
// client is (the viewer's identity then counts for the self-view rule)
// and anonymously otherwise.
func (c *Client) Fill(ctx context.Context, owner uuid.UUID, p *FillParams) (*Fill, error) {
	q := url.Values{}
	if p != nil {
		set := func(k, v string) {
			if v != "" {
				q.Set(k, v)
			}
		}
		set("device", p.Device)
		if p.GDPRApplies != nil {
			q.Set("gdpr_applies", strconv.FormatBool(*p.GDPRApplies))
		}
		set("gdpr_consent", p.GDPRConsent)
		if p.DoNotSell {
			q.Set("do_not_sell", "true")
		}
		if p.Count > 0 {
			q.Set("count", strconv.Itoa(p.Count))
		}
		set("keywords", strings.Join(p.Keywords, ","))
		set("locale", p.Locale)
		set("os", p.OS)
		set("app_version", p.AppVersion)
	}
	var f Fill
	return &f, c.call(ctx, call{method: http.MethodGet, path: "/ad-space/" + owner.String(), query: q,
		auth: c.Tokens() != nil, want: http.StatusOK, out: &f})
}

// ReportEvents reports tracking events (at most 100) and returns the
// server's answer for each, in order. A rejected event is an answer, not
// an error: see EventResult.Error.
func (c *Client) ReportEvents(ctx context.Context, events []EventReport) ([]EventResult, error) {
	var out struct {
		Results []EventResult `json:"results"`
	}
	if err := c.call(ctx, call{method: http.MethodPost, path: "/events", body: map[string]any{"events": events},
		want: http.StatusOK, out: &out}); err != nil {
		return nil, err
	}
	return out.Results, nil
}

// Click follows a served ad's click link (Tracking.ClickURL, relative or
// absolute) as the app's browser would, without following the redirect,
// and returns where it sends the viewer. Errors: a *Problem, such as 404
// no_destination.
func (c *Client) Click(ctx context.Context, clickURL string) (string, error) {
	u, err := url.Parse(clickURL)
	if err != nil {
		return "", fmt.Errorf("client: click URL: %w", err)
	}
	if !u.IsAbs() {
		// A link relative to the API's root; one the server built under
		// its public URL already carries the base path.
		path := u.Path
		if !strings.HasPrefix(path, c.base.Path+"/") {
			path = c.base.Path + path
		}
		u = c.base.ResolveReference(&url.URL{Path: path, RawQuery: u.RawQuery})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	hc := *c.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusFound {
		return "", problemFrom(resp)
	}
	return resp.Header.Get("Location"), nil
}

// StartTopUp starts a top-up of amount minor units (cents) of currency,
// with a fresh idempotency key. Without a payment processor it awaits an
// admin's confirmation.
func (c *Client) StartTopUp(ctx context.Context, amount int64, currency string) (*TopUp, error) {
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	h := http.Header{}
	h.Set("Idempotency-Key", hex.EncodeToString(key))
	var t TopUp
	return &t, c.call(ctx, call{method: http.MethodPost, path: "/billing/topups", auth: true, header: h,
		body: map[string]any{"amount": amount, "currency": currency}, want: http.StatusCreated, out: &t})
}

// ConfirmTopUp confirms a manual top-up (admins), crediting the budget.
func (c *Client) ConfirmTopUp(ctx context.Context, id uuid.UUID) (*TopUp, error) {
	var t TopUp
	return &t, c.call(ctx, call{method: http.MethodPost, path: "/billing/topups/" + id.String() + "/confirm",
		auth: true, want: http.StatusOK, out: &t})
}

// Performance returns the performance report.
func (c *Client) Performance(ctx context.Context, p *ReportParams) (*PerformanceReport, error) {
	var r PerformanceReport
	return &r, c.call(ctx, call{method: http.MethodGet, path: "/analytics/performance", query: reportQuery(p, true),
		auth: true, want: http.StatusOK, out: &r})
}

// Revenue returns the revenue report.
func (c *Client) Revenue(ctx context.Context, p *ReportParams) (*RevenueReport, error) {
	var r RevenueReport
	return &r, c.call(ctx, call{method: http.MethodGet, path: "/analytics/revenue", query: reportQuery(p, false),
		auth: true, want: http.StatusOK, out: &r})
}

func reportQuery(p *ReportParams, groups bool) url.Values {
	q := url.Values{}
	if p == nil {
		return q
	}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("scope", p.Scope)
	if !p.From.IsZero() {
		q.Set("from", p.From.UTC().Format(time.RFC3339))
	}
	if !p.To.IsZero() {
		q.Set("to", p.To.UTC().Format(time.RFC3339))
	}
	set("granularity", p.Granularity)
	set("tz", p.TZ)
	if groups {
		set("group_by", p.GroupBy)
	}
	return q
}

// call is one API request.
type call struct {
	method, path string
	query        url.Values
	header       http.Header
	body         any  // JSON-encoded when non-nil
	auth         bool // send the access token (refreshing it as needed)
	want         int  // the success status
	out          any  // decoded from a success answer when non-nil
}

// call sends k and decodes its answer. An authenticated call refreshes a
// token about to expire first, and once more after a 401 that refused
// the current token.
func (c *Client) call(ctx context.Context, k call) error {
	var body []byte
	if k.body != nil {
		var err error
		if body, err = json.Marshal(k.body); err != nil {
			return fmt.Errorf("client: %s %s: %w", k.method, k.path, err)
		}
	}
	for attempt := 0; ; attempt++ {
		token := ""
		if k.auth {
			var err error
			if token, err = c.accessToken(ctx); err != nil {
				return err
			}
		}
		resp, err := c.send(ctx, k, body, token)
		if err != nil {
			return fmt.Errorf("client: %s %s: %w", k.method, k.path, err)
		}
		if resp.StatusCode == k.want {
			err := decode(resp, k.out)
			drain(resp)
			return err
		}
		p := problemFrom(resp)
		drain(resp)
		if k.auth && attempt == 0 && resp.StatusCode == http.StatusUnauthorized && p.Code != "token_revoked" {
			if rerr := c.refresh(ctx, token); rerr != nil {
				return errors.Join(p, rerr)
			}
			continue
		}
		return p
	}
}

// accessToken returns the access token, refreshed first when it expires
// within RefreshBefore.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	t := c.tokens
	c.mu.Unlock()
	if t == nil {
		return "", ErrNotSignedIn
	}
	if t.ExpiresAt.IsZero() || c.cfg.Now().Add(c.cfg.RefreshBefore).Before(t.ExpiresAt) {
		return t.AccessToken, nil
	}
	if err := c.refresh(ctx, t.AccessToken); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil {
		return "", ErrNotSignedIn
	}
	return c.tokens.AccessToken, nil
}

func (c *Client) send(ctx context.Context, k call, body []byte, token string) (*http.Response, error) {
	u := *c.base
	u.Path = c.base.Path + k.path
	u.RawQuery = k.query.Encode()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, u.String(), r)
	if err != nil {
		return nil, err
	}
	for name, vs := range k.header {
		req.Header[name] = vs
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Accept", "application/json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return c.http.Do(req)
}

func decode(resp *http.Response, out any) error {
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswerBytes)).Decode(out); err != nil {
		return fmt.Errorf("client: decoding the answer to %s %s: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return nil
}

// drain reads what is left of a body (so the connection is reused) and
// closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
	_ = resp.Body.Close()
}
