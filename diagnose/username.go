package diagnose

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUsernameLen bounds a user name, in bytes. An email address has at
// most 254; the rest is room for other forms (domain\user, user%host).
const MaxUsernameLen = 256

// ValidUsername reports whether u can be a user name at all: valid UTF-8,
// at most MaxUsernameLen bytes, and no control, format (bidi overrides and
// isolates, zero-width characters) or line and paragraph separator
// characters. The proxy refuses any other with client.invalid_username.
func ValidUsername(u string) bool {
	return len(u) <= MaxUsernameLen && utf8.ValidString(u) && strings.IndexFunc(u, hiddenRune) < 0
}

// CleanUsername is u as it may leave the process: in logs, webhook
// events, desktop notifications and pages. Invalid UTF-8 and the characters
// ValidUsername refuses each become U+FFFD, so that a name can neither
// reorder or hide text nor pass for another user's, and a name over
// MaxUsernameLen bytes is cut there, at a character boundary, with "…".
func CleanUsername(u string) string {
	if ValidUsername(u) {
		return u
	}
	u = strings.ToValidUTF8(u, "\uFFFD")
	u = strings.Map(func(r rune) rune {
		if hiddenRune(r) {
			return utf8.RuneError
		}
		return r
	}, u)
	return cutBytes(u, MaxUsernameLen, "…")
}

// hiddenRune: control characters (C0, DEL, C1), format characters (Cf:
// bidi embeddings, overrides, isolates and marks, zero-width joiners) and
// the line and paragraph separators.
func hiddenRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}
