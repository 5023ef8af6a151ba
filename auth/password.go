package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"github.com/adshare/adshare/internal/errs"
)

// Password rules.
const (
	// MinPasswordLen is the fewest characters a password may have.
	MinPasswordLen = 10
	// MaxPasswordLen is the most characters a password may have; a cap keeps
	// hashing cost bounded whatever the client sends.
	MaxPasswordLen = 256
	// MaxPasswordBytes caps the encoded length as well.
	MaxPasswordBytes = 1024
)

// PasswordParams are argon2id's cost parameters.
type PasswordParams struct {
	// Memory in KiB.
	Memory uint32
	// Iterations (time cost).
	Iterations uint32
	// Parallelism (lanes).
	Parallelism uint8
	// SaltLen and KeyLen in bytes.
	SaltLen uint32
	KeyLen  uint32
}

// DefaultPasswordParams meet OWASP's argon2id recommendation (19 MiB, two
// iterations, one lane).
var DefaultPasswordParams = PasswordParams{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// atLeast reports whether p costs at least as much as min.
func (p PasswordParams) atLeast(min PasswordParams) bool {
	return p.Memory >= min.Memory && p.Iterations >= min.Iterations && p.Parallelism >= min.Parallelism && p.KeyLen >= min.KeyLen
}

// HasherConfig configures NewHasher.
type HasherConfig struct {
	// Params are the cost parameters of new hashes. Defaults to
	// DefaultPasswordParams; weaker than that is refused.
	Params PasswordParams
	// MaxConcurrent caps hashes computed at once, so a login flood cannot
	// take more than MaxConcurrent × Params.Memory of memory. Defaults to
	// the number of CPUs.
	MaxConcurrent int
	// MaxWait is how long a hash may wait for a slot before the call fails
	// with ErrBusy. Defaults to 5 s.
	MaxWait time.Duration
}

// Hasher hashes and verifies passwords with argon2id, at most MaxConcurrent
// at a time. Hashes are PHC strings:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
type Hasher struct {
	params  PasswordParams
	slots   chan struct{}
	maxWait time.Duration
	// dummy is a hash of a random password, verified against when an
	// account does not exist so that the answer takes as long.
	dummy string
}

// NewHasher returns a hasher.
func NewHasher(cfg HasherConfig) (*Hasher, error) {
	if cfg.Params == (PasswordParams{}) {
		cfg.Params = DefaultPasswordParams
	}
	if !cfg.Params.atLeast(DefaultPasswordParams) || cfg.Params.SaltLen < 16 {
		return nil, errors.New("auth: password parameters are weaker than OWASP's minimum (argon2id m=19456 KiB, t=2, p=1, 16-byte salt, 32-byte key)")
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = runtime.NumCPU()
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Second
	}
	h := &Hasher{params: cfg.Params, slots: make(chan struct{}, cfg.MaxConcurrent), maxWait: cfg.MaxWait}
	h.dummy = h.encode(rand.Text())
	return h, nil
}

// Params returns the parameters of new hashes.
func (h *Hasher) Params() PasswordParams { return h.params }

// acquire waits for a hashing slot, at most MaxWait.
func (h *Hasher) acquire(ctx context.Context) (func(), error) {
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, nil
	default:
	}
	t := time.NewTimer(h.maxWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, nil
	case <-t.C:
		return nil, ErrBusy.WithRetryAfter(time.Second)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Hash returns the encoded hash of password, which the caller has checked
// with CheckPassword.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return h.encode(password), nil
}

func (h *Hasher) encode(password string) string {
	salt := make([]byte, h.params.SaltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(normalizePassword(password)), salt, h.params.Iterations, h.params.Memory, h.params.Parallelism, h.params.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.params.Memory, h.params.Iterations,
		h.params.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether password matches the encoded hash, and whether the
// hash should be replaced because it was made with weaker parameters than
// the hasher's. An encoded value of "" (no account, or no password) is
// verified against a dummy hash, taking as long, and never matches.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, rehash bool, err error) {
	if encoded == "" {
		encoded = h.dummy
		defer func() { ok, rehash = false, false }()
	}
	params, salt, want, err := decodePasswordHash(encoded)
	if err != nil {
		return false, false, err
	}
	if len(password) > MaxPasswordBytes {
		// Never hash unbounded input; still spend the time.
		password = password[:MaxPasswordBytes]
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	got := argon2.IDKey([]byte(normalizePassword(password)), salt, params.Iterations, params.Memory, params.Parallelism, uint32(len(want)))
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && !params.atLeast(h.params), nil
}

// decodePasswordHash parses a PHC argon2id string. It bounds the parameters
// so that a corrupted or planted hash cannot make verification arbitrarily
// expensive.
func decodePasswordHash(s string) (PasswordParams, []byte, []byte, error) {
	var p PasswordParams
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("auth: password hash is not an argon2id PHC string")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errors.New("auth: unsupported argon2 version in password hash")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Iterations, &p.Parallelism); err != nil {
		return p, nil, nil, errors.New("auth: bad argon2 parameters in password hash")
	}
	if p.Memory == 0 || p.Memory > 1<<20 || p.Iterations == 0 || p.Iterations > 16 || p.Parallelism == 0 || p.Parallelism > 16 {
		return p, nil, nil, errors.New("auth: argon2 parameters in password hash are out of range")
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 128 {
		return p, nil, nil, errors.New("auth: bad salt or key in password hash")
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

// normalizePassword applies Unicode NFKC, so that a password typed on two
// keyboards that encode "é" differently is the same password (NIST SP
// 800-63B §5.1.1.2).
func normalizePassword(s string) string { return norm.NFKC.String(s) }

// CheckPassword applies the password rules: MinPasswordLen to
// MaxPasswordLen characters (and at most MaxPasswordBytes bytes) of valid
// UTF-8 without control characters, not only spaces, not the email or its
// local part, and not one of the most common passwords. It returns nil or an
// error matching ErrWeakPassword whose field ("password") says what to fix.
func CheckPassword(password, email string) error {
	msg := passwordProblem(password, email)
	if msg == "" {
		return nil
	}
	return ErrWeakPassword.WithFields(errs.Fields{"password": msg})
}

func passwordProblem(password, email string) string {
	switch {
	case len(password) > MaxPasswordBytes || utf8.RuneCountInString(password) > MaxPasswordLen:
		return fmt.Sprintf("must be at most %d characters", MaxPasswordLen)
	case !utf8.ValidString(password):
		return "must be valid UTF-8"
	case utf8.RuneCountInString(password) < MinPasswordLen:
		return fmt.Sprintf("must be at least %d characters", MinPasswordLen)
	case strings.IndexFunc(password, unicode.IsControl) >= 0:
		return "must not contain control characters"
	case strings.TrimSpace(password) == "":
		return "must not be only spaces"
	}
	lower := strings.ToLower(normalizePassword(password))
	if email != "" {
		local, _, _ := strings.Cut(strings.ToLower(email), "@")
		if lower == strings.ToLower(email) || lower == local {
			return "must not be your email address"
		}
	}
	if commonPasswords[lower] {
		return "is too common; choose a less guessable password"
	}
	return ""
}

// commonPasswords are frequent choices of at least MinPasswordLen
// characters, refused outright (NIST SP 800-63B asks for a blocklist).
var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range strings.Fields(`
		1234567890 0123456789 12345678910 1234567891 123456789a 1q2w3e4r5t 1qaz2wsx3edc qwertyuiop
		qwerty1234 qwerty12345 asdfghjkl; asdfghjkl1 zxcvbnm123 password12 password123 password1234
		password01 passw0rd123 p@ssw0rd123 p@ssword123 iloveyou12 letmein123 welcome123 welcome1234
		administrator admin12345 admin123456 changeme123 football123 baseball123 princess123
		sunshine123 superman123 starwars123 trustno1234 dragon1234 monkey1234 master1234
		1111111111 0000000000 2222222222 9999999999 1234512345 1212121212 abcdefghij abcd123456
		abc1234567 aaaaaaaaaa qazwsxedcr 987654321a 9876543210 google1234 facebook123 secret1234
		computer123 internet123 whatever123 michael123 jennifer123 jordan2323 hunter1234
		qwertyuiop123 q1w2e3r4t5 a1b2c3d4e5 password!1 password1! passwordpassword`) {
		m[p] = true
	}
	return m
}()
