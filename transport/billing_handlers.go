package transport

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/errs"
)

// Defaults of the webhook endpoint's Config fields.
const (
	// DefaultWebhookMaxBodyBytes caps a processor webhook's body: 1 MiB
	// (Stripe's events are a few kilobytes).
	DefaultWebhookMaxBodyBytes int64 = 1 << 20
	// DefaultWebhookConcurrency bounds the webhook deliveries handled at
	// once; more get 503 and are retried by the processor.
	DefaultWebhookConcurrency = 16
)

// stripeWebhookPath is the processor's webhook endpoint. It takes no
// access token (the signature authenticates the processor) and is exempt
// from CORS, the API-wide rate limits and the API-wide body cap: it has
// its own (Config.WebhookMaxBodyBytes, Config.WebhookConcurrency).
const stripeWebhookPath = "/webhooks/stripe"

// isWebhook reports whether r is for the processor's webhook endpoint,
// when it is mounted (without billing, the path is like any other).
func (s *server) isWebhook(r *http.Request) bool {
	return s.billing != nil && r.URL.Path == stripeWebhookPath
}

// maxNoteLen bounds an admin's note on a hold or a recorded payout.
const maxNoteLen = 500

// Errors of the billing endpoints.
var (
	errIdempotencyKeyRequired = errs.New(errs.Malformed, "idempotency_key_required",
		"an Idempotency-Key header is required: a fresh random value per top-up, the same one when retrying it")
	errWebhookBusy = errs.New(errs.Unavailable, "webhook_busy", "too many webhook deliveries at once; retry shortly")
	errProcessor   = errs.New(errs.Unavailable, "processor_unavailable", "the payment processor did not answer; retry shortly")
)

// billingFieldNames maps the services' names of billing fields to the
// request's, where they differ.
var billingFieldNames = map[string]string{"idempotency_key": "header/Idempotency-Key"}

// billingError is err as a billing endpoint answers it: an unknown outcome
// at the processor (a timeout, a 5xx) is a 503 to retry, with the same
// Idempotency-Key; field names point into the request.
func billingError(err error) error {
	var pe *billing.ProcessorError
	if errors.As(err, &pe) && !pe.Definite {
		return errProcessor.WithRetryAfter(5 * time.Second).WithCause(err)
	}
	return renameFields(err, billingFieldNames)
}

// topUpRequest is the body of POST /billing/topups.
type topUpRequest struct {
	// Amount is in minor units (cents).
	Amount   *int64 `json:"amount"`
	Currency string `json:"currency"`
}

// Valid implements validator; the bounds are the service's.
func (t *topUpRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(t.Amount != nil, "amount", "is required, in minor units (cents)")
	f.Check(t.Currency != "", "currency", "is required")
	return f
}

// topUpJSON is a top-up as the API shows it.
type topUpJSON struct {
	ID           uuid.UUID `json:"id"`
	AdvertiserID uuid.UUID `json:"advertiser_id"`
	Amount       int64     `json:"amount"`
	Currency     string    `json:"currency"`
	Status       string    `json:"status"`
	PaymentID    string    `json:"payment_id,omitempty"`
	Refunded     int64     `json:"refunded"`
	Disputed     int64     `json:"disputed"`
	// ClientSecret completes the payment in the app's SDK; only in the
	// answer to POST /billing/topups, and only with a processor.
	ClientSecret string    `json:"client_secret,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func topUpOf(t billing.TopUp) topUpJSON {
	return topUpJSON{ID: t.ID, AdvertiserID: t.Advertiser, Amount: t.Amount, Currency: string(t.Currency), Status: string(t.Status),
		PaymentID: t.PaymentID, Refunded: t.Refunded, Disputed: t.Disputed, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

// handleStartTopUp serves POST /billing/topups: 201 with the client
// secret. The same Idempotency-Key and body answer the same top-up; the
// same key with another body is a 409.
func (s *server) handleStartTopUp() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			return errIdempotencyKeyRequired
		}
		req, err := decodeJSON[topUpRequest](r)
		if err != nil {
			return err
		}
		started, err := s.billing.StartTopUp(r.Context(), p, billing.TopUpRequest{Amount: *req.Amount,
			Currency: billing.Currency(strings.ToLower(req.Currency)), ClientKey: key})
		if err != nil {
			return billingError(err)
		}
		out := topUpOf(started.TopUp)
		out.ClientSecret = started.ClientSecret
		w.Header().Set("Location", "/billing/topups/"+out.ID.String())
		writeJSON(w, http.StatusCreated, out)
		return nil
	})
}

func (s *server) handleGetTopUp() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return billing.ErrTopUpNotFound
		}
		t, err := s.billing.TopUp(r.Context(), p, id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, topUpOf(t))
		return nil
	})
}

// handleConfirmTopUp serves POST /billing/topups/{id}/confirm: an admin's
// word that a manual top-up's money arrived.
func (s *server) handleConfirmTopUp() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return billing.ErrTopUpNotFound
		}
		t, err := s.billing.ConfirmTopUp(r.Context(), p, id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, topUpOf(t))
		return nil
	})
}

// holdJSON is a payout hold as the API shows it.
type holdJSON struct {
	ID         uuid.UUID  `json:"id"`
	OwnerID    uuid.UUID  `json:"owner_id"`
	Reason     string     `json:"reason"`
	Note       string     `json:"note,omitempty"`
	Until      *time.Time `json:"until,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	ReleasedAt *time.Time `json:"released_at,omitempty"`
}

