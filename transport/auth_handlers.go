package transport

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

// userJSON is a user as the API shows it.
type userJSON struct {
	ID          uuid.UUID         `json:"id"`
	Email       string            `json:"email"`
	Role        auth.Role         `json:"role"`
	Tier        string            `json:"tier"`
	DisplayName string            `json:"display_name"`
	Preferences auth.Preferences  `json:"preferences"`
	Settings    auth.Settings     `json:"settings"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	Permissions []auth.Permission `json:"permissions"`
}

func (s *server) userJSON(u auth.User) userJSON {
	perms := s.auth.RBAC().Permissions(u.Role)
	if perms == nil {
		perms = []auth.Permission{}
	}
	return userJSON{
		ID: u.ID, Email: u.Email, Role: u.Role, Tier: u.Tier, DisplayName: u.Profile.DisplayName,
		Preferences: u.Profile.Preferences, Settings: u.Profile.Settings,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, Permissions: perms,
	}
}

// tokenJSON is a token response in OAuth 2.0's shape (RFC 6749 §5.1),
// with the session and, on sign-in, the user.
type tokenJSON struct {
	AccessToken           string    `json:"access_token"`
	TokenType             string    `json:"token_type"`
	ExpiresIn             int       `json:"expires_in"`
	RefreshToken          string    `json:"refresh_token"`
	RefreshTokenExpiresAt time.Time `json:"refresh_token_expires_at"`
	SessionID             uuid.UUID `json:"session_id"`
	User                  *userJSON `json:"user,omitempty"`
	Created               bool      `json:"created,omitempty"`
}

// writeTokens answers with tokens, never cacheable (RFC 6749 §5.1).
func (s *server) writeTokens(w http.ResponseWriter, status int, pair auth.TokenPair, u *auth.User, created bool) {
	body := tokenJSON{
		AccessToken: pair.AccessToken, TokenType: "Bearer", ExpiresIn: int(pair.ExpiresIn / time.Second),
		RefreshToken: pair.RefreshToken, RefreshTokenExpiresAt: pair.RefreshExpiresAt, SessionID: pair.SessionID,
		Created: created,
	}
	if u != nil {
		uj := s.userJSON(*u)
		body.User = &uj
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, body)
}

type registerRequest struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name"`
}

func (r *registerRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(r.Email != "", "email", "is required")
	f.Check(r.Password != "", "password", "is required")
	return f
}

func (s *server) handleRegister() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decodeJSON[registerRequest](r)
		if err != nil {
			return err
		}
		u, pair, err := s.auth.Register(r.Context(), auth.Registration{Email: req.Email, Password: req.Password, DisplayName: req.DisplayName})
		if err != nil {
			return err
		}
		w.Header().Set("Location", "/users/me")
		s.writeTokens(w, http.StatusCreated, pair, &u, true)
		return nil
	})
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (r *loginRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(r.Email != "", "email", "is required")
	f.Check(r.Password != "", "password", "is required")
	return f
}

func (s *server) handleLogin() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decodeJSON[loginRequest](r)
		if err != nil {
			return err
		}
		u, pair, err := s.auth.Login(r.Context(), req.Email, req.Password)
		if err != nil {
			return err
		}
		s.writeTokens(w, http.StatusOK, pair, &u, false)
		return nil
	})
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (r *refreshRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(r.RefreshToken != "", "refresh_token", "is required")
	return f
}

func (s *server) handleRefresh() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decodeJSON[refreshRequest](r)
		if err != nil {
			return err
		}
		pair, err := s.auth.Refresh(r.Context(), req.RefreshToken)
		if err != nil {
			return err
		}
		s.writeTokens(w, http.StatusOK, pair, nil, false)
		return nil
	})
}

// handleLogout ends the session of the access token, or, for a client
// whose access token expired, of the refresh token in the body.
func (s *server) handleLogout() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		p, ok, err := s.optionalPrincipal(r)
		if err != nil {
			return err
		}
		if ok {
			err = s.auth.Logout(r.Context(), p)
		} else {
			var req refreshRequest
			if req, err = decodeJSON[refreshRequest](r); err == nil {
				err = s.auth.LogoutWithRefreshToken(r.Context(), req.RefreshToken)
			}
		}
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

type sessionJSON struct {
	ID         uuid.UUID `json:"id"`
	Method     string    `json:"method"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Current    bool      `json:"current"`
}

func (s *server) handleListSessions() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		sessions, err := s.auth.Sessions(r.Context(), p)
		if err != nil {
			return err
		}
		out := make([]sessionJSON, 0, len(sessions))
		for _, sess := range sessions {
			expires := sess.IdleExpiresAt
			if sess.AbsoluteExpiresAt.Before(expires) {
				expires = sess.AbsoluteExpiresAt
			}
			out = append(out, sessionJSON{ID: sess.ID, Method: sess.Method, UserAgent: sess.UserAgent, IP: sess.IP,
				CreatedAt: sess.CreatedAt, LastUsedAt: sess.LastUsedAt, ExpiresAt: expires, Current: sess.ID == p.SessionID})
		}
		writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
		return nil
	})
}

func (s *server) handleRevokeSession() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return auth.ErrSessionNotFound
		}
		if err := s.auth.RevokeSession(r.Context(), p, id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func (s *server) handleRevokeAllSessions() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		keep, err := queryBool(r, "keep_current")
		if err != nil {
			return err
		}
		n, err := s.auth.RevokeAllSessions(r.Context(), p, keep)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]int{"revoked": n})
		return nil
	})
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (r *passwordRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	f.Check(r.NewPassword != "", "new_password", "is required")
	return f
}

func (s *server) handleChangePassword() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		req, err := decodeJSON[passwordRequest](r)
		if err != nil {
			return err
		}
		if err := s.auth.ChangePassword(r.Context(), p, req.CurrentPassword, req.NewPassword); err != nil {
			if e := errs.As(err); e != nil && e.Fields["password"] != "" {
				err = e.WithFields(errs.Fields{"new_password": e.Fields["password"]})
			}
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func (s *server) handleJWKS() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(s.auth.Tokens().Keys().JWKS())
		return nil
	})
}
