package transport

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

func (s *server) handleGetMe() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		u, err := s.auth.Me(r.Context(), p)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, s.userJSON(u))
		return nil
	})
}

// profilePatch is the body of PATCH /users/me: absent (or null) fields stay
// as they are.
type profilePatch struct {
	DisplayName *string `json:"display_name"`
	Preferences *struct {
		Locale        *string `json:"locale"`
		TimeZone      *string `json:"time_zone"`
		Theme         *string `json:"theme"`
		Notifications *struct {
			Email        *bool `json:"email"`
			Push         *bool `json:"push"`
			WeeklyReport *bool `json:"weekly_report"`
			Payouts      *bool `json:"payouts"`
		} `json:"notifications"`
	} `json:"preferences"`
	Settings *struct {
		PersonalizedAds *bool   `json:"personalized_ads"`
		DoNotSell       *bool   `json:"do_not_sell"`
		PayoutCurrency  *string `json:"payout_currency"`
	} `json:"settings"`
}

func (p profilePatch) update() auth.ProfileUpdate {
	u := auth.ProfileUpdate{DisplayName: p.DisplayName}
	if pr := p.Preferences; pr != nil {
		u.Locale, u.TimeZone, u.Theme = pr.Locale, pr.TimeZone, pr.Theme
		if n := pr.Notifications; n != nil {
			u.NotifyEmail, u.NotifyPush, u.NotifyWeeklyReport, u.NotifyPayouts = n.Email, n.Push, n.WeeklyReport, n.Payouts
		}
	}
	if st := p.Settings; st != nil {
		u.PersonalizedAds, u.DoNotSell, u.PayoutCurrency = st.PersonalizedAds, st.DoNotSell, st.PayoutCurrency
	}
	return u
}

func (s *server) handlePatchMe() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		patch, err := decodeJSON[profilePatch](r)
		if err != nil {
			return err
		}
		u, err := s.auth.UpdateProfile(r.Context(), p, patch.update())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, s.userJSON(u))
		return nil
	})
}

// advertiserRequest is the body of POST /users/me/advertiser.
type advertiserRequest struct {
	TermsVersion string `json:"terms_version"`
}

// Valid implements validator.
func (a *advertiserRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(a.TermsVersion != "" && len(a.TermsVersion) <= 64, "terms_version", "the version of the advertiser terms accepted is required")
	return f
}

// handleBecomeAdvertiser serves POST /users/me/advertiser: the caller
// accepts the advertiser terms and may then create and fund ads (after a
// refresh: the access token in hand carries the old role).
func (s *server) handleBecomeAdvertiser() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		req, err := decodeJSON[advertiserRequest](r)
		if err != nil {
			return err
		}
		u, err := s.auth.BecomeAdvertiser(r.Context(), p, req.TermsVersion)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, s.userJSON(u))
		return nil
	})
}

// handleGetUser answers for oneself, or for anyone with PermUsersRead. An
// unknown id and a forbidden one are both 404 for callers without the
// permission, so ids cannot be probed.
func (s *server) handleGetUser() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return auth.ErrUserNotFound
		}
		u, err := s.auth.User(r.Context(), p, id)
		if errs.KindOf(err) == errs.Forbidden {
			err = auth.ErrUserNotFound
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, s.userJSON(u))
		return nil
	})
}

type tierRequest struct {
	Tier string `json:"tier"`
}

func (t *tierRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(t.Tier != "", "tier", "is required")
	return f
}

func (s *server) handleSetTier() http.Handler {
	return s.requirePermission(auth.PermUsersManage, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return auth.ErrUserNotFound
		}
		req, err := decodeJSON[tierRequest](r)
		if err != nil {
			return err
		}
		u, err := s.auth.SetTier(r.Context(), p, id, req.Tier)
		if err != nil {
			if isTierNotFound(err) {
				err = errs.New(errs.Invalid, "invalid_tier", "no such tier").WithFields(errs.Fields{"tier": "is not a configured tier"})
			}
			return err
		}
		writeJSON(w, http.StatusOK, s.userJSON(u))
		return nil
	})
}

func isTierNotFound(err error) bool {
	e := errs.As(err)
	return e != nil && e.Code == auth.ErrTierNotFound.Code
}

type roleRequest struct {
	Role auth.Role `json:"role"`
}

func (rr *roleRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(rr.Role.Valid(), "role", "must be one of user, advertiser, moderator, admin")
	return f
}

func (s *server) handleSetRole() http.Handler {
	return s.requirePermission(auth.PermUsersManage, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return auth.ErrUserNotFound
		}
		req, err := decodeJSON[roleRequest](r)
		if err != nil {
			return err
		}
		u, err := s.auth.SetRole(r.Context(), p, id, req.Role)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, s.userJSON(u))
		return nil
	})
}

func (s *server) handleAdminRevokeSessions() http.Handler {
	return s.requirePermission(auth.PermUsersManage, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return auth.ErrUserNotFound
		}
		n, err := s.auth.RevokeUserSessionsAsAdmin(r.Context(), p, id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]int{"revoked": n})
		return nil
	})
}

func (s *server) handleTiers() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "public, max-age=60")
		writeJSON(w, http.StatusOK, map[string]any{"tiers": s.auth.Tiers().All()})
		return nil
	})
}

type auditEventJSON struct {
	ID         int64             `json:"id"`
	At         time.Time         `json:"at"`
	ActorID    *uuid.UUID        `json:"actor_id"`
	Action     string            `json:"action"`
	TargetType string            `json:"target_type"`
	TargetID   string            `json:"target_id"`
	IP         string            `json:"ip"`
	UserAgent  string            `json:"user_agent"`
	Outcome    string            `json:"outcome"`
	Reason     string            `json:"reason"`
	Details    map[string]string `json:"details"`
}

func (s *server) handleAuditEvents() http.Handler {
	return s.requirePermission(auth.PermAuditRead, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		q := newQuery(r)
		f := auth.AuditFilter{
			ActorID:  q.uuid("actor_id"),
			TargetID: q.string("target_id", 128),
			Action:   q.string("action", 64),
			Since:    q.time("since"),
			Until:    q.time("until"),
			BeforeID: q.int("before_id", 1, 1<<62),
			Limit:    int(q.int("limit", 1, 1000)),
		}
		if err := q.err(); err != nil {
			return err
		}
		events, err := s.auth.AuditEvents(r.Context(), p, f)
		if err != nil {
			return err
		}
		out := make([]auditEventJSON, 0, len(events))
		for _, e := range events {
			j := auditEventJSON{ID: e.ID, At: e.At, Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID,
				IP: e.IP, UserAgent: e.UserAgent, Outcome: e.Outcome, Reason: e.Reason, Details: e.Details}
			if e.ActorID != uuid.Nil {
				actor := e.ActorID
				j.ActorID = &actor
			}
			if j.Details == nil {
				j.Details = map[string]string{}
			}
			out = append(out, j)
		}
		body := map[string]any{"events": out}
		if len(out) > 0 {
			body["next_before_id"] = out[len(out)-1].ID
		}
		writeJSON(w, http.StatusOK, body)
		return nil
	})
}