func holdOf(h billing.Hold) holdJSON {
	return holdJSON{ID: h.ID, OwnerID: h.Owner, Reason: string(h.Reason), Note: h.Note, Until: timeOrNil(h.Until),
		CreatedAt: h.CreatedAt, ReleasedAt: timeOrNil(h.ReleasedAt)}
}

func holdsOf(holds []billing.Hold) []holdJSON {
	out := make([]holdJSON, 0, len(holds))
	for _, h := range holds {
		out = append(out, holdOf(h))
	}
	return out
}

// timeOrNil is t, or nil for the zero time.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// payeeJSON is an owner's payout account as the API shows it: what it
// can do and what is due, never the processor's account id.
type payeeJSON struct {
	PayoutsEnabled   bool      `json:"payouts_enabled"`
	TransfersEnabled bool      `json:"transfers_enabled"`
	DetailsSubmitted bool      `json:"details_submitted"`
	RequirementsDue  []string  `json:"requirements_due"`
	DisabledReason   string    `json:"disabled_reason,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

func payeeOf(p billing.Payee) payeeJSON {
	return payeeJSON{PayoutsEnabled: p.PayoutsEnabled, TransfersEnabled: p.TransfersEnabled, DetailsSubmitted: p.DetailsSubmitted,
		RequirementsDue: orEmpty(p.RequirementsDue), DisabledReason: p.DisabledReason, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

// balanceJSON is GET /billing/balance's answer, in micros.
type balanceJSON struct {
	UserID               uuid.UUID  `json:"user_id"`
	Currency             string     `json:"currency"`
	BudgetMicros         int64      `json:"budget_micros"`
	UnsettledSpendMicros int64      `json:"unsettled_spend_micros"`
	HeldMicros           int64      `json:"held_micros"`
	AvailableMicros      int64      `json:"available_micros"`
	InTransitMicros      int64      `json:"in_transit_micros"`
	OwedMicros           int64      `json:"owed_micros"`
	Holds                []holdJSON `json:"holds"`
	Payee                *payeeJSON `json:"payee"`
}

// subjectUser reads ?user= (admins: whose records), defaulting to the
// caller.
func subjectUser(q *query, p auth.Principal) uuid.UUID {
	if !q.present("user") {
		return p.UserID
	}
	return q.uuid("user")
}

func (s *server) handleBalance() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		q := newQuery(r)
		user := subjectUser(q, p)
		if err := q.err(); err != nil {
			return err
		}
		bal, err := s.billing.Balances(r.Context(), p, user)
		if err != nil {
			return err
		}
		out := balanceJSON{UserID: user, Currency: string(bal.Currency), BudgetMicros: bal.Budget, UnsettledSpendMicros: bal.UnsettledSpend,
			HeldMicros: bal.Held, AvailableMicros: bal.Available, InTransitMicros: bal.InTransit, OwedMicros: bal.Owed, Holds: holdsOf(bal.Holds)}
		if bal.Payee != nil {
			payee := payeeOf(*bal.Payee)
			out.Payee = &payee
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})
}

// listScope reads who a listing is of: ?all=true (admins: everyone's),
// else ?user= (admins: that user's), else the caller's. It returns
// uuid.Nil for everyone's.
func listScope(q *query, p auth.Principal) uuid.UUID {
	all := q.bool("all")
	if all && q.present("user") {
		q.fields.Add("query/all", "give either all or user")
	}
	if all {
		return uuid.Nil
	}
	return subjectUser(q, p)
}

// entryJSON is one entry of a transaction.
type entryJSON struct {
	Account      string `json:"account"`
	Side         string `json:"side"`
	AmountMicros int64  `json:"amount_micros"`
}

// transactionJSON is a ledger transaction as the API shows it.
type transactionJSON struct {
	ID          uuid.UUID         `json:"id"`
	Kind        string            `json:"kind"`
	EffectiveAt time.Time         `json:"effective_at"`
	PostedAt    time.Time         `json:"posted_at"`
	Memo        string            `json:"memo"`
	Reverses    *uuid.UUID        `json:"reverses,omitempty"`
	Refs        map[string]string `json:"refs"`
	Entries     []entryJSON       `json:"entries"`
}

func transactionOf(t billing.Transaction) transactionJSON {
	out := transactionJSON{ID: t.ID, Kind: string(t.Kind), EffectiveAt: t.EffectiveAt, PostedAt: t.PostedAt, Memo: t.Memo,
		Refs: t.Refs, Entries: make([]entryJSON, 0, len(t.Entries))}
	if t.Reverses != uuid.Nil {
		rev := t.Reverses
		out.Reverses = &rev
	}
	if out.Refs == nil {
		out.Refs = map[string]string{}
	}
	for _, e := range t.Entries {
		out.Entries = append(out.Entries, entryJSON{Account: string(e.Account), Side: string(e.Side), AmountMicros: e.Amount})
	}
	return out
}

// maxListLimit is the largest page of a billing listing; defaultListLimit
// the page when none is asked for.
const (
	maxListLimit     = 500
	defaultListLimit = 50
)

// listLimit reads ?limit=.
func listLimit(q *query) int {
	if !q.present("limit") {
		return defaultListLimit
	}
	return int(q.int("limit", 1, maxListLimit))
}

// txCursor reads ?cursor= of the transaction listing: the opaque
// next_cursor of the page before.
func txCursor(q *query) billing.TxCursor {
	raw, ok := q.raw("cursor")
	if !ok {
		return billing.TxCursor{}
	}
	c, err := parseTxCursor(raw)
	if err != nil {
		q.fields.Add("query/cursor", "must be a next_cursor of this listing")
	}
	return c
}

// formatTxCursor writes c opaquely: base64url of "<unix micros>.<id>".
func formatTxCursor(c billing.TxCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.PostedAt.UnixMicro(), 10) + "." + c.ID.String()))
}

func parseTxCursor(raw string) (billing.TxCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return billing.TxCursor{}, err
	}
	at, id, ok := strings.Cut(string(b), ".")
	micros, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil {
		return billing.TxCursor{}, errors.New("transport: bad cursor")
	}
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 || u == uuid.Nil {
		return billing.TxCursor{}, errors.New("transport: bad cursor")
	}
	return billing.TxCursor{PostedAt: time.UnixMicro(micros).UTC(), ID: u}, nil
}

func (s *server) handleTransactions() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		q := newQuery(r)
		user, cursor, limit := listScope(q, p), txCursor(q), listLimit(q)
		if err := q.err(); err != nil {
			return err
		}
		txs, err := s.billing.Transactions(r.Context(), p, user, cursor, limit)
		if err != nil {
			return err
		}
		out := make([]transactionJSON, 0, len(txs))
		for _, t := range txs {
			out = append(out, transactionOf(t))
		}
		body := map[string]any{"transactions": out}
		if len(txs) == limit {
			body["next_cursor"] = formatTxCursor(txs[len(txs)-1].Cursor())
		}
		writeJSON(w, http.StatusOK, body)
		return nil
	})
}

// payoutJSON is a payout as the API shows it (never the destination
// account).
type payoutJSON struct {
	ID        uuid.UUID `json:"id"`
	OwnerID   uuid.UUID `json:"owner_id"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	Status    string    `json:"status"`
	Manual    bool      `json:"manual"`
	Scheduled bool      `json:"scheduled"`
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func payoutOf(po billing.Payout) payoutJSON {
	return payoutJSON{ID: po.ID, OwnerID: po.Owner, Amount: po.Amount, Currency: string(po.Currency), Status: string(po.Status),
		Manual: po.Manual, Scheduled: po.Scheduled, LastError: po.LastError, CreatedAt: po.CreatedAt, UpdatedAt: po.UpdatedAt}
}

// payoutStatuses are the values of ?status= of the payout listing.
var payoutStatuses = []billing.PayoutStatus{billing.PayoutPending, billing.PayoutPaid, billing.PayoutVoided}

func (s *server) handleListPayouts() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		q := newQuery(r)
		owner, limit := listScope(q, p), listLimit(q)
		f := billing.PayoutFilter{Status: billing.PayoutStatus(q.string("status", 16)), Limit: limit}
		if f.Status != "" && !containsStatus(f.Status) {
			q.fields.Add("query/status", "must be pending, paid or voided")
		}
		if q.present("cursor") {
			f.Before = q.uuid("cursor")
		}
		if err := q.err(); err != nil {
			return err
		}
		pos, err := s.billing.Payouts(r.Context(), p, owner, f)
		if err != nil {
			return err
		}
		out := make([]payoutJSON, 0, len(pos))
		for _, po := range pos {
			out = append(out, payoutOf(po))
		}
		body := map[string]any{"payouts": out}
		if len(pos) == limit {
			body["next_cursor"] = pos[len(pos)-1].ID.String()
		}
		writeJSON(w, http.StatusOK, body)
		return nil
	})
}

