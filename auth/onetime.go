package auth

import (
	"context"
	"time"
)

// OneTimeStore keeps short-lived values that may be taken once: OIDC
// transactions (state, nonce, PKCE verifier) and server-issued nonces.
// Implementations: store/memory and store/redis (SET NX / GETDEL).
type OneTimeStore interface {
	// PutOnce stores value under key for ttl. It returns ErrOneTimeKeyExists
	// when the key is already held (keys are random; a collision means a bug
	// or an attack).
	PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error

	// Take returns the value under key and deletes it, atomically: of two
	// concurrent Takes of one key, exactly one gets the value. It returns
	// false when the key is absent or expired.
	Take(ctx context.Context, key string) ([]byte, bool, error)
}
