package stripe

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/adshare/adshare/billing"
)

// Client is billing.Processor on Stripe Connect: top-ups are
// PaymentIntents on the platform account, owners have Express accounts,
// payouts are Transfers to them (separate charges and transfers). It uses
// a stripe-go client.API of its own (never stripe-go's package globals),
// so several Clients with other keys can live in one process. Safe for
// concurrent use.
type Client struct {
	cfg     Config // SecretKey cleared: the key lives behind key only
	key     *Secret
	api     *client.API
	hc      *http.Client
	owned   bool // hc's transport is the Client's, so Stop closes it
	metrics *metrics
}

var (
	_ billing.Processor     = (*Client)(nil)
	_ billing.AccountCloser = (*Client)(nil)
)

// New returns a Client. It sends nothing: the key is first used by the
// first call.
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	hc, owned := cfg.HTTPClient, false
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		owned = true
	}
	retries := int64(cfg.MaxNetworkRetries)
	backend := stripego.GetBackendWithConfig(stripego.APIBackend, &stripego.BackendConfig{
		URL:               stripego.String(cfg.BaseURL),
		HTTPClient:        hc,
		MaxNetworkRetries: &retries,
		// stripe-go logs through its own logger; the Client logs each
		// call itself, with the request id and the idempotency key.
		LeveledLogger:   &stripego.LeveledLogger{Level: stripego.LevelNull},
		EnableTelemetry: stripego.Bool(false),
	})
	key := cfg.SecretKey
	cfg.SecretKey = ""
	return &Client{
		cfg:     cfg,
		key:     &key,
		api:     client.New(string(key), &stripego.Backends{API: backend, Connect: backend, Uploads: backend}),
		hc:      hc,
		owned:   owned,
		metrics: m,
	}, nil
}

// Stop closes the idle connections of the Client's own transport (not of
// Config.HTTPClient's). The Client stays usable. Idempotent.
func (c *Client) Stop(context.Context) error {
	if c.owned {
		c.hc.CloseIdleConnections()
	}
	return nil
}

// CreatePayment creates a PaymentIntent with automatic payment methods,
// the advertiser and top-up ids in its metadata (MetadataAdvertiser,
// MetadataTopUp), r.Group as its transfer_group, and r.Key as the
// idempotency key.
func (c *Client) CreatePayment(ctx context.Context, r billing.PaymentRequest) (billing.Payment, error) {
	if err := r.Validate(); err != nil {
		return billing.Payment{}, err
	}
	p := paymentParams(r)
	var pi *stripego.PaymentIntent
	err := c.call(ctx, "create_payment", r.Key, c.cfg.Timeout, func(ctx context.Context) (*stripego.APIResponse, error) {
		p.Context = ctx
		var err error
		pi, err = c.api.PaymentIntents.New(p)
		return pi.LastResponse, err
	})
	if err != nil {
		return billing.Payment{}, err
	}
	out := paymentOf(pi)
	out.ClientSecret = pi.ClientSecret
	return out, nil
}

// Payment reads a PaymentIntent with its latest charge's balance
// transaction expanded, so that Fee, Refunded and Disputed are set (Fee
// once Stripe has made the balance transaction).
func (c *Client) Payment(ctx context.Context, id string) (billing.Payment, error) {
	if id == "" {
		return billing.Payment{}, billing.NewProcessorError(true, billing.CodeInvalidRequest, "the payment id is required", "", nil)
	}
	p := paymentGetParams()
	var pi *stripego.PaymentIntent
	err := c.call(ctx, "get_payment", "", c.cfg.Timeout, func(ctx context.Context) (*stripego.APIResponse, error) {
		p.Context = ctx
		var err error
		pi, err = c.api.PaymentIntents.Get(id, p)
		return pi.LastResponse, err
	})
	if err != nil {
		return billing.Payment{}, err
	}
	return paymentOf(pi), nil
}

