package transport

import (
	"net/http"
	"strings"

	"github.com/adshare/adshare/auth"
)

// bearerToken returns the token of an "Authorization: Bearer" header, or "".
// The scheme is case-insensitive (RFC 9110); tokens never come from the URL.
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// principalHandler is a handler that runs only for authenticated callers.
type principalHandler func(w http.ResponseWriter, r *http.Request, p auth.Principal)

// authenticated requires a valid access token: 401 without one, or with a
// forged, expired or revoked one. The principal goes into the context and
// to the handler.
func (s *server) authenticated(h principalHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := bearerToken(r)
		if token == "" {
			s.writeError(w, r, auth.ErrUnauthenticated.WithMessage("an access token is required (Authorization: Bearer …)"))
			return
		}
		p, err := s.auth.Authenticate(r.Context(), token)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.limitPrincipal(r, p); err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r.WithContext(auth.NewContextWithPrincipal(r.Context(), p)), p)
	})
}

// requirePermission is authenticated plus a permission check; the denial is
// audited by the service. Services check ownership on top.
func (s *server) requirePermission(perm auth.Permission, h principalHandler) http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) {
		if err := s.auth.Authorize(r.Context(), p, perm); err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r, p)
	})
}

// optionalPrincipal returns the caller's principal when the request carries
// a valid access token; a request without one is anonymous, and one with a
// bad token is refused (a client that sends a token expects it to count).
func (s *server) optionalPrincipal(r *http.Request) (auth.Principal, bool, error) {
	token := bearerToken(r)
	if token == "" {
		return auth.Principal{}, false, nil
	}
	p, err := s.auth.Authenticate(r.Context(), token)
	if err != nil {
		return auth.Principal{}, false, err
	}
	return p, true, nil
}
