package tracking

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
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

// Ad is what a token says about the ad it tracks, as its events record
// it: everything but the token's id, the ad server's pixels, the landing
// page and the expiry (see Payload).
type Ad struct {
	// Owner is the user whose space showed the ad.
	Owner uuid.UUID
	// Viewer is the signed-in viewer, uuid.Nil when anonymous.
	Viewer uuid.UUID
	// ViewerKey is the viewer's pseudonymous key (empty when consent
	// forbids one); it lets the invalid-traffic filters spot bursts.
	ViewerKey string
	// Placement is the slot within the space.
	Placement string
	// Source, AdID, CreativeID, CampaignID and AdvertiserID identify the ad.
	Source       string
	AdID         string
	CreativeID   string
	CampaignID   string
	AdvertiserID string
	// PriceModel ("cpm", "cpc", ...) and PriceMicros are the ad's price.
	PriceModel  string
	PriceMicros int64
	// Billable is false when the view must never earn (the owner viewing
	// their own space, house content, stale fallbacks).
	Billable bool
	// IssuedAt is when the ad was served. Events are partitioned by it,
	// so one token's events always land together.
	IssuedAt time.Time
}

// Upstream holds the ad server's own pixels for one served ad, fired by
// the server once an event is accepted. They never reach clients and are
// never stored.
type Upstream struct {
	ImpressionURL string
	ClickURL      string
}

// Payload is everything a token holds about one served ad.
type Payload struct {
	// ID is unique per served ad: an impression or click counts once per
	// ID (an event's TrackingID).
	ID uuid.UUID
	Ad
	// Upstream are the ad server's pixels, for the server's eyes only.
	Upstream Upstream
	// LandingURL is where a click goes when the engine knows it.
	LandingURL string
	// ExpiresAt is when the token stops being accepted.
	ExpiresAt time.Time
	// NoViewerAnalytics is true when the viewer did not consent to
	// per-viewer analytics: the token's events are stored without the
	// viewer's user id and key (the checks at ingest still use them).
	NoViewerAnalytics bool
}

// tokenVersion is the first byte of every token: 2 marks the binary
// payload of encodePayload (1 was JSON, slower to read and a third
// longer).
const tokenVersion = 2

// aad binds tokens to their purpose and payload format: a ciphertext sealed
// for another use under the same key cannot pass as a tracking token.
var aad = []byte("adshare tracking token v2")

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
		return nil, errors.New("tracking: NewSealer needs 1 to 255 keys of 32 random bytes (the first seals)")
	}
	s := &Sealer{now: now, aeads: map[byte][]cipher.AEAD{}, sealID: keyID(keys[0])}
	if s.now == nil {
		s.now = time.Now
	}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("tracking: key %d is %d bytes; want 32", i, len(k))
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

// Seal returns the token for p, with a random nonce. Times are kept to the
// microsecond.
func (s *Sealer) Seal(p Payload) (string, error) {
	buf := sealBuffers.Get().(*sealBuffer)
	defer putSealBuffer(buf)
	plain := encodePayload(buf.plain[:0], p)
	gcm := s.aeads[s.sealID][0]
	out := append(buf.out[:0], tokenVersion, s.sealID)
	nonce := buf.nonce[:gcm.NonceSize()]
	_, _ = rand.Read(nonce)
	out = append(out, nonce...)
	out = gcm.Seal(out, nonce, plain, aad)
	text := base64.RawURLEncoding.AppendEncode(buf.text[:0], out)
	buf.plain, buf.out, buf.text = plain, out, text
	return string(text), nil
}

// sealBuffer is Seal's scratch space: the plaintext, the token before
// and after its base64 and the nonce, reused so that a token costs one
// allocation, its string.
type sealBuffer struct {
	plain, out, text []byte
	nonce            [12]byte // GCM's standard nonce size
}

var sealBuffers = sync.Pool{New: func() any {
	return &sealBuffer{plain: make([]byte, 0, 256), out: make([]byte, 0, 320), text: make([]byte, 0, 448)}
}}

// putSealBuffer returns buf to the pool unless a long payload grew it: one
// such token must not pin its memory for good.
func putSealBuffer(buf *sealBuffer) {
	if cap(buf.plain)+cap(buf.out)+cap(buf.text) <= 8<<10 {
		sealBuffers.Put(buf)
	}
}

