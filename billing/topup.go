package billing

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

// Errors of top-ups.
var (
	// ErrInvalidTopUp: the amount, currency or key breaks a rule; the
	// error carries fields.
	ErrInvalidTopUp = errs.New(errs.Invalid, "invalid_topup", "the top-up is not valid")
	// ErrTopUpLimit: the advertiser's top-ups in a day reached a limit.
	ErrTopUpLimit = errs.New(errs.RateLimited, "topup_limit", "too many top-ups today")
	// ErrTopUpNotAwaiting: the top-up is not waiting for an admin.
	ErrTopUpNotAwaiting = errs.New(errs.Conflict, "topup_not_awaiting_confirmation", "the top-up is not awaiting confirmation")
)

// MaxClientKeyLen bounds a top-up's client idempotency key.
const MaxClientKeyLen = 100

// TopUpRequest is an advertiser asking to fund their budget.
type TopUpRequest struct {
	// Amount in minor units of Currency.
	Amount   int64
	Currency Currency
	// ClientKey is the app's idempotency key (an Idempotency-Key header):
	// a retry with the same key and content is the same top-up.
	ClientKey string
}

// StartedTopUp is a top-up as the app needs it: the record, and the
// processor's client secret with which the app's SDK completes the payment
// (empty in manual mode).
type StartedTopUp struct {
	TopUp
	ClientSecret string
}

// StartTopUp creates a top-up for the caller, who needs the advertiser
// permission: a payment at the processor, which the app completes with its
// SDK. The budget is credited only when the processor's verified webhook
// says the payment succeeded, never on the app's word. The amount is
// bounded (MinTopUp to MaxTopUp, and per day), top-ups are rate-limited per
// user and per client address (card testing), and the client's key makes a
// retry the same top-up (the same key with other content: ErrKeyConflict).
// In manual mode the top-up waits for an admin's ConfirmTopUp.
func (s *Service) StartTopUp(ctx context.Context, p auth.Principal, r TopUpRequest) (StartedTopUp, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermContentCreate); err != nil {
		return StartedTopUp{}, err
	}
	if err := s.checkTopUp(r); err != nil {
		return StartedTopUp{}, err
	}
	prev, err := s.store.TopUpByClientKey(ctx, p.UserID, r.ClientKey)
	switch {
	case err == nil:
		if prev.Amount != r.Amount || prev.Currency != r.Currency {
			return StartedTopUp{}, ErrKeyConflict.WithMessage("this Idempotency-Key was used for another top-up")
		}
		return s.resumeTopUp(ctx, prev)
	case !errors.Is(err, ErrTopUpNotFound):
		return StartedTopUp{}, err
	}
	if err := s.checkTopUpVelocity(ctx, p.UserID, r); err != nil {
		return StartedTopUp{}, err
	}
	now := s.now().UTC()
	t := TopUp{ID: uuid.Must(uuid.NewV7()), Advertiser: p.UserID, ClientKey: r.ClientKey, Amount: r.Amount,
		Currency: r.Currency, Status: TopUpPending, CreatedAt: now, UpdatedAt: now}
	if s.Manual() {
		t.Status = TopUpAwaitingConfirmation
	}
	// The record, and so the key, first: a crash after the processor's
	// answer leaves a top-up that the retry resumes with the same key.
	if err := s.store.Apply(ctx, Write{TopUp: &t}); err != nil {
		if errors.Is(err, ErrVersionConflict) { // the same key, concurrently
			prev, err := s.store.TopUpByClientKey(ctx, p.UserID, r.ClientKey)
			if err != nil {
				return StartedTopUp{}, err
			}
			return s.resumeTopUp(ctx, prev)
		}
		return StartedTopUp{}, err
	}
	t.Version = 1
	s.metrics.topUps.WithLabelValues("started").Inc()
	s.record(ctx, auth.AuditEvent{ActorID: p.UserID, Action: AuditTopUpCreated, TargetType: "topup", TargetID: t.ID.String(),
		Details: map[string]string{"amount": strconv.FormatInt(t.Amount, 10), "currency": string(t.Currency)}})
	return s.resumeTopUp(ctx, t)
}

