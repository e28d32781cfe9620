package discover

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"

	"golang.org/x/net/idna"
)

// address is an email address split for discovery.
type address struct {
	full   string // as typed, without surrounding white space or a trailing dot
	local  string // before the last '@', as typed
	domain string // after it, as typed, without a trailing dot
	ascii  string // the domain for lookups: IDNA ASCII form, lower case, no trailing dot
}

// Limits from RFC 5321 section 4.5.3.1.
const (
	maxLocalPart = 64
	maxDomain    = 253 // 255 octets on the wire, minus the length bytes
)

// parseAddress splits an email address. It refuses what cannot be an
// Internet mail address, so that no lookup is made for it: no '@', an empty
// or over-long part, white space or control characters, a domain literal or
// an IP address as the domain, a single-label domain (which the resolver
// would complete with its search list).
func parseAddress(s string) (address, error) {
	s = strings.TrimSpace(s)
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return address{}, fmt.Errorf("%w: no @", ErrNotAnAddress)
	}
	// A trailing dot (an absolute domain) is dropped: it belongs in no
	// login name.
	a := address{local: s[:at], domain: strings.TrimSuffix(s[at+1:], ".")}
	a.full = a.local + "@" + a.domain
	if err := checkLocalPart(a.local); err != nil {
		return address{}, err
	}
	ascii, err := asciiDomain(a.domain)
	if err != nil {
		return address{}, err
	}
	a.ascii = ascii
	return a, nil
}

func checkLocalPart(local string) error {
	switch {
	case local == "":
		return fmt.Errorf("%w: nothing before the @", ErrNotAnAddress)
	case len(local) > maxLocalPart:
		return fmt.Errorf("%w: the part before the @ is longer than %d bytes", ErrNotAnAddress, maxLocalPart)
	case strings.IndexFunc(local, unicode.IsSpace) >= 0 || strings.IndexFunc(local, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: white space or a control character before the @", ErrNotAnAddress)
	}
	return nil
}

// asciiDomain validates a domain and returns its IDNA lookup form
// ("bücher.example" becomes "xn--bcher-kva.example").
func asciiDomain(domain string) (string, error) {
	domain = strings.TrimSuffix(domain, ".")
	if domain == "" {
		return "", fmt.Errorf("%w: nothing after the @", ErrNotAnAddress)
	}
	if _, err := netip.ParseAddr(strings.Trim(domain, "[]")); err == nil {
		return "", fmt.Errorf("%w: the domain is an IP address", ErrNotAnAddress)
	}
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return "", fmt.Errorf("%w: the domain is not a valid host name: %w", ErrNotAnAddress, err)
	}
	ascii = strings.ToLower(ascii)
	if !validHostname(ascii) {
		return "", fmt.Errorf("%w: the domain is not a valid host name", ErrNotAnAddress)
	}
	labels := strings.Split(ascii, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("%w: the domain has a single label", ErrNotAnAddress)
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", fmt.Errorf("%w: the top-level domain is numeric", ErrNotAnAddress)
	}
	return ascii, nil
}

// validHostname reports whether s is a host name in the letters, digits and
// hyphens form (RFC 1123 section 2.1), without a trailing dot. Discovered
// server names must pass it before they are used anywhere.
func validHostname(s string) bool {
	if s == "" || len(s) > maxDomain {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !validLabel(label) {
			return false
		}
	}
	return true
}

func validLabel(label string) bool {
	if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Placeholders of Thunderbird's autoconfig format that a user name (and, for
// %EMAILDOMAIN%, a host name) may contain.
const (
	placeholderAddress   = "%EMAILADDRESS%"
	placeholderLocalPart = "%EMAILLOCALPART%"
	placeholderDomain    = "%EMAILDOMAIN%"
)

// maxUsername bounds a resolved user name; longer ones are treated as unknown.
const maxUsername = 256

// expandUsername resolves a user-name template for a. It returns "" (unknown)
// when the template is empty, still holds a placeholder this package does
// not know (%REALNAME%...), or would produce control characters.
func expandUsername(template string, a address) string {
	r := strings.NewReplacer(
		placeholderAddress, a.full,
		placeholderLocalPart, a.local,
		placeholderDomain, a.domain,
	)
	u := strings.TrimSpace(r.Replace(template))
	if u == "" || len(u) > maxUsername || hasPlaceholder(u) || strings.IndexFunc(u, unicode.IsControl) >= 0 {
		return ""
	}
	return u
}

// hasPlaceholder reports whether s contains %NAME% with NAME of upper-case
// ASCII letters.
func hasPlaceholder(s string) bool {
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			return false
		}
		s = s[i+1:]
		j := strings.IndexByte(s, '%')
		if j < 0 {
			return false
		}
		if j > 0 && strings.Trim(s[:j], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "" {
			return true
		}
		s = s[j:]
	}
}
