package auth

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/internal/errs"
)

// Purpose is something adshare may do with a user's personal data only with
// their consent (GDPR art. 6(1)(a)).
//
// Two data flows need consent: sending a pseudonymous key and personal
// targeting to the ad server (PurposePersonalisedAds), and keeping events
// about the user as a viewer under their identity (PurposeAnalytics).
// Fraud prevention, billing, security and the audit log run on legitimate
// interest or legal obligation and are not purposes a user toggles: listing
// them would suggest a choice that does not exist.
type Purpose string

// The purposes.
const (
	// PurposePersonalisedAds: the ad server gets the viewer's pseudonymous
	// key (UserDB profile, frequency capping, interests) and may target by
	// it. Without it fills are contextual only.
	PurposePersonalisedAds Purpose = "personalised_ads"
	// PurposeAnalytics: events the user causes as a viewer are stored with
	// their user id and pseudonymous key (per-viewer analytics). Without it
	// those events are stored without either, counted only in aggregate.
	PurposeAnalytics Purpose = "analytics"
)

// Purposes lists every purpose, in a stable order.
var Purposes = []Purpose{PurposeAnalytics, PurposePersonalisedAds}

// DefaultConsentPolicy is the privacy policy version consent is given
// against when Config.ConsentPolicies is empty.
const DefaultConsentPolicy = "2026-12"

// Sources of a consent record.
const (
	ConsentSourceAPI     = "api"     // PUT /users/me/consent
	ConsentSourceProfile = "profile" // PATCH /users/me (personalized_ads, do_not_sell)
	ConsentSourceGPC     = "gpc"     // a request carried Sec-GPC: 1
)

// ConsentRecord is one entry of a user's append-only consent history: the
// whole state after a change, so that any entry answers "what had the user
// agreed to at that time, under which policy".
type ConsentRecord struct {
	// ID orders a user's records (larger is later); set by the store.
	ID int64
	// UserID is whose consent it is.
	UserID uuid.UUID
	// PolicyVersion is the privacy policy version the choice was made under.
	PolicyVersion string
	// Purposes holds a choice for every purpose; a purpose absent from the
	// map is not granted.
	Purposes map[Purpose]bool
	// DoNotSell is the CCPA/CPRA opt-out of sale and sharing: when set no
	// purpose that shares data with the ad server applies, whatever
	// Purposes says.
	DoNotSell bool
	// GPC is true when the change came with a Global Privacy Control
	// signal (Sec-GPC: 1), which is honoured as DoNotSell.
	GPC bool
	// Source says how the record came about (ConsentSource*).
	Source string
	// RecordedAt is when it was recorded.
	RecordedAt time.Time
}

// Granted reports whether the record allows purpose p, the do-not-sell
// opt-out included: personalised ads need no opt-out, analytics is
// first-party and only needs its own consent.
func (r ConsentRecord) Granted(p Purpose) bool {
	if p == PurposePersonalisedAds && r.DoNotSell {
		return false
	}
	return r.Purposes[p]
}

// ConsentStore keeps consent histories. Records are only ever appended.
type ConsentStore interface {
	// AppendConsent appends r (its ID and the store's order assigned) and
	// returns it as stored.
	AppendConsent(ctx context.Context, r ConsentRecord) (ConsentRecord, error)
	// CurrentConsent returns the user's latest record, or
	// ErrConsentNotFound when they have none.
	CurrentConsent(ctx context.Context, user uuid.UUID) (ConsentRecord, error)
	// ConsentHistory returns the user's records, oldest first (empty, not
	// an error, for none).
	ConsentHistory(ctx context.Context, user uuid.UUID) ([]ConsentRecord, error)
}

// ConsentObserver is told of every change of a user's consent, after it
// was stored: adspace.Service drops its cached copy and tells the ad
// server's UserDB of opt-outs; the realtime publisher tells the user's
// other devices. Errors are the observer's to log.
type ConsentObserver interface {
	ConsentChanged(ctx context.Context, r ConsentRecord)
}

// Consent errors.
var (
	// ErrConsentNotFound: the user never recorded consent.
	ErrConsentNotFound = errs.New(errs.NotFound, "consent_not_found", "no consent has been recorded")
	// ErrInvalidConsent: a consent change names an unknown purpose or
	// policy version; the error carries field messages.
	ErrInvalidConsent = errs.New(errs.Invalid, "invalid_consent", "the consent is not valid")
	// ErrConsentUnavailable: the service has no ConsentStore.
	ErrConsentUnavailable = errs.New(errs.Unavailable, "consent_unavailable", "consent records are not kept by this server")
)

