package transport

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"unicode"
)

// maxUserAgentLen caps the User-Agent kept for sessions and the audit log.
const maxUserAgentLen = 256

// clientIP returns the client's address. X-Forwarded-For is believed only
// as far as the chain of trusted proxies goes: starting from the direct
// peer, while the current hop is a trusted proxy, step one entry left in
// X-Forwarded-For. The first untrusted address is the client. A client can
// prepend anything to the header, but never past a proxy the host trusts.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	peer, host := remoteAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return ""
	}
	if !isTrusted(peer, trusted) {
		if peer.Is4() && host != "" {
			return host // the canonical form already, without a new string
		}
		return peer.String()
	}
	client := peer
	// Right to left over the fields and their comma-separated hops,
	// without splitting them into new strings.
	values := r.Header.Values("X-Forwarded-For")
	for v := len(values) - 1; v >= 0; v-- {
		rest := values[v]
		for {
			i := strings.LastIndexByte(rest, ',')
			hop, err := netip.ParseAddr(strings.TrimSpace(rest[i+1:]))
			if err != nil {
				return client.String() // garbage: stop at the last address we could trust
			}
			client = hop.Unmap()
			if !isTrusted(client, trusted) {
				return client.String()
			}
			if i < 0 {
				break
			}
			rest = rest[:i]
		}
	}
	return client.String()
}

// remoteAddr parses a request's RemoteAddr (host:port, or a bare
// address) and returns the address, unmapped, and the host as written
// when it is an IPv4 address (ParseAddr takes those only in canonical
// form), else "".
func remoteAddr(s string) (netip.Addr, string) {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, ""
	}
	if !a.Is4() {
		host = ""
	}
	return a.Unmap(), host
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// cleanUserAgent keeps a User-Agent printable and short, so that it is
// safe to store and to log.
func cleanUserAgent(ua string) string {
	ua = strings.ToValidUTF8(ua, "")
	ua = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, ua)
	if len(ua) > maxUserAgentLen {
		ua = strings.ToValidUTF8(ua[:maxUserAgentLen], "")
	}
	return ua
}