func containsStatus(st billing.PayoutStatus) bool {
	for _, s := range payoutStatuses {
		if s == st {
			return true
		}
	}
	return false
}

// payoutRequest is the body of POST /billing/payouts.
type payoutRequest struct {
	// Amount is in minor units; absent or 0: everything available.
	Amount *int64 `json:"amount"`
}

func (s *server) handleRequestPayout() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		req, err := decodeJSON[payoutRequest](r)
		if err != nil {
			return err
		}
		var amount int64
		if req.Amount != nil {
			amount = *req.Amount
		}
		po, err := s.billing.RequestPayout(r.Context(), p, billing.PayoutRequest{Amount: amount})
		if err != nil {
			return billingError(err)
		}
		w.Header().Set("Location", "/billing/payouts/"+po.ID.String())
		writeJSON(w, http.StatusCreated, payoutOf(po))
		return nil
	})
}

func (s *server) handleGetPayout() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return billing.ErrPayoutNotFound
		}
		po, err := s.billing.Payout(r.Context(), p, id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, payoutOf(po))
		return nil
	})
}

// recordRequest is the body of POST /billing/payouts/{id}/record.
type recordRequest struct {
	Paid *bool  `json:"paid"`
	Note string `json:"note"`
}

// Valid implements validator.
func (rr *recordRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(rr.Paid != nil, "paid", "is required: true when the money was sent, false when it could not be")
	f.Check(utf8.RuneCountInString(rr.Note) <= maxNoteLen, "note", fmt.Sprintf("must be at most %d characters", maxNoteLen))
	return f
}