// AuditConsentChanged is the audit action of a consent change.
const AuditConsentChanged = "user.consent.changed"

// ConsentChange is what a user sets: a choice per purpose under a policy
// version, and the do-not-sell opt-out.
type ConsentChange struct {
	// PolicyVersion must be one of Config.ConsentPolicies.
	PolicyVersion string
	// Purposes maps purpose names to choices; unknown names are refused.
	// A purpose left out is not granted (the change replaces the state).
	Purposes map[string]bool
	// DoNotSell is the CCPA "do not sell or share" opt-out.
	DoNotSell bool
	// GPC is true when the request carried Sec-GPC: 1; it forces
	// DoNotSell and is recorded.
	GPC bool
}

// validate returns the record the change makes, or ErrInvalidConsent naming
// each bad field ("policy_version", "purposes/<name>").
func (c ConsentChange) validate(policies []string) (ConsentRecord, error) {
	var f errs.Fields
	if !slices.Contains(policies, c.PolicyVersion) {
		f.Add("policy_version", "unknown policy version; current: "+policies[len(policies)-1])
	}
	rec := ConsentRecord{PolicyVersion: c.PolicyVersion, Purposes: map[Purpose]bool{}, DoNotSell: c.DoNotSell || c.GPC, GPC: c.GPC}
	names := slices.Sorted(maps.Keys(c.Purposes))
	for _, name := range names {
		if !slices.Contains(Purposes, Purpose(name)) {
			f.Add("purposes/"+name, "unknown purpose; known: analytics, personalised_ads")
			continue
		}
		rec.Purposes[Purpose(name)] = c.Purposes[name]
	}
	for _, p := range Purposes {
		if _, ok := rec.Purposes[p]; !ok {
			rec.Purposes[p] = false
		}
	}
	return rec, f.Err(ErrInvalidConsent)
}

// ConsentPolicies returns the policy versions consent may be given
// against, oldest first; the last is current.
func (s *Service) ConsentPolicies() []string { return slices.Clone(s.cfg.ConsentPolicies) }

// Consent returns the caller's current consent. A user who never recorded
// any has the state their profile settings imply, under the current
// policy, with a zero ID and RecordedAt.
func (s *Service) Consent(ctx context.Context, p Principal) (ConsentRecord, error) {
	if err := s.Authorize(ctx, p, PermProfile); err != nil {
		return ConsentRecord{}, err
	}
	return s.ViewerConsent(ctx, p.UserID)
}

// ViewerConsent returns a user's current consent without an authorization
// check, for fills (see Consent for a user with no record).
func (s *Service) ViewerConsent(ctx context.Context, user uuid.UUID) (ConsentRecord, error) {
	if s.cfg.Consents != nil {
		r, err := s.cfg.Consents.CurrentConsent(ctx, user)
		if err == nil || !errors.Is(err, ErrConsentNotFound) {
			return r, err
		}
	}
	u, err := s.users.UserByID(ctx, user)
	if err != nil {
		return ConsentRecord{}, err
	}
	return ConsentFromSettings(u.ID, u.Profile.Settings, s.currentPolicy()), nil
}

// ConsentFromSettings is the consent a user's profile settings imply, for
// a user with no consent record: personalised ads as set, analytics not
// granted (consent is never assumed).
func ConsentFromSettings(user uuid.UUID, set Settings, policy string) ConsentRecord {
	return ConsentRecord{
		UserID: user, PolicyVersion: policy, DoNotSell: set.DoNotSell,
		Purposes: map[Purpose]bool{PurposeAnalytics: false, PurposePersonalisedAds: set.PersonalizedAds},
	}
}

// ConsentHistory returns a user's consent history, oldest first: the
// caller's own, or anyone's with PermUsersRead (an export includes it).
func (s *Service) ConsentHistory(ctx context.Context, p Principal, user uuid.UUID) ([]ConsentRecord, error) {
	perm := PermProfile
	if p.UserID != user {
		perm = PermUsersRead
	}
	if err := s.Authorize(ctx, p, perm); err != nil {
		return nil, err
	}
	if s.cfg.Consents == nil {
		return nil, ErrConsentUnavailable
	}
	return s.cfg.Consents.ConsentHistory(ctx, user)
}

