package shield

import (
	"strings"
	"unicode"

	"golang.org/x/text/width"
)

// The ways a typed password differs from the one meant, that history can
// confirm. Each returns the password as meant; it equals the input when the
// mistake cannot apply.

// caseInverted is the password as typed with Caps Lock in the other state:
// every letter's case swapped.
func caseInverted(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsUpper(r):
			return unicode.ToLower(r)
		case unicode.IsLower(r):
			return unicode.ToUpper(r)
		}
		return r
	}, s)
}

// trimmed is the password without the white space a user may type or paste
// around it (the same set diagnose.Facts reports: space, tab, CR, LF and
// the ideographic space).
func trimmed(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\u3000'
	})
}

// folded is the password with full-width forms folded to their ASCII
// (half-width) counterparts, as typed with a Japanese input method off.
func folded(s string) string { return width.Fold.String(s) }