func (s *server) handleRecordPayout() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return billing.ErrPayoutNotFound
		}
		req, err := decodeJSON[recordRequest](r)
		if err != nil {
			return err
		}
		po, err := s.billing.RecordPayout(r.Context(), p, id, *req.Paid, req.Note)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, payoutOf(po))
		return nil
	})
}

// payeeRequest is the body of POST /billing/payee.
type payeeRequest struct {
	// Country is the owner's ISO 3166-1 alpha-2 country; the service
	// checks it.
	Country string `json:"country"`
}

// handleOnboard serves POST /billing/payee: the caller's payout account
// (made once) and a fresh single-use onboarding link.
func (s *server) handleOnboard() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		req, err := decodeJSON[payeeRequest](r)
		if err != nil {
			return err
		}
		me, err := s.auth.Me(r.Context(), p)
		if err != nil {
			return err
		}
		ob, err := s.billing.Onboard(r.Context(), p, me.Email, req.Country)
		if err != nil {
			return billingError(err)
		}
		writeJSON(w, http.StatusOK, map[string]any{"payee": payeeOf(ob.Payee), "onboarding_url": ob.URL})
		return nil
	})
}

// handleGetPayee serves GET /billing/payee: the caller's payout account,
// read again from the processor (the app calls it when onboarding sends
// the owner back).
func (s *server) handleGetPayee() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		payee, err := s.billing.RefreshPayee(r.Context(), p)
		if err != nil {
			return billingError(err)
		}
		writeJSON(w, http.StatusOK, payeeOf(payee))
		return nil
	})
}

func (s *server) handleListHolds() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		q := newQuery(r)
		owner := subjectUser(q, p)
		if err := q.err(); err != nil {
			return err
		}
		holds, err := s.billing.Holds(r.Context(), p, owner)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"holds": holdsOf(holds)})
		return nil
	})
}

// holdRequest is the body of POST /billing/holds.
type holdRequest struct {
	OwnerID uuid.UUID  `json:"owner_id"`
	Note    string     `json:"note"`
	Until   *time.Time `json:"until"`
}

// Valid implements validator.
func (h *holdRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(h.OwnerID != uuid.Nil, "owner_id", "is required")
	f.Check(utf8.RuneCountInString(h.Note) <= maxNoteLen, "note", fmt.Sprintf("must be at most %d characters", maxNoteLen))
	f.Check(h.Until == nil || h.Until.After(time.Now()), "until", "must be in the future (leave it out for a hold until released)")
	return f
}

