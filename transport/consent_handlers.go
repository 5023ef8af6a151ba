package transport

import (
	"net/http"
	"time"

	"github.com/adshare/adshare/auth"
)

// consentBody is the body of PUT /users/me/consent.
type consentBody struct {
	PolicyVersion string          `json:"policy_version"`
	Purposes      map[string]bool `json:"purposes"`
	DoNotSell     bool            `json:"do_not_sell"`
}

// consentJSON is a consent record as the API shows it.
type consentJSON struct {
	PolicyVersion string          `json:"policy_version"`
	Purposes      map[string]bool `json:"purposes"`
	DoNotSell     bool            `json:"do_not_sell"`
	GPC           bool            `json:"gpc"`
	Source        string          `json:"source,omitempty"`
	RecordedAt    *time.Time      `json:"recorded_at"`
}

// consentResponse is the answer of GET and PUT /users/me/consent.
type consentResponse struct {
	consentJSON
	// Policies are the policy versions consent may be given against; the
	// last is current.
	Policies []string      `json:"policies"`
	History  []consentJSON `json:"history"`
}

func toConsentJSON(r auth.ConsentRecord) consentJSON {
	out := consentJSON{PolicyVersion: r.PolicyVersion, Purposes: map[string]bool{}, DoNotSell: r.DoNotSell, GPC: r.GPC, Source: r.Source}
	for _, p := range auth.Purposes {
		out.Purposes[string(p)] = r.Purposes[p]
	}
	if !r.RecordedAt.IsZero() {
		at := r.RecordedAt.UTC()
		out.RecordedAt = &at
	}
	return out
}

// gpc reports whether the request carries a Global Privacy Control signal.
func gpc(r *http.Request) bool { return r.Header.Get("Sec-GPC") == "1" }

// writeConsent answers with the caller's current consent and history.
func (s *server) writeConsent(w http.ResponseWriter, r *http.Request, p auth.Principal, status int) error {
	cur, err := s.auth.Consent(r.Context(), p)
	if err != nil {
		return err
	}
	hist, err := s.auth.ConsentHistory(r.Context(), p, p.UserID)
	if err != nil {
		return err
	}
	out := consentResponse{consentJSON: toConsentJSON(cur), Policies: s.auth.ConsentPolicies(), History: make([]consentJSON, 0, len(hist))}
	for _, h := range hist {
		out.History = append(out.History, toConsentJSON(h))
	}
	writeJSON(w, status, out)
	return nil
}

// handleGetConsent serves GET /users/me/consent: the caller's current
// consent, the policies and the history, oldest first. A Sec-GPC: 1
// request is recorded as an opt-out first.
func (s *server) handleGetConsent() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		if gpc(r) {
			if _, err := s.auth.RecordGPC(r.Context(), p.UserID); err != nil {
				return err
			}
		}
		return s.writeConsent(w, r, p, http.StatusOK)
	})
}

// handlePutConsent serves PUT /users/me/consent: the caller's choices
// replace their current ones (a new history entry). Unknown purposes or
// policy versions are 422 and store nothing; Sec-GPC: 1 forces do_not_sell.
func (s *server) handlePutConsent() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		body, err := decodeJSON[consentBody](r)
		if err != nil {
			return err
		}
		_, err = s.auth.SetConsent(r.Context(), p, auth.ConsentChange{
			PolicyVersion: body.PolicyVersion, Purposes: body.Purposes, DoNotSell: body.DoNotSell, GPC: gpc(r),
		})
		if err != nil {
			return err
		}
		return s.writeConsent(w, r, p, http.StatusOK)
	})
}
