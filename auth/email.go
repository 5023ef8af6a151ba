package auth

import (
	"errors"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxEmailLen is the longest email accepted, in bytes (RFC 5321's path limit).
const MaxEmailLen = 254

// NormalizeEmail returns the canonical form of an email address, the form
// stored and compared: surrounding spaces removed, Unicode NFC, and lower
// case. It accepts only a bare address (no display name, no comments, no
// quoted local part) with a domain that has a dot, and rejects control
// characters, invalid UTF-8 and addresses over MaxEmailLen bytes.
//
// Lower-casing the local part is a deliberate choice: no mainstream mailbox
// provider treats case as significant, and two accounts differing only by case
// are a support and phishing hazard.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errors.New("is required")
	case !utf8.ValidString(s):
		return "", errors.New("must be valid UTF-8")
	case len(s) > MaxEmailLen:
		return "", errors.New("must be at most 254 bytes")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return "", errors.New("must not contain spaces or control characters")
	}
	s = strings.ToLower(norm.NFC.String(s))
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" {
		return "", errors.New("must be a plain email address such as name@example.com")
	}
	local, domain, _ := strings.Cut(s, "@")
	if local == "" || strings.HasPrefix(local, `"`) {
		return "", errors.New("must be a plain email address such as name@example.com")
	}
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.HasPrefix(domain, "[") {
		return "", errors.New("must have a domain such as example.com")
	}
	return s, nil
}