// handlePlaceHold serves POST /billing/holds: an admin holds an owner's
// payouts. Audited by the service.
func (s *server) handlePlaceHold() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		req, err := decodeJSON[holdRequest](r)
		if err != nil {
			return err
		}
		h := billing.Hold{Owner: req.OwnerID, Note: req.Note}
		if req.Until != nil {
			h.Until = req.Until.UTC()
		}
		if h, err = s.billing.PlaceHold(r.Context(), p, h); err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, holdOf(h))
		return nil
	})
}

// releaseRequest is the body of POST /billing/holds/{id}/release: holds
// are kept per owner.
type releaseRequest struct {
	OwnerID uuid.UUID `json:"owner_id"`
}

// Valid implements validator.
func (rr *releaseRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(rr.OwnerID != uuid.Nil, "owner_id", "is required: the owner whose hold it is")
	return f
}

func (s *server) handleReleaseHold() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return billing.ErrHoldNotFound
		}
		req, err := decodeJSON[releaseRequest](r)
		if err != nil {
			return err
		}
		h, err := s.billing.ReleaseHold(r.Context(), p, req.OwnerID, id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, holdOf(h))
		return nil
	})
}

// reconciliationJSON is a reconciliation report.
type reconciliationJSON struct {
	Since       time.Time        `json:"since"`
	RanAt       time.Time        `json:"ran_at"`
	Checked     int              `json:"checked"`
	Differences []differenceJSON `json:"differences"`
}

type differenceJSON struct {
	Kind   string `json:"kind"`
	Object string `json:"object"`
	Detail string `json:"detail"`
}

func (s *server) handleReconciliation() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		rep, ok, err := s.billing.ReconciliationReport(r.Context(), p)
		if err != nil {
			return err
		}
		body := map[string]any{"manual": s.billing.Manual(), "last": nil}
		if ok {
			out := reconciliationJSON{Since: rep.Since, RanAt: rep.RanAt, Checked: rep.Checked, Differences: make([]differenceJSON, 0, len(rep.Differences))}
			for _, d := range rep.Differences {
				out.Differences = append(out.Differences, differenceJSON(d))
			}
			body["last"] = out
		}
		writeJSON(w, http.StatusOK, body)
		return nil
	})
}

// handleStripeWebhook serves POST /webhooks/stripe: the raw body, verified
// by its Stripe-Signature, stored and acknowledged at once (applied in
// the background). A bad, missing or stale signature, an event of another
// API version or an unreadable one is a 400; an event of a type adshare
// does not act on is stored and acknowledged; a failure to store it is a
// 500, so that Stripe delivers it again. At most WebhookConcurrency
// deliveries are handled at once; more get 503 with Retry-After.
func (s *server) handleStripeWebhook() http.Handler {
	slots := make(chan struct{}, s.cfg.WebhookConcurrency)
	limit := s.cfg.WebhookMaxBodyBytes
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			return errWebhookBusy.WithRetryAfter(time.Second)
		}
		if r.ContentLength > limit {
			return errBodyTooLarge.WithMessage(fmt.Sprintf("the request body must be at most %d bytes", limit))
		}
		payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return errBodyTooLarge.WithMessage(fmt.Sprintf("the request body must be at most %d bytes", limit))
			}
			return errMalformedJSON.WithMessage("the request body could not be read").WithCause(err)
		}
		e, err := s.billing.ReceiveEvent(r.Context(), payload, r.Header.Get("Stripe-Signature"))
		if err != nil {
			return s.webhookError(r, err)
		}
		writeJSON(w, http.StatusOK, map[string]any{"received": true, "id": e.ID})
		return nil
	})
}

// webhookError is a refused delivery's answer: what the verifier refuses
// is the sender's fault (400, so Stripe shows it and retries), never a
// 422; an event of another API version means the endpoint is set up wrong
// and is logged as an error.
func (s *server) webhookError(r *http.Request, err error) error {
	e := errs.As(err)
	switch {
	case errors.Is(err, billing.ErrWebhookVersion):
		s.logger.ErrorContext(r.Context(), "transport: a webhook of another API version; pin the Stripe endpoint to the version billing/stripe reads",
			slog.String("request_id", RequestIDFromContext(r.Context())), slog.Any("error", err))
	case errors.Is(err, billing.ErrWebhookSignature), errors.Is(err, billing.ErrInvalidEvent):
		s.logger.WarnContext(r.Context(), "transport: webhook refused",
			slog.String("request_id", RequestIDFromContext(r.Context())), slog.Any("error", err))
	default:
		return err
	}
	bad := *e
	bad.Kind = errs.Malformed
	return &bad
}