// CreateAccount creates an Express account requesting the transfers and
// card_payments capabilities, the owner's id in its metadata
// (MetadataOwner), under r.Key.
func (c *Client) CreateAccount(ctx context.Context, r billing.AccountRequest) (billing.ConnectedAccount, error) {
	if err := r.Validate(); err != nil {
		return billing.ConnectedAccount{}, err
	}
	p := accountParams(r)
	var a *stripego.Account
	err := c.call(ctx, "create_account", r.Key, c.cfg.Timeout, func(ctx context.Context) (*stripego.APIResponse, error) {
		p.Context = ctx
		var err error
		a, err = c.api.Accounts.New(p)
		return a.LastResponse, err
	})
	if err != nil {
		return billing.ConnectedAccount{}, err
	}
	return accountOf(a), nil
}

// Account reads a connected account.
func (c *Client) Account(ctx context.Context, id string) (billing.ConnectedAccount, error) {
	if id == "" {
		return billing.ConnectedAccount{}, billing.NewProcessorError(true, billing.CodeInvalidRequest, "the connected account id is required", "", nil)
	}
	var a *stripego.Account
	err := c.call(ctx, "get_account", "", c.cfg.Timeout, func(ctx context.Context) (*stripego.APIResponse, error) {
		var err error
		a, err = c.api.Accounts.GetByID(id, &stripego.AccountParams{Params: stripego.Params{Context: ctx}})
		return a.LastResponse, err
	})
	if err != nil {
		return billing.ConnectedAccount{}, err
	}
	return accountOf(a), nil
}

// CloseAccount deletes a connected account (DELETE /v1/accounts/{id}),
// for its owner's erasure: Stripe deletes a Custom or Express account
// whose balance is zero and keeps, under its own obligations, the records
// the law makes it keep. An account Stripe no longer has is not an error.
func (c *Client) CloseAccount(ctx context.Context, id string) error {
	if id == "" {
		return billing.NewProcessorError(true, billing.CodeInvalidRequest, "the connected account id is required", "", nil)
	}
	err := c.call(ctx, "delete_account", "", c.cfg.Timeout, func(ctx context.Context) (*stripego.APIResponse, error) {
		a, err := c.api.Accounts.Del(id, &stripego.AccountParams{Params: stripego.Params{Context: ctx}})
		if a == nil {
			return nil, err
		}
		return a.LastResponse, err
	})
	var pe *billing.ProcessorError
	if errors.As(err, &pe) && pe.Code == "resource_missing" {
		return nil
	}
	return err
}

// OnboardingLink creates an account_onboarding account link (single use,
// valid for minutes: make one each time the owner asks).
func (c *Client) OnboardingLink(ctx context.Context, accountID, refreshURL, returnURL string) (string, error) {
	if err := billing.ValidateOnboardingLink(accountID, refreshURL, returnURL); err != nil {
		return "", err
	}
	p := accountLinkParams(accountID, refreshURL, returnURL)
	var l *stripego.AccountLink
	err := c.call(ctx, "onboarding_link", "", c.cfg.Timeout, func(ctx context.Context) (*stripego.APIResponse, error) {
		p.Context = ctx
		var err error
		l, err = c.api.AccountLinks.New(p)
		return l.LastResponse, err
	})
	if err != nil {
		return "", err
	}
	return l.URL, nil
}

// Transfer creates a Transfer from the platform's available balance to
// r.Destination, in transfer group r.Group, the payout's id in its
// metadata (MetadataPayout), under r.Key. Stripe refuses it (definite,
// balance_insufficient) when the available balance is short.
func (c *Client) Transfer(ctx context.Context, r billing.TransferRequest) (billing.Transfer, error) {
	if err := r.Validate(); err != nil {
		return billing.Transfer{}, err
	}
	p := transferParams(r)
	var t *stripego.Transfer
	err := c.call(ctx, "transfer", r.Key, c.cfg.Timeout, func(ctx context.Context) (*stripego.APIResponse, error) {
		p.Context = ctx
		var err error
		t, err = c.api.Transfers.New(p)
		return t.LastResponse, err
	})
	if err != nil {
		return billing.Transfer{}, err
	}
	return transferOf(t), nil
}