// SetConsent records the caller's consent: a new history entry (source
// ConsentSourceAPI), the profile's personalized_ads and do_not_sell kept
// in step, an audit event and the observers told. A change with an unknown
// purpose or policy version returns ErrInvalidConsent and stores nothing.
func (s *Service) SetConsent(ctx context.Context, p Principal, c ConsentChange) (ConsentRecord, error) {
	if err := s.Authorize(ctx, p, PermProfile); err != nil {
		return ConsentRecord{}, err
	}
	if s.cfg.Consents == nil {
		return ConsentRecord{}, ErrConsentUnavailable
	}
	rec, err := c.validate(s.cfg.ConsentPolicies)
	if err != nil {
		return ConsentRecord{}, err
	}
	rec.UserID, rec.Source = p.UserID, ConsentSourceAPI
	return s.appendConsent(ctx, rec, true)
}

// RecordGPC honours a Global Privacy Control signal from a signed-in user:
// unless their consent already says do-not-sell, it appends a record
// (source ConsentSourceGPC) that opts them out, keeping their other
// choices. It returns the current record.
func (s *Service) RecordGPC(ctx context.Context, user uuid.UUID) (ConsentRecord, error) {
	cur, err := s.ViewerConsent(ctx, user)
	if err != nil || cur.DoNotSell || s.cfg.Consents == nil {
		return cur, err
	}
	rec := cur
	rec.ID, rec.Purposes = 0, maps.Clone(cur.Purposes)
	rec.DoNotSell, rec.GPC, rec.Source = true, true, ConsentSourceGPC
	return s.appendConsent(ctx, rec, true)
}

// profileConsent appends a record for a profile change of personalized_ads
// or do_not_sell, so that the history holds every change.
func (s *Service) profileConsent(ctx context.Context, u User) {
	if s.cfg.Consents == nil {
		return
	}
	cur, err := s.ViewerConsent(ctx, u.ID)
	if err != nil {
		s.logger.WarnContext(ctx, "auth: consent not recorded for a profile change", slog.Any("error", err))
		return
	}
	rec := cur
	rec.ID, rec.Purposes, rec.Source = 0, maps.Clone(cur.Purposes), ConsentSourceProfile
	rec.Purposes[PurposePersonalisedAds] = u.Profile.Settings.PersonalizedAds
	rec.DoNotSell = u.Profile.Settings.DoNotSell
	if !rec.DoNotSell {
		rec.GPC = false
	}
	if _, err := s.appendConsent(ctx, rec, false); err != nil {
		s.logger.WarnContext(ctx, "auth: consent not recorded for a profile change", slog.Any("error", err))
	}
}

// appendConsent stores rec, brings the profile in step when syncProfile,
// audits and tells the observers.
func (s *Service) appendConsent(ctx context.Context, rec ConsentRecord, syncProfile bool) (ConsentRecord, error) {
	rec.RecordedAt = s.now().UTC().Truncate(time.Microsecond)
	stored, err := s.cfg.Consents.AppendConsent(ctx, rec)
	if err != nil {
		return ConsentRecord{}, err
	}
	if syncProfile {
		if u, err := s.users.UserByID(ctx, rec.UserID); err == nil {
			prof := u.Profile
			prof.Settings.PersonalizedAds, prof.Settings.DoNotSell = rec.Purposes[PurposePersonalisedAds], rec.DoNotSell
			if prof.Settings != u.Profile.Settings {
				if _, err := s.users.UpdateProfile(ctx, rec.UserID, prof, s.now()); err != nil {
					s.logger.WarnContext(ctx, "auth: profile not brought in step with consent", slog.Any("error", err))
				}
			}
		}
	}
	s.record(ctx, AuditEvent{ActorID: rec.UserID, Action: AuditConsentChanged, TargetType: "user", TargetID: rec.UserID.String(),
		Details: map[string]string{"source": rec.Source, "policy_version": rec.PolicyVersion}})
	for _, o := range s.cfg.ConsentObservers {
		o.ConsentChanged(ctx, stored)
	}
	return stored, nil
}

// currentPolicy is the newest policy version.
func (s *Service) currentPolicy() string { return s.cfg.ConsentPolicies[len(s.cfg.ConsentPolicies)-1] }
