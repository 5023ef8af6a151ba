package analytics

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/internal/errs"
)

// Errors about tracking tokens.
var (
	// ErrInvalidToken: the token is malformed, forged, altered or sealed
	// with an unknown key.
	ErrInvalidToken = errs.New(errs.Invalid, "invalid_tracking_token", "the tracking token is not valid")
	// ErrExpiredToken: the token is past its expiry.
	ErrExpiredToken = errs.New(errs.Invalid, "expired_tracking_token", "the tracking token has expired")
)

// MaxTokenLen bounds an encoded token; longer input is refused unread.
const MaxTokenLen = 4096

// Tracking is what a token says about one served ad.
type Tracking struct {
	// ID is unique per served ad: an impression or click counts once per ID.
	ID uuid.UUID `json:"i"`
	// Owner is the user whose space showed the ad.
	Owner uuid.UUID `json:"o"`
	// Viewer is the signed-in viewer, uuid.Nil when anonymous.
	Viewer uuid.UUID `json:"w,omitzero"`
	// ViewerKey is the viewer's pseudonymous key (empty when consent
	// forbids one); it lets the invalid-traffic filters spot bursts.
	ViewerKey string `json:"k,omitempty"`
	// Placement is the slot within the space.
	Placement string `json:"p"`
	// Source, AdID, CreativeID, CampaignID and AdvertiserID identify the ad.
	Source       string `json:"s"`
	AdID         string `json:"a"`
	CreativeID   string `json:"c,omitempty"`
	CampaignID   string `json:"g,omitempty"`
	AdvertiserID string `json:"v"`
	// PriceModel ("cpm", "cpc", ...) and PriceMicros are the ad's price.
	PriceModel  string `json:"m"`
	PriceMicros int64  `json:"x"`
	// Billable is false when the view must never earn (the owner viewing
	// their own space, house content, stale fallbacks).
	Billable bool `json:"b"`
	// UpstreamImpressionURL and UpstreamClickURL are the ad server's own
	// pixels, fired by the server once the event is accepted.
	UpstreamImpressionURL string `json:"ui,omitempty"`
	UpstreamClickURL      string `json:"uc,omitempty"`
	// LandingURL is where a click goes when the engine knows it.
	LandingURL string    `json:"l,omitempty"`
	IssuedAt   time.Time `json:"t"`
	ExpiresAt  time.Time `json:"e"`
}

// tokenVersion is the first byte of every token.
const tokenVersion = 1

// aad binds tokens to their purpose: a ciphertext sealed for another use
// under the same key cannot pass as a tracking token.
var aad = []byte("adshare tracking token v1")

// Sealer seals and opens tracking tokens. It holds one or more 32-byte
// keys: the first seals, all open, so keys rotate without breaking tokens
// in flight (add the new key first, keep the old one for the token
// lifetime, then drop it). Safe for concurrent use.
type Sealer struct {
	sealID byte
	aeads  map[byte][]cipher.AEAD // by key id; ids are one byte, so may repeat
	now    func() time.Time
}

// keyID is a token's hint of which key sealed it: the first byte of the
// key's SHA-256, stable when the key list is reordered.
func keyID(key []byte) byte {
	sum := sha256.Sum256(key)
	return sum[0]
}

// NewSealer returns a sealer over keys (each 32 bytes, at most 255). now
// is the clock (nil: time.Now).
func NewSealer(keys [][]byte, now func() time.Time) (*Sealer, error) {
	if len(keys) == 0 || len(keys) > 255 {
		return nil, errors.New("analytics: NewSealer needs 1 to 255 keys of 32 random bytes (the first seals)")
	}
	s := &Sealer{now: now, aeads: map[byte][]cipher.AEAD{}, sealID: keyID(keys[0])}
	if s.now == nil {
		s.now = time.Now
	}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("analytics: tracking key %d is %d bytes; want 32", i, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := keyID(k)
		s.aeads[id] = append(s.aeads[id], gcm)
	}
	return s, nil
}

// Seal returns the token for t, with a random nonce.
func (s *Sealer) Seal(t Tracking) (string, error) {
	plain, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("analytics: encode token: %w", err)
	}
	gcm := s.aeads[s.sealID][0]
	out := make([]byte, 2, 2+gcm.NonceSize()+len(plain)+gcm.Overhead())
	out[0], out[1] = tokenVersion, s.sealID
	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce)
	out = append(out, nonce...)
	out = gcm.Seal(out, nonce, plain, aad)
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// Open verifies and decrypts a token. It returns ErrInvalidToken for
// anything malformed, forged or altered, and ErrExpiredToken (with the
// tracking still returned, for reporting) when it is past its expiry.
func (s *Sealer) Open(token string) (Tracking, error) {
	if len(token) == 0 || len(token) > MaxTokenLen {
		return Tracking{}, ErrInvalidToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < 2 || raw[0] != tokenVersion {
		return Tracking{}, ErrInvalidToken
	}
	body := raw[2:]
	var plain []byte
	for _, gcm := range s.aeads[raw[1]] {
		if len(body) < gcm.NonceSize()+gcm.Overhead() {
			break
		}
		if plain, err = gcm.Open(nil, body[:gcm.NonceSize()], body[gcm.NonceSize():], aad); err == nil {
			break
		}
	}
	if plain == nil {
		return Tracking{}, ErrInvalidToken
	}
	var t Tracking
	if err := json.Unmarshal(plain, &t); err != nil || t.ID == uuid.Nil {
		return Tracking{}, ErrInvalidToken
	}
	if !s.now().Before(t.ExpiresAt) {
		return t, ErrExpiredToken
	}
	return t, nil
}
