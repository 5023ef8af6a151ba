package billing

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

// Errors of payees.
var (
	// ErrManualMode: the operation needs a processor; payouts are manual.
	ErrManualMode = errs.New(errs.Conflict, "manual_payouts", "payouts are made by hand here: nothing to set up")
	// ErrInvalidPayee: the onboarding input breaks a rule; the error
	// carries fields.
	ErrInvalidPayee = errs.New(errs.Invalid, "invalid_payee", "the payout account details are not valid")
)

// Onboarding is where an owner sets up their payout account.
type Onboarding struct {
	Payee Payee
	// URL is the processor's onboarding page (single use, short-lived).
	URL string
}

// Onboard gives the caller (an owner, PermAdSpace) a connected account at
// the processor, once (a second call reuses it), and a fresh link to
// finish its onboarding. country is the owner's ISO 3166-1 alpha-2
// country, in either case ("US", "us"); it is needed for the first call
// only (a later one may leave it empty, and cannot change it). Errors:
// ErrManualMode in manual mode; ErrInvalidPayee (field "country") for a
// country that is not two letters.
func (s *Service) Onboard(ctx context.Context, p auth.Principal, email, country string) (Onboarding, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermAdSpace); err != nil {
		return Onboarding{}, err
	}
	if s.Manual() {
		return Onboarding{}, ErrManualMode
	}
	country = strings.ToUpper(country)
	payee, err := s.store.Payee(ctx, p.UserID)
	switch {
	case errors.Is(err, ErrPayeeNotFound):
		if !isCountry(country) {
			return Onboarding{}, ErrInvalidPayee.WithFields(map[string]string{"country": "an ISO 3166-1 alpha-2 country code (two letters, such as US) is required"})
		}
		acct, err := s.cfg.Processor.CreateAccount(ctx, AccountRequest{Key: "payee:" + p.UserID.String(), Owner: p.UserID,
			Email: email, Country: country})
		if err != nil {
			return Onboarding{}, err
		}
		now := s.now().UTC()
		payee = Payee{Owner: p.UserID, ConnectedAccount: acct, CreatedAt: now, UpdatedAt: now}
		if err := s.store.Apply(ctx, Write{Payee: &payee}); err != nil && !errors.Is(err, ErrVersionConflict) {
			return Onboarding{}, err
		}
		if payee, err = s.store.Payee(ctx, p.UserID); err != nil {
			return Onboarding{}, err
		}
		s.record(ctx, auth.AuditEvent{ActorID: p.UserID, Action: AuditPayeeCreated, TargetType: "user", TargetID: p.UserID.String()})
	case err != nil:
		return Onboarding{}, err
	}
	url, err := s.cfg.Processor.OnboardingLink(ctx, payee.ID, s.cfg.OnboardingRefreshURL, s.cfg.OnboardingReturnURL)
	if err != nil {
		return Onboarding{}, err
	}
	return Onboarding{Payee: payee, URL: url}, nil
}

// RefreshPayee reads the caller's connected account again from the
// processor (the app calls it when onboarding sends the owner back).
func (s *Service) RefreshPayee(ctx context.Context, p auth.Principal) (Payee, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermAdSpace); err != nil {
		return Payee{}, err
	}
	if s.Manual() {
		return Payee{}, ErrManualMode
	}
	payee, err := s.store.Payee(ctx, p.UserID)
	if err != nil {
		return Payee{}, err
	}
	acct, err := s.cfg.Processor.Account(ctx, payee.ID)
	if err != nil {
		return Payee{}, err
	}
	payee.PayoutsEnabled, payee.TransfersEnabled = acct.PayoutsEnabled, acct.TransfersEnabled
	payee.DetailsSubmitted, payee.RequirementsDue, payee.DisabledReason = acct.DetailsSubmitted, acct.RequirementsDue, acct.DisabledReason
	payee.UpdatedAt = s.now().UTC()
	if err := s.store.Apply(ctx, Write{Payee: &payee}); err != nil {
		if errors.Is(err, ErrVersionConflict) { // a webhook updated it meanwhile: that is as fresh
			return s.store.Payee(ctx, p.UserID)
		}
		return Payee{}, err
	}
	payee.Version++
	return payee, nil
}

// PlaceHold holds an owner's payouts (an admin's decision, PermBillingManage),
// until released or until until (zero: until released). Audited.
func (s *Service) PlaceHold(ctx context.Context, p auth.Principal, h Hold) (Hold, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermBillingManage); err != nil {
		return Hold{}, err
	}
	now := s.now().UTC()
	h = Hold{ID: uuid.Must(uuid.NewV7()), Owner: h.Owner, Reason: HoldManual, Note: h.Note, Until: h.Until, CreatedAt: now}
	if err := s.store.Apply(ctx, Write{Hold: &h}); err != nil {
		return Hold{}, err
	}
	h.Version = 1
	s.record(ctx, auth.AuditEvent{ActorID: p.UserID, Action: AuditHoldPlaced, TargetType: "user", TargetID: h.Owner.String(),
		Reason: string(h.Reason), Details: map[string]string{"hold": h.ID.String(), "note": h.Note}})
	return h, nil
}

// ReleaseHold ends one of an owner's holds (PermBillingManage). Audited.
func (s *Service) ReleaseHold(ctx context.Context, p auth.Principal, owner, id uuid.UUID) (Hold, error) {
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermBillingManage); err != nil {
		return Hold{}, err
	}
	holds, err := s.store.Holds(ctx, owner)
	if err != nil {
		return Hold{}, err
	}
	for _, h := range holds {
		if h.ID != id {
			continue
		}
		if !h.ReleasedAt.IsZero() {
			return h, nil
		}
		h.ReleasedAt, h.ReleasedBy = s.now().UTC(), p.UserID
		if err := s.store.Apply(ctx, Write{Hold: &h}); err != nil {
			return Hold{}, err
		}
		h.Version++
		s.record(ctx, auth.AuditEvent{ActorID: p.UserID, Action: AuditHoldReleased, TargetType: "user", TargetID: h.Owner.String(),
			Reason: string(h.Reason), Details: map[string]string{"hold": h.ID.String()}})
		return h, nil
	}
	return Hold{}, ErrHoldNotFound
}

// Holds lists an owner's holds, newest first, released and expired ones
// included: the caller's own (without the admins' notes), or anyone's
// with PermBillingManage (another's, without it: auth.ErrUserNotFound).
func (s *Service) Holds(ctx context.Context, p auth.Principal, owner uuid.UUID) ([]Hold, error) {
	if err := s.authorizeFor(ctx, p, owner); err != nil {
		return nil, err
	}
	holds, err := s.store.Holds(ctx, owner)
	if err != nil || p.UserID != owner {
		return holds, err
	}
	return ownHolds(holds), nil
}

// ErrHoldNotFound: the owner has no such hold.
var ErrHoldNotFound = errs.New(errs.NotFound, "hold_not_found", "no such hold")

// activeHolds returns the holds active at now.
func activeHolds(holds []Hold, now time.Time) []Hold {
	var out []Hold
	for _, h := range holds {
		if h.Active(now) {
			out = append(out, h)
		}
	}
	return out
}