// Open verifies and decrypts a token. It returns ErrInvalidToken for
// anything malformed, forged or altered, and ErrExpiredToken (with the
// payload still returned, for reporting) when it is past its expiry.
func (s *Sealer) Open(token string) (Payload, error) {
	if len(token) == 0 || len(token) > MaxTokenLen {
		return Payload{}, ErrInvalidToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < 2 || raw[0] != tokenVersion {
		return Payload{}, ErrInvalidToken
	}
	body := raw[2:]
	var plain []byte
	for _, gcm := range s.aeads[raw[1]] {
		if len(body) < gcm.NonceSize()+gcm.Overhead() {
			break
		}
		nonce, sealed := body[:gcm.NonceSize()], body[gcm.NonceSize():]
		// Not in place: a failed Open would clobber the ciphertext that
		// the next key with the same id needs.
		if plain, err = gcm.Open(make([]byte, 0, len(sealed)), nonce, sealed, aad); err == nil {
			break
		}
	}
	if plain == nil {
		return Payload{}, ErrInvalidToken
	}
	p, ok := decodePayload(plain)
	if !ok || p.ID == uuid.Nil {
		return Payload{}, ErrInvalidToken
	}
	if !s.now().Before(p.ExpiresAt) {
		return p, ErrExpiredToken
	}
	return p, nil
}

// Flag bits in an encoded Payload.
const (
	flagBillable = 1 << iota
	flagViewer
	flagNoViewerAnalytics
)

// encodePayload appends p's binary form to b: a flags byte; ID and Owner
// (16 bytes each) and Viewer when signed in; IssuedAt and ExpiresAt as Unix
// microseconds, and PriceMicros, as varints; then the strings, each as a
// uvarint length and its bytes, in the order of payloadStrings.
func encodePayload(b []byte, p Payload) []byte {
	var flags byte
	if p.Billable {
		flags |= flagBillable
	}
	if p.Viewer != uuid.Nil {
		flags |= flagViewer
	}
	if p.NoViewerAnalytics {
		flags |= flagNoViewerAnalytics
	}
	b = append(b, flags)
	b = append(b, p.ID[:]...)
	b = append(b, p.Owner[:]...)
	if p.Viewer != uuid.Nil {
		b = append(b, p.Viewer[:]...)
	}
	b = binary.AppendVarint(b, p.IssuedAt.UnixMicro())
	b = binary.AppendVarint(b, p.ExpiresAt.UnixMicro())
	b = binary.AppendVarint(b, p.PriceMicros)
	for _, f := range payloadStrings(&p) {
		b = binary.AppendUvarint(b, uint64(len(*f)))
		b = append(b, *f...)
	}
	return b
}

// payloadStrings lists p's strings in their encoded order.
func payloadStrings(p *Payload) [11]*string {
	return [...]*string{&p.ViewerKey, &p.Placement, &p.Source, &p.AdID, &p.CreativeID, &p.CampaignID,
		&p.AdvertiserID, &p.PriceModel, &p.Upstream.ImpressionURL, &p.Upstream.ClickURL, &p.LandingURL}
}

// decodePayload reads encodePayload's form; ok is false for anything
// else (short, long, unknown flags, trailing bytes). Times come back in
// UTC.
func decodePayload(b []byte) (p Payload, ok bool) {
	r := payloadReader{b: b}
	flags := r.byte()
	if flags&^(flagBillable|flagViewer|flagNoViewerAnalytics) != 0 {
		return Payload{}, false
	}
	p.Billable = flags&flagBillable != 0
	p.NoViewerAnalytics = flags&flagNoViewerAnalytics != 0
	r.uuid(&p.ID)
	r.uuid(&p.Owner)
	if flags&flagViewer != 0 {
		r.uuid(&p.Viewer)
	}
	p.IssuedAt = time.UnixMicro(r.varint()).UTC()
	p.ExpiresAt = time.UnixMicro(r.varint()).UTC()
	p.PriceMicros = r.varint()
	for _, f := range payloadStrings(&p) {
		*f = r.string()
	}
	if r.failed || len(r.b) > 0 {
		return Payload{}, false
	}
	return p, true
}

// payloadReader reads an encoded Payload; after the first short read it
// stays failed and returns zero values.
type payloadReader struct {
	b      []byte
	failed bool
}

func (r *payloadReader) take(n int) []byte {
	if r.failed || n < 0 || n > len(r.b) {
		r.failed = true
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *payloadReader) byte() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *payloadReader) uuid(id *uuid.UUID) {
	copy(id[:], r.take(len(id)))
}

func (r *payloadReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.failed = true
		return 0
	}
	r.take(n)
	return v
}

func (r *payloadReader) string() string {
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)-k) {
		r.failed = true
		return ""
	}
	r.take(k)
	return string(r.take(int(n)))
}
