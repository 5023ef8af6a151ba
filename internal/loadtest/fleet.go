package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FleetConfig describes the accounts and ads a Fleet sets up on a server
// before it is loaded.
type FleetConfig struct {
	// Base is the server's URL.
	Base string
	// Owners is how many ad-space owners there are (default 40); each is
	// signed in four times, for four refresh tokens.
	Owners int
	// Spare is how many owners are set up apart (Fleet.Spare): neither
	// filled for tokens nor in the mix, for a test's own checks.
	Spare int
	// Advertisers each fund one approved ad (default 10).
	Advertisers int
	// SignIns is how many accounts exist only to sign in during the run
	// (default 20); each may sign in four times before its per-account
	// limit (5 in 15 minutes) would refuse it.
	SignIns int
	// Tokens is how many served ads' tracking tokens are gathered by
	// fills before the run, for impressions and clicks (default 2000).
	Tokens int
	// Promote gives the account with this email a role (moderator, admin
	// or advertiser), as an operator does (the example server's `users
	// set-role`). Promote or Operator is required.
	Promote func(ctx context.Context, email, role string) error
	// Operator, when Promote is nil, is an admin account through which
	// Setup gives the roles over the API (PUT /users/{id}/role): for a
	// server whose store no command reaches, such as the example server on
	// its in-memory store with -admin-email.
	Operator *Credentials
	// Payees is how many owners are set up to be paid (default none): each
	// has twice PayoutAmount of available earnings (through Earn) and asks
	// for one payout of PayoutAmount in the fleet's runs (PayoutsLeft). The
	// server must pay out by hand (no payment processor: the example
	// server without a Stripe key), where a payout needs no payee account;
	// with a processor, a new payee's first payout waits a week.
	Payees int
	// PayoutAmount is each payout, in minor units of the server's currency
	// (default 5000: $50, the default free tier's minimum payout).
	PayoutAmount int64
	// Earn credits an owner's available earnings with micros, as
	// settlement and the end of the hold window do (which a run cannot
	// wait for): the example server's tests post it to its ledger.
	// Required with Payees.
	Earn func(ctx context.Context, owner string, micros int64) error
	// Client sends the setup's requests (default: a client with a 30 s
	// timeout).
	Client *http.Client
}

// Credentials are an account's email and password.
type Credentials struct{ Email, Password string }

// Member is one signed-in account of the fleet.
type Member struct {
	ID, Email, Access string
	Refresh           []string
	// Addr is the client address its requests come from (the server must
	// trust 127.0.0.1 as a proxy for X-Forwarded-For).
	Addr string
}

// Fleet is a server populated as a fleet of apps finds it: owners with
// spaces, advertisers with funded approved ads, and the tokens of ads
// served, from which Mix builds the requests of a run.
type Fleet struct {
	Base        string
	Owners      []*Member
	Advertisers []*Member
	SignIns     []*Member
	Spare       []*Member
	// Payees are owners with available earnings, each to ask for one
	// payout (FleetConfig.Payees).
	Payees     []*Member
	Admin, Mod *Member
	// Tracking are served ads' tracking tokens; Clicks their click links.
	Tracking []string
	Clicks   []string
	// Viewers, when set before Mix, is how many viewers (a device id and
	// a client address each) the mix's fills, events and clicks come
	// from, over and over: a population that returns, whose per-viewer
	// state (frequency counts, rate-limit buckets) stops growing once all
	// have been seen, as a soak needs. Zero: a new viewer every request.
	Viewers int

	settings   [][]byte // each owner's settings, as PUT takes them
	payout     []byte   // a payout request's body
	payouts    atomic.Uint64
	trackOwner []int         // the index in Owners of each token's space
	used       []atomic.Bool // by token: its impression was sent
	sockets    atomic.Pointer[Sockets]
	client     *http.Client
	addrs      int
	mu         sync.Mutex
}

// FleetPassword is every fleet account's password.
const FleetPassword = "a long enough load-test passphrase"