// resumeTopUp (re)creates t's payment at the processor under t's id as the
// idempotency key, which returns the same payment and client secret every
// time.
func (s *Service) resumeTopUp(ctx context.Context, t TopUp) (StartedTopUp, error) {
	if s.Manual() || t.Status != TopUpPending {
		return StartedTopUp{TopUp: t}, nil
	}
	pay, err := s.cfg.Processor.CreatePayment(ctx, PaymentRequest{Key: "topup:" + t.ID.String(), Advertiser: t.Advertiser,
		Amount: t.Amount, Currency: t.Currency, Group: "topup:" + t.ID.String()})
	if err != nil {
		if IsDefinite(err) {
			t.Status, t.UpdatedAt = TopUpFailed, s.now().UTC()
			if aerr := s.store.Apply(ctx, Write{TopUp: &t}); aerr != nil {
				return StartedTopUp{}, errors.Join(err, aerr)
			}
			s.metrics.topUps.WithLabelValues(string(TopUpFailed)).Inc()
		}
		return StartedTopUp{}, err
	}
	if t.PaymentID == "" {
		t.PaymentID, t.UpdatedAt = pay.ID, s.now().UTC()
		if err := s.store.Apply(ctx, Write{TopUp: &t}); err != nil && !errors.Is(err, ErrVersionConflict) {
			return StartedTopUp{}, err
		}
		t.Version++
	}
	return StartedTopUp{TopUp: t, ClientSecret: pay.ClientSecret}, nil
}

func (s *Service) checkTopUp(r TopUpRequest) error {
	var f errs.Fields
	f.Check(r.Currency == s.cfg.Currency, "currency", "must be "+string(s.cfg.Currency))
	micros, ok := s.cfg.Currency.FromMinor(r.Amount)
	f.Check(ok && micros >= s.cfg.MinTopUp && micros <= s.cfg.MaxTopUp, "amount",
		fmt.Sprintf("must be between %s and %s, in minor units (cents)", s.formatMicros(s.cfg.MinTopUp), s.formatMicros(s.cfg.MaxTopUp)))
	f.Check(r.ClientKey != "" && len(r.ClientKey) <= MaxClientKeyLen && printableASCII(r.ClientKey) && utf8.ValidString(r.ClientKey),
		"idempotency_key", fmt.Sprintf("an Idempotency-Key of 1 to %d printable ASCII characters is required", MaxClientKeyLen))
	return f.Err(ErrInvalidTopUp)
}

// checkTopUpVelocity applies the rate limits and the daily caps.
func (s *Service) checkTopUpVelocity(ctx context.Context, user uuid.UUID, r TopUpRequest) error {
	if l := s.cfg.Limiter; l != nil {
		for _, c := range []struct {
			key   string
			limit auth.Limit
		}{
			{"topup:user:" + user.String(), s.cfg.TopUpLimitPerUser},
			{"topup:client:" + auth.ClientFromContext(ctx).IP, s.cfg.TopUpLimitPerClient},
		} {
			res, err := l.Allow(ctx, c.key, c.limit)
			if err != nil {
				// Fail closed: an unlimited top-up endpoint is a card-testing tool.
				return errs.New(errs.Unavailable, "topups_unavailable", "top-ups are unavailable; try again shortly").
					WithRetryAfter(5 * time.Second).WithCause(err)
			}
			if !res.Allowed {
				return ErrTopUpLimit.WithMessage("too many top-ups; try again later").WithRetryAfter(res.RetryAfter)
			}
		}
	}
	recent, err := s.store.TopUpsSince(ctx, user, s.now().Add(-24*time.Hour))
	if err != nil {
		return err
	}
	total, _ := s.cfg.Currency.FromMinor(r.Amount)
	n := 0
	for _, t := range recent {
		if t.Status == TopUpFailed {
			continue
		}
		n++
		m, _ := t.Currency.FromMinor(t.Amount)
		total += m
	}
	if n >= s.cfg.MaxTopUpsPerDay || total > s.cfg.MaxTopUpPerDay {
		return ErrTopUpLimit.WithRetryAfter(time.Hour)
	}
	return nil
}

// ConfirmTopUp credits a manual top-up's budget: an admin's word that the
// money arrived (manual mode only). Audited; idempotent.
func (s *Service) ConfirmTopUp(ctx context.Context, p auth.Principal, id uuid.UUID) (TopUp, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermBillingManage); err != nil {
		return TopUp{}, err
	}
	t, err := s.store.TopUp(ctx, id)
	if err != nil {
		return TopUp{}, err
	}
	if t.Status == TopUpSucceeded {
		return t, nil
	}
	if t.Status != TopUpAwaitingConfirmation {
		return TopUp{}, ErrTopUpNotAwaiting
	}
	if err := s.creditTopUp(ctx, &t, 0); err != nil {
		return TopUp{}, err
	}
	s.metrics.topUps.WithLabelValues(string(TopUpSucceeded)).Inc()
	s.record(ctx, auth.AuditEvent{ActorID: p.UserID, Action: AuditTopUpConfirmed, TargetType: "topup", TargetID: id.String()})
	return s.store.TopUp(ctx, id)
}

// creditTopUp marks t succeeded and credits its budget (net of the
// processor's fee, which the platform pays) in one write.
func (s *Service) creditTopUp(ctx context.Context, t *TopUp, fee int64) error {
	return s.store.Apply(ctx, s.creditWrite(t, fee))
}
