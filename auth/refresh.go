package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// refreshTokenLen is the length of an encoded refresh token: 256 bits in
// unpadded base64url.
const refreshTokenLen = 43

// newRefreshToken returns a fresh refresh token: 256 bits from the CSPRNG.
func newRefreshToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashRefreshToken is what stores keep instead of the token: a leaked row
// cannot be replayed.
func hashRefreshToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// successorToken derives the token that replaces `token` on rotation:
// HMAC-SHA256 under the service's refresh key. Without the key it is as
// unpredictable as a random token; with it the service can hand the same
// successor to a second, concurrent refresh of one token (the grace window)
// without ever storing a token.
func successorToken(key []byte, token string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("adshare refresh successor\x00"))
	m.Write([]byte(token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// plausibleRefreshToken rejects input that cannot be a refresh token before
// it costs a store lookup.
func plausibleRefreshToken(token string) bool {
	if len(token) != refreshTokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil
}
