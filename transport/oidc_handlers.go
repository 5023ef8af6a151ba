package transport

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

func (s *server) handleProviders() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		names := s.auth.ProviderNames()
		if names == nil {
			names = []string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"providers": names})
		return nil
	})
}

type oidcAuthorizeRequest struct {
	RedirectURI string `json:"redirect_uri"`
	// Link asks to link the provider to the signed-in account instead of
	// signing in; it needs an access token.
	Link bool `json:"link"`
}

func (o *oidcAuthorizeRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(o.RedirectURI != "", "redirect_uri", "is required")
	return f
}

// linkTarget returns the account to link to when the request asks to link:
// the caller must then be signed in.
func (s *server) linkTarget(r *http.Request, link bool) (uuid.UUID, error) {
	p, ok, err := s.optionalPrincipal(r)
	switch {
	case err != nil:
		return uuid.Nil, err
	case !link:
		return uuid.Nil, nil
	case !ok:
		return uuid.Nil, auth.ErrUnauthenticated.WithMessage("linking a provider needs an access token")
	}
	return p.UserID, nil
}

func (s *server) handleOIDCAuthorize() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decodeJSON[oidcAuthorizeRequest](r)
		if err != nil {
			return err
		}
		linkTo, err := s.linkTarget(r, req.Link)
		if err != nil {
			return err
		}
		a, err := s.auth.BeginOIDC(r.Context(), r.PathValue("provider"), req.RedirectURI, linkTo)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]any{"authorization_url": a.URL, "state": a.State, "expires_at": a.ExpiresAt})
		return nil
	})
}

type oidcCallbackRequest struct {
	State string `json:"state"`
	Code  string `json:"code"`
}

func (o *oidcCallbackRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(o.State != "", "state", "is required")
	f.Check(o.Code != "", "code", "is required")
	return f
}

func (s *server) handleOIDCCallback() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decodeJSON[oidcCallbackRequest](r)
		if err != nil {
			return err
		}
		res, err := s.auth.CompleteOIDC(r.Context(), r.PathValue("provider"), req.State, req.Code)
		if err != nil {
			return err
		}
		s.writeOIDCResult(w, res)
		return nil
	})
}

func (s *server) handleOIDCNonce() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		nonce, expires, err := s.auth.OIDCNonce(r.Context(), r.PathValue("provider"))
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]any{"nonce": nonce, "expires_at": expires.UTC().Truncate(time.Second)})
		return nil
	})
}

type idTokenRequest struct {
	IDToken string `json:"id_token"`
	Link    bool   `json:"link"`
}

func (t *idTokenRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(t.IDToken != "", "id_token", "is required")
	return f
}

func (s *server) handleOIDCIDToken() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decodeJSON[idTokenRequest](r)
		if err != nil {
			return err
		}
		linkTo, err := s.linkTarget(r, req.Link)
		if err != nil {
			return err
		}
		res, err := s.auth.SignInWithIDToken(r.Context(), r.PathValue("provider"), req.IDToken, linkTo)
		if err != nil {
			return err
		}
		s.writeOIDCResult(w, res)
		return nil
	})
}

// writeOIDCResult answers a provider sign-in with tokens (201 when the
// account was created) and a link with the account.
func (s *server) writeOIDCResult(w http.ResponseWriter, res auth.OIDCResult) {
	switch {
	case res.Linked:
		writeJSON(w, http.StatusOK, map[string]any{"linked": true, "user": s.userJSON(res.User)})
	case res.Created:
		s.writeTokens(w, http.StatusCreated, res.Tokens, &res.User, true)
	default:
		s.writeTokens(w, http.StatusOK, res.Tokens, &res.User, false)
	}
}