// TransfersInGroup lists the transfers of a transfer group, newest first.
func (c *Client) TransfersInGroup(ctx context.Context, group string) ([]billing.Transfer, error) {
	if group == "" {
		return nil, billing.NewProcessorError(true, billing.CodeInvalidRequest, "the transfer group is required", "", nil)
	}
	return c.transfers(ctx, "transfers_in_group", transferListParams(group, time.Time{}))
}

// Transfers lists the transfers created at or after since, newest first.
// More than Config.MaxListItems fail with CodeListTooLong.
func (c *Client) Transfers(ctx context.Context, since time.Time) ([]billing.Transfer, error) {
	return c.transfers(ctx, "list_transfers", transferListParams("", since))
}

func (c *Client) transfers(ctx context.Context, op string, p *stripego.TransferListParams) ([]billing.Transfer, error) {
	var out []billing.Transfer
	err := c.call(ctx, op, "", c.cfg.ListTimeout, func(ctx context.Context) (*stripego.APIResponse, error) {
		p.Context = ctx
		it := c.api.Transfers.List(p)
		var err error
		out, err = collect(it.Iter, c.cfg.MaxListItems, transferOf)
		return it.TransferList().LastResponse, err
	})
	return out, err
}

// BalanceTransactions lists the platform's balance transactions created
// at or after since, newest first. More than Config.MaxListItems fail
// with CodeListTooLong.
func (c *Client) BalanceTransactions(ctx context.Context, since time.Time) ([]billing.BalanceTransaction, error) {
	p := balanceTransactionListParams(since)
	var out []billing.BalanceTransaction
	err := c.call(ctx, "list_balance_transactions", "", c.cfg.ListTimeout, func(ctx context.Context) (*stripego.APIResponse, error) {
		p.Context = ctx
		it := c.api.BalanceTransactions.List(p)
		var err error
		out, err = collect(it.Iter, c.cfg.MaxListItems, balanceTransactionOf)
		return it.BalanceTransactionList().LastResponse, err
	})
	return out, err
}

// collect reads a listing, every page, mapping each item; past max items
// it stops with CodeListTooLong.
func collect[S any, T any](it *stripego.Iter, max int, conv func(S) T) ([]T, error) {
	var out []T
	for it.Next() {
		if len(out) == max {
			return nil, billing.NewProcessorError(true, CodeListTooLong,
				"the listing has more items than Config.MaxListItems: reconcile a shorter window", "", nil)
		}
		out = append(out, conv(it.Current().(S)))
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// call is the one thin I/O method: it bounds send by timeout, translates
// its error (processorError), and logs and counts the call with Stripe's
// request id and the idempotency key (key, or the one stripe-go made).
func (c *Client) call(ctx context.Context, op, key string, timeout time.Duration, send func(context.Context) (*stripego.APIResponse, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	resp, err := send(ctx)
	elapsed := time.Since(start)
	pe := processorError(err, *c.key)

	requestID := ""
	if resp != nil {
		requestID = resp.RequestID
		if key == "" {
			key = resp.IdempotencyKey
		}
	}
	attrs := []slog.Attr{slog.String("op", op), slog.Duration("duration", elapsed)}
	if pe == nil {
		c.metrics.observe(op, outcomeOK, elapsed)
		attrs = append(attrs, slog.String("request_id", requestID), slog.String("idempotency_key", key))
		c.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "stripe: call", attrs...)
		return nil
	}
	outcome := outcomeAmbiguous
	if pe.Definite {
		outcome = outcomeDefinite
	}
	c.metrics.observe(op, outcome, elapsed)
	attrs = append(attrs, slog.String("request_id", pe.RequestID), slog.String("idempotency_key", key),
		slog.String("outcome", outcome), slog.String("code", pe.Code), slog.String("error", pe.Message))
	c.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "stripe: call failed", attrs...)
	return pe
}
