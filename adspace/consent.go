package adspace

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

// ConsentReader reads signed-in viewers' current consent
// (auth.ConsentStore implements it).
type ConsentReader interface {
	// CurrentConsent returns the user's latest consent record, or an
	// error matching auth.ErrConsentNotFound when they have none (then
	// the profile's settings decide).
	CurrentConsent(ctx context.Context, user uuid.UUID) (auth.ConsentRecord, error)
}

// UserDB is the ad server's user database, told of consent changes and
// opt-outs under the viewer's pseudonymous key (decision/kevel's *UserDB
// implements it).
type UserDB interface {
	// OptOut opts the key out of tracking.
	OptOut(ctx context.Context, userKey string) error
	// SetConsent records the key's GDPR consent.
	SetConsent(ctx context.Context, userKey string, gdpr bool) error
}

var _ auth.ConsentObserver = (*Service)(nil)

// userDBTimeout bounds the UserDB calls of one consent change.
const userDBTimeout = 5 * time.Second

// ConsentChanged implements auth.ConsentObserver: this instance's cached
// copy of the user's consent is dropped (other instances' expire within
// seconds), and the ad server's UserDB, when configured, is told: consent
// to personalised ads under the user's pseudonymous key, or its
// withdrawal and an opt-out when they withdrew it or opted out of sale
// and sharing. A UserDB failure is logged.
func (s *Service) ConsentChanged(ctx context.Context, r auth.ConsentRecord) {
	s.viewers.drop(r.UserID)
	if s.cfg.UserDB == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), userDBTimeout)
	defer cancel()
	key := s.UserKey(r.UserID)
	granted := r.Granted(auth.PurposePersonalisedAds)
	err := s.cfg.UserDB.SetConsent(ctx, key, granted)
	if !granted {
		err = errors.Join(err, s.cfg.UserDB.OptOut(ctx, key))
	}
	if err != nil {
		s.logger.WarnContext(ctx, "adspace: the ad server's UserDB was not told of a consent change", slog.Any("error", err))
	}
}

// UserKey returns the pseudonymous key a signed-in user has as a viewer
// (what the ad server knows them by when they consent), for erasure and
// UserDB calls.
func (s *Service) UserKey(user uuid.UUID) string { return s.viewerKey("user:" + user.String()) }

// viewerConsent returns a signed-in viewer's consent: their latest record,
// else their profile's settings.
func (s *Service) viewerConsent(ctx context.Context, user uuid.UUID) (consentEntry, error) {
	if s.cfg.Consents != nil {
		r, err := s.cfg.Consents.CurrentConsent(ctx, user)
		switch {
		case err == nil:
			return consentEntry{personalized: r.Purposes[auth.PurposePersonalisedAds], doNotSell: r.DoNotSell,
				analytics: r.Granted(auth.PurposeAnalytics), fetched: time.Now()}, nil
		case !errors.Is(err, auth.ErrConsentNotFound):
			return consentEntry{}, err
		}
	}
	u, err := s.cfg.Users.UserByID(ctx, user)
	if err != nil {
		return consentEntry{}, err
	}
	return consentEntry{personalized: u.Profile.Settings.PersonalizedAds, doNotSell: u.Profile.Settings.DoNotSell, fetched: time.Now()}, nil
}
