package auth

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Principal is the authenticated caller of a request, from a verified
// access token.
type Principal struct {
	UserID    uuid.UUID
	SessionID uuid.UUID
	Role      Role
	// TokenID is the access token's jti.
	TokenID   string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

type principalKey struct{}

// NewContextWithPrincipal returns a context carrying p.
func NewContextWithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal in ctx and whether there is one.
func PrincipalFromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Client describes where a request comes from, for rate limits, sessions and
// the audit log. The transport fills it from trusted headers only.
type Client struct {
	// IP is the client's address, as a string ("" when unknown).
	IP string
	// UserAgent is the client's User-Agent header, truncated.
	UserAgent string
}

type clientKey struct{}

// NewContextWithClient returns a context carrying c.
func NewContextWithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFromContext returns the client in ctx, or the zero Client.
func ClientFromContext(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}