// microsPerCent converts the fleet's amounts (US cents) to the ledger's
// micros.
const microsPerCent = 10_000

// Setup registers and funds the fleet through the server's API and
// gathers tracking tokens. It takes a few seconds per hundred accounts.
func Setup(ctx context.Context, cfg FleetConfig) (*Fleet, error) {
	if (cfg.Promote == nil && cfg.Operator == nil) || cfg.Base == "" {
		return nil, errors.New("loadtest: Setup needs the server's URL and a way to promote accounts (Promote or Operator)")
	}
	switch {
	case cfg.Payees < 0 || cfg.PayoutAmount < 0:
		return nil, errors.New("loadtest: FleetConfig.Payees and PayoutAmount must not be negative")
	case cfg.Payees > 0 && cfg.Earn == nil:
		return nil, errors.New("loadtest: FleetConfig.Payees needs Earn, a way to credit the payees' earnings")
	}
	if cfg.PayoutAmount == 0 {
		cfg.PayoutAmount = 5000
	}
	cfg.Owners = orDefault(cfg.Owners, 40)
	cfg.Advertisers = orDefault(cfg.Advertisers, 10)
	cfg.SignIns = orDefault(cfg.SignIns, 20)
	cfg.Tokens = orDefault(cfg.Tokens, 2000)
	f := &Fleet{Base: strings.TrimRight(cfg.Base, "/"), client: cfg.Client, payout: fmt.Appendf(nil, `{"amount":%d}`, cfg.PayoutAmount)}
	if f.client == nil {
		f.client = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	run := time.Now().UnixNano()
	email := func(kind string, i int) string { return fmt.Sprintf("%s%d-%d@load.example.com", kind, i, run) }

	var err error
	if f.Admin, err = f.register(ctx, email("admin", 0)); err != nil {
		return nil, err
	}
	if f.Mod, err = f.register(ctx, email("mod", 0)); err != nil {
		return nil, err
	}
	promote := []struct {
		m    *Member
		role string
	}{{f.Admin, "admin"}, {f.Mod, "moderator"}}
	for i := range cfg.Advertisers {
		m, err := f.register(ctx, email("adv", i))
		if err != nil {
			return nil, err
		}
		f.Advertisers = append(f.Advertisers, m)
		promote = append(promote, struct {
			m    *Member
			role string
		}{m, "advertiser"})
	}
	promoteOne := func(m *Member, role string) error { return cfg.Promote(ctx, m.Email, role) }
	if cfg.Promote == nil {
		op := &Member{Email: cfg.Operator.Email, Addr: f.addr()}
		if err := f.signIn(ctx, op, cfg.Operator.Password); err != nil {
			return nil, fmt.Errorf("loadtest: the operator's sign-in: %w", err)
		}
		promoteOne = func(m *Member, role string) error {
			return f.call(ctx, op, http.MethodPut, "/users/"+m.ID+"/role", map[string]string{"role": role}, http.StatusOK, nil)
		}
	}
	for _, p := range promote {
		if err := promoteOne(p.m, p.role); err != nil {
			return nil, fmt.Errorf("loadtest: promote %s to %s: %w", p.m.Email, p.role, err)
		}
	}
	if err := f.parallel(ctx, cfg.Owners, func(i int) error {
		m, err := f.register(ctx, email("owner", i))
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.Owners = append(f.Owners, m)
		f.mu.Unlock()
		return nil
	}); err != nil {
		return nil, err
	}
	for i := range cfg.Spare {
		m, err := f.register(ctx, email("spare", i))
		if err != nil {
			return nil, err
		}
		f.Spare = append(f.Spare, m)
	}
	if err := f.setupPayees(ctx, cfg, func(i int) string { return email("payee", i) }); err != nil {
		return nil, err
	}
	if err := f.parallel(ctx, cfg.SignIns, func(i int) error {
		m, err := f.register(ctx, email("signin", i))
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.SignIns = append(f.SignIns, m)
		f.mu.Unlock()
		return nil
	}); err != nil {
		return nil, err
	}
	// A token issued in the second of a role change is refused: sign in
	// again after it.
	time.Sleep(1100 * time.Millisecond)
	for _, m := range append([]*Member{f.Admin, f.Mod}, f.Advertisers...) {
		if err := f.login(ctx, m); err != nil {
			return nil, err
		}
	}
	f.settings = make([][]byte, len(f.Owners))
	if err := f.parallel(ctx, len(f.Owners), func(i int) error {
		m := f.Owners[i]
		for range 3 { // four sessions in all with the registration's
			if err := f.login(ctx, m); err != nil {
				return err
			}
		}
		var space struct {
			Settings json.RawMessage `json:"settings"`
		}
		if err := f.call(ctx, m, http.MethodGet, "/ad-space/settings", nil, http.StatusOK, &space); err != nil {
			return err
		}
		f.settings[i] = space.Settings // each worker its own index
		return nil
	}); err != nil {
		return nil, err
	}
	for i, adv := range f.Advertisers {
		var topUp struct {
			ID string `json:"id"`
		}
		if err := f.call(ctx, adv, http.MethodPost, "/billing/topups", map[string]any{"amount": 1_000_000, "currency": "usd"},
			http.StatusCreated, &topUp, "Idempotency-Key", fmt.Sprintf("load-%d-%d", run, i)); err != nil {
			return nil, err
		}
		if err := f.call(ctx, f.Admin, http.MethodPost, "/billing/topups/"+topUp.ID+"/confirm", nil, http.StatusOK, nil); err != nil {
			return nil, err
		}
		var content struct {
			ID string `json:"id"`
		}
		if err := f.call(ctx, adv, http.MethodPost, "/ad-space/content", map[string]any{
			"format": "banner", "title": fmt.Sprintf("Load test ad %d", i), "body": "Roasted weekly.",
			"click_url": "https://shop.example.com/load", "bid": map[string]any{"model": "cpm", "micros": 2_000_000 + i},
			"total_budget_micros": 500_000_000_000, "submit": true,
		}, http.StatusCreated, &content); err != nil {
			return nil, err
		}
		if err := f.call(ctx, f.Mod, http.MethodPost, "/moderation/content/"+content.ID+"/approve", nil, http.StatusOK, nil); err != nil {
			return nil, err
		}
	}
	if err := f.gather(ctx, cfg.Tokens); err != nil {
		return nil, err
	}
	f.used = make([]atomic.Bool, len(f.Tracking))
	// An impression counts once its ad was on screen a second.
	time.Sleep(1100 * time.Millisecond)
	return f, nil
}

// setupPayees registers cfg.Payees owners and credits each with twice
// the payout, checking that the server pays out by hand and that the
// earnings are available.
func (f *Fleet) setupPayees(ctx context.Context, cfg FleetConfig, email func(int) string) error {
	if cfg.Payees == 0 {
		return nil
	}
	earned := 2 * cfg.PayoutAmount * microsPerCent
	f.Payees = make([]*Member, cfg.Payees)
	if err := f.parallel(ctx, cfg.Payees, func(i int) error {
		m, err := f.register(ctx, email(i))
		if err != nil {
			return err
		}
		if err := cfg.Earn(ctx, m.ID, earned); err != nil {
			return fmt.Errorf("loadtest: credit %s's earnings: %w", m.Email, err)
		}
		var bal struct {
			Available int64 `json:"available_micros"`
		}
		if err := f.call(ctx, m, http.MethodGet, "/billing/balance", nil, http.StatusOK, &bal); err != nil {
			return err
		}
		if bal.Available < earned {
			return fmt.Errorf("loadtest: %s has %d micros available after Earn, want %d", m.Email, bal.Available, earned)
		}
		f.Payees[i] = m // each worker its own index
		return nil
	}); err != nil {
		return err
	}
	// With a processor, a payout needs an onboarded, enabled payee
	// account that is a week old: not something a run can set up.
	var problem struct {
		Code string `json:"code"`
	}
	err := f.call(ctx, f.Payees[0], http.MethodPost, "/billing/payee", map[string]string{"country": "US"}, http.StatusConflict, &problem)
	if err == nil && problem.Code != "manual_payouts" {
		err = fmt.Errorf("code %q", problem.Code)
	}
	if err != nil {
		return fmt.Errorf("loadtest: payees need a server that pays out by hand (no payment processor), where POST /billing/payee answers 409 manual_payouts: %w", err)
	}
	return nil
}

func orDefault(n, d int) int {
	if n <= 0 {
		return d
	}
	return n
}

// gather fills owners' spaces until n tracking tokens are in hand (the
// local engine picks up newly funded ads within seconds).
func (f *Fleet) gather(ctx context.Context, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for len(f.Tracking) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("loadtest: fills served %d ads in 30 s, %d wanted", len(f.Tracking), n)
		}
		start, want := len(f.Tracking), n-len(f.Tracking)
		if err := f.parallel(ctx, min(want, 400), func(i int) error {
			owner := f.Owners[(start+i)%len(f.Owners)]
			var out struct {
				Ads []struct {
					Tracking struct {
						Token    string `json:"token"`
						ClickURL string `json:"click_url"`
					} `json:"tracking"`
				} `json:"ads"`
			}
			dev := fmt.Sprintf("gather-%d-%d", time.Now().UnixNano(), i)
			if err := f.call(ctx, nil, http.MethodGet, "/ad-space/"+owner.ID+"?gdpr_applies=false", nil, http.StatusOK, &out,
				"X-Adshare-Device", dev); err != nil {
				return err
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, ad := range out.Ads {
				f.Tracking = append(f.Tracking, ad.Tracking.Token)
				f.trackOwner = append(f.trackOwner, (start+i)%len(f.Owners))
				click := ad.Tracking.ClickURL
				if strings.HasPrefix(click, "/") {
					click = f.Base + click
				}
				f.Clicks = append(f.Clicks, click)
			}
			return nil
		}); err != nil {
			return err
		}
		if len(f.Tracking) == 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

// parallel runs fn(0..n-1) on 16 workers and returns the first error.
func (f *Fleet) parallel(ctx context.Context, n int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range min(n, 16) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// addr hands out client addresses, one per account: a fleet's devices
// come from many networks.
func (f *Fleet) addr() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs++
	return fmt.Sprintf("10.%d.%d.%d", 100+f.addrs/65000, (f.addrs/250)%250, f.addrs%250+1)
}

func (f *Fleet) register(ctx context.Context, email string) (*Member, error) {
	m := &Member{Email: email, Addr: f.addr()}
	var out struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	err := f.call(ctx, m, http.MethodPost, "/auth/register", map[string]any{"email": email, "password": FleetPassword},
		http.StatusCreated, &out)
	var se *setupError
	if errors.As(err, &se) && se.status == http.StatusConflict {
		// The fleet's emails are its own: an attempt answered 503 (too
		// late, on a loaded machine) made the account, so sign in to it.
		err = f.call(ctx, m, http.MethodPost, "/auth/login", map[string]any{"email": email, "password": FleetPassword},
			http.StatusOK, &out)
	}
	if err != nil {
		return nil, err
	}
	m.ID, m.Access, m.Refresh = out.User.ID, out.Access, []string{out.Refresh}
	return m, nil
}

func (f *Fleet) login(ctx context.Context, m *Member) error { return f.signIn(ctx, m, FleetPassword) }

// RenewAccess signs every owner and advertiser in again, as an app whose
// session ran out would: the new session's access token replaces the
// member's, and its refresh token joins the member's (the ones a mix
// holds stay good). A run that ends past the access tokens' life (15
// minutes by default) from the fleet's setup takes it first: the long
// profile's soak follows a capacity search, and its signed-in reads
// answered 401 once the setup's tokens expired.
func (f *Fleet) RenewAccess(ctx context.Context) error {
	members := append(slices.Clone(f.Owners), f.Advertisers...)
	return f.parallel(ctx, len(members), func(i int) error { return f.login(ctx, members[i]) })
}

// signIn signs m in with password, adding the session's tokens to m.
func (f *Fleet) signIn(ctx context.Context, m *Member, password string) error {
	var out struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	access := m.Access
	m.Access = ""
	err := f.call(ctx, m, http.MethodPost, "/auth/login", map[string]any{"email": m.Email, "password": password}, http.StatusOK, &out)
	if err != nil {
		m.Access = access
		return err
	}
	m.Access = out.Access
	m.Refresh = append(m.Refresh, out.Refresh)
	return nil
}

// setupError is a setup request answered with another status than the
// one wanted.
type setupError struct {
	status int
	msg    string
}

func (e *setupError) Error() string { return e.msg }

// call sends one setup request as m (anonymous when nil) and decodes the
// answer, which must have the wanted status. A 503 is tried again a few
// times, after its Retry-After (at most 2 s), as an app does: setup on a
// loaded machine meets a dependency's slow moment, which is not what a
// run measures.
func (f *Fleet) call(ctx context.Context, m *Member, method, path string, body any, want int, out any, header ...string) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return err
		}
	}
	addr := f.addr()
	if m != nil {
		addr = m.Addr
	}
	for attempt := 1; ; attempt++ {
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(raw)
		}
		req, err := http.NewRequestWithContext(ctx, method, f.Base+path, r)
		if err != nil {
			return err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if m != nil && m.Access != "" {
			req.Header.Set("Authorization", "Bearer "+m.Access)
		}
		req.Header.Set("X-Forwarded-For", addr)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := f.client.Do(req)
		if err != nil {
			return fmt.Errorf("loadtest: setup %s %s: %w", method, path, err)
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && want != http.StatusServiceUnavailable && attempt < 5 {
			wait := 500 * time.Millisecond
			if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
				wait = min(time.Duration(secs)*time.Second, 2*time.Second)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		if resp.StatusCode != want {
			return &setupError{status: resp.StatusCode, msg: fmt.Sprintf("loadtest: setup %s %s: %d, want %d: %s", method, path,
				resp.StatusCode, want, answer)}
		}
		if out != nil {
			return json.Unmarshal(answer, out)
		}
		return nil
	}
}

// Weights are the shares of a mix's scenarios (Mix's defaults when
// zero; a negative weight leaves the scenario out).
type Weights struct {
	Fill, Impression, Batch, Click, Settings, Report, Balance, SignIn, Refresh, TopUp, Payout int
}

// DefaultWeights is what a fleet of apps sends, per thousand requests:
// mostly fills, an impression for a good share of them (viewability
// drops the rest), some batched, a few clicks, rare sign-ins, refreshes,
// settings edits, report and balance reads and top-ups, and rarer still
// payouts.
var DefaultWeights = Weights{Fill: 597, Impression: 170, Batch: 20, Click: 40, Settings: 15, Report: 80, Balance: 40,
	SignIn: 5, Refresh: 20, TopUp: 10, Payout: 3}

// Route names of the mix's scenarios.
const (
	RouteFill        = "GET /ad-space/{userId}"
	RouteEvents      = "POST /events"
	RouteClick       = "GET /c/{token}"
	RouteSettings    = "PUT /ad-space/settings"
	RoutePerformance = "GET /analytics/performance"
	RouteBalance     = "GET /billing/balance"
	RouteSignIn      = "POST /auth/login"
	RouteRefresh     = "POST /auth/refresh"
	RouteTopUp       = "POST /billing/topups"
	RoutePayout      = "POST /billing/payouts"
	batchEventCount  = 20
)

// Mix is the fleet's traffic by w (DefaultWeights for zero fields).
// Single and batched impressions share RouteEvents. Each refresh token is
// used once and each sign-in account at most four times: a run asks for
// at most as many as the fleet has (Refreshes, SignInsLeft); beyond that
// they are sent again and refused, as a real replay would be. Each payee
// asks for one payout over all the fleet's mixes (PayoutsLeft); beyond
// that, payees ask again while their payout is pending and are refused
// (409); a fleet without payees sends no payouts.
func (f *Fleet) Mix(w Weights) []Scenario {
	d := DefaultWeights
	pick := func(v, def int) int {
		if v == 0 {
			return def
		}
		return v
	}
	w = Weights{pick(w.Fill, d.Fill), pick(w.Impression, d.Impression), pick(w.Batch, d.Batch), pick(w.Click, d.Click),
		pick(w.Settings, d.Settings), pick(w.Report, d.Report), pick(w.Balance, d.Balance), pick(w.SignIn, d.SignIn),
		pick(w.Refresh, d.Refresh), pick(w.TopUp, d.TopUp), pick(w.Payout, d.Payout)}
	if len(f.Payees) == 0 {
		w.Payout = -1
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	jsonHeader := func(m *Member, auth bool) http.Header {
		h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"AdshareApp/2.1 (iPhone; iOS 18.1)"}}
		if m != nil {
			h.Set("X-Forwarded-For", m.Addr)
			if auth {
				h.Set("Authorization", "Bearer "+m.Access)
			}
		}
		return h
	}
	viewer := func(n uint64) uint64 {
		if f.Viewers > 0 {
			return n % uint64(f.Viewers)
		}
		return n
	}
	device := func(n uint64) string {
		n = viewer(n)
		return fmt.Sprintf("10.%d.%d.%d", 200+n/62500%50, n/250%250, n%250+1)
	}
	impression := func(tok string) map[string]string {
		return map[string]string{"type": "impression", "token": tok, "occurred_at": time.Now().UTC().Format(time.RFC3339Nano)}
	}
	var refresh []string
	for _, o := range f.Owners {
		refresh = append(refresh, o.Refresh...)
	}
	var ss []Scenario
	add := func(weight int, s Scenario) {
		if weight > 0 {
			s.Weight = weight
			ss = append(ss, s)
		}
	}
	add(w.Fill, Scenario{Route: RouteFill, Next: func(n uint64) Request {
		o := f.Owners[n%uint64(len(f.Owners))]
		return Request{URL: f.Base + "/ad-space/" + o.ID + "?gdpr_applies=false", Header: http.Header{
			"X-Adshare-Device": {run + "-" + strconv.FormatUint(viewer(n), 10)}, "X-Forwarded-For": {device(n)},
			"User-Agent": {"AdshareApp/2.1 (iPhone; iOS 18.1)"}}}
	}})
	add(w.Impression, Scenario{Route: RouteEvents, Next: func(n uint64) Request {
		i := int(n % uint64(len(f.Tracking)))
		f.sent(i)
		body, _ := json.Marshal(impression(f.Tracking[i]))
		h := jsonHeader(nil, false)
		h.Set("X-Forwarded-For", device(n))
		return Request{Method: http.MethodPost, URL: f.Base + "/events", Body: body, Header: h}
	}})
	add(w.Batch, Scenario{Route: RouteEvents, Next: func(n uint64) Request {
		events := make([]map[string]string, batchEventCount)
		for i := range events {
			// From the far end of the tokens, so singles and batches
			// overlap only once both have gone round.
			tok := len(f.Tracking) - 1 - int((n*batchEventCount+uint64(i))%uint64(len(f.Tracking)))
			f.sent(tok)
			events[i] = impression(f.Tracking[tok])
		}
		body, _ := json.Marshal(map[string]any{"events": events})
		h := jsonHeader(nil, false)
		h.Set("X-Forwarded-For", device(n+1<<20))
		return Request{Method: http.MethodPost, URL: f.Base + "/events", Body: body, Header: h}
	}})
	add(w.Click, Scenario{Route: RouteClick, OK: []int{http.StatusFound, http.StatusSeeOther}, Next: func(n uint64) Request {
		// Tokens whose impressions the single-impression scenario sent
		// earliest.
		return Request{URL: f.Clicks[n%uint64(len(f.Clicks))], Header: http.Header{"X-Forwarded-For": {device(n)},
			"User-Agent": {"AdshareApp/2.1 (iPhone; iOS 18.1)"}}}
	}})
	add(w.Settings, Scenario{Route: RouteSettings, Next: func(n uint64) Request {
		i := int(n % uint64(len(f.Owners)))
		return Request{Method: http.MethodPut, URL: f.Base + "/ad-space/settings", Body: f.settings[i], Header: jsonHeader(f.Owners[i], true)}
	}})
	add(w.Report, Scenario{Route: RoutePerformance, Next: func(n uint64) Request {
		o := f.Owners[n%uint64(len(f.Owners))]
		return Request{URL: f.Base + "/analytics/performance?granularity=hour", Header: jsonHeader(o, true)}
	}})
	add(w.Balance, Scenario{Route: RouteBalance, Next: func(n uint64) Request {
		o := f.Owners[n%uint64(len(f.Owners))]
		return Request{URL: f.Base + "/billing/balance", Header: jsonHeader(o, true)}
	}})
	add(w.SignIn, Scenario{Route: RouteSignIn, Next: func(n uint64) Request {
		m := f.SignIns[n%uint64(len(f.SignIns))]
		body, _ := json.Marshal(map[string]string{"email": m.Email, "password": FleetPassword})
		h := jsonHeader(m, false)
		h.Set("X-Forwarded-For", device(n+2<<20))
		return Request{Method: http.MethodPost, URL: f.Base + "/auth/login", Body: body, Header: h}
	}})
	add(w.Refresh, Scenario{Route: RouteRefresh, Next: func(n uint64) Request {
		body, _ := json.Marshal(map[string]string{"refresh_token": refresh[n%uint64(len(refresh))]})
		h := jsonHeader(nil, false)
		h.Set("X-Forwarded-For", device(n+3<<20))
		return Request{Method: http.MethodPost, URL: f.Base + "/auth/refresh", Body: body, Header: h}
	}})
	add(w.TopUp, Scenario{Route: RouteTopUp, OK: []int{http.StatusCreated}, Next: func(n uint64) Request {
		a := f.Advertisers[n%uint64(len(f.Advertisers))]
		h := jsonHeader(a, true)
		h.Set("Idempotency-Key", run+"-topup-"+strconv.FormatUint(n, 10))
		return Request{Method: http.MethodPost, URL: f.Base + "/billing/topups", Body: []byte(`{"amount":5000,"currency":"usd"}`), Header: h}
	}})
	add(w.Payout, Scenario{Route: RoutePayout, OK: []int{http.StatusCreated}, Next: func(uint64) Request {
		// The next payee over all mixes: a payee with a payout pending
		// is refused another.
		p := f.Payees[(f.payouts.Add(1)-1)%uint64(len(f.Payees))]
		return Request{Method: http.MethodPost, URL: f.Base + "/billing/payouts", Body: f.payout, Header: jsonHeader(p, true)}
	}})
	return ss
}

// sent notes that the impression of token i is being sent: the first
// time, the sockets of the token's owner expect a metrics.live for it.
func (f *Fleet) sent(i int) {
	if !f.used[i].CompareAndSwap(false, true) {
		return // sent before: the server takes an impression once
	}
	if s := f.sockets.Load(); s != nil {
		s.expect(f.trackOwner[i], time.Now())
	}
}

// Refreshes is how many refresh requests a run may send before reusing
// a token; SignInsLeft how many sign-ins before an account's limit.
func (f *Fleet) Refreshes() int {
	n := 0
	for _, o := range f.Owners {
		n += len(o.Refresh)
	}
	return n
}

// SignInsLeft is how many sign-ins the fleet's sign-in accounts have
// left before their per-account limit.
func (f *Fleet) SignInsLeft() int { return 4 * len(f.SignIns) }

// PayoutsLeft is how many payouts the fleet's mixes may still ask for
// before a payee asks twice.
func (f *Fleet) PayoutsLeft() int { return max(len(f.Payees)-int(f.payouts.Load()), 0) }
