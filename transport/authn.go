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

// apiFunc is an endpoint that returns its error instead of answering it.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

// api answers the error of f, if any, as a problem document. f must not
// have written anything when it returns an error.
func (s *server) api(f apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// principalFunc is an endpoint that runs only for authenticated callers.
type principalFunc func(w http.ResponseWriter, r *http.Request, p auth.Principal) error

// authenticated requires a valid access token: 401 without one, or with a
// forged, expired or revoked one. The principal goes into the context and
// to the handler.
func (s *server) authenticated(h principalFunc) http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		token := bearerToken(r)
		if token == "" {
			return auth.ErrUnauthenticated.WithMessage("an access token is required (Authorization: Bearer …)")
		}
		p, err := s.auth.Authenticate(r.Context(), token)
		if err != nil {
			return err
		}
		if err := s.limitPrincipal(w, r, p); err != nil {
			return err
		}
		return h(w, r.WithContext(auth.NewContextWithPrincipal(r.Context(), p)), p)
	})
}

// requirePermission is authenticated plus a permission check; the denial is
// audited by the service. Services check ownership on top.
func (s *server) requirePermission(perm auth.Permission, h principalFunc) http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		if err := s.auth.Authorize(r.Context(), p, perm); err != nil {
			return err
		}
		return h(w, r, p)
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
