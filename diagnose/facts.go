package diagnose

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// Facts computes what Classify may know about the typed credentials. The
// proxy calls it with the password, then forgets the password: Typed holds
// no part of it.
func Facts(username, password string) Typed {
	t := Typed{
		Username:             username,
		UserHasDomain:        userDomain(username) != "",
		UserSurroundingSpace: surroundingSpace(username),
		UserFullwidth:        hasFullwidth(username),
		PasswordEmpty:        password == "",
		PasswordLength:       utf8.RuneCountInString(password),
	}
	if password == "" {
		return t
	}
	t.PasswordSurroundingSpace = surroundingSpace(password)
	t.PasswordFullwidth = hasFullwidth(password)
	t.PasswordNonASCII = hasOtherNonASCII(password)
	t.AppPasswordShapes = appPasswordShapes(password)
	return t
}

// isTypedSpace is white space a user may type or paste around a value:
// space, tab, CR, LF and the ideographic space U+3000.
func isTypedSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\u3000'
}

func surroundingSpace(s string) bool {
	if s == "" {
		return false
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return isTypedSpace(first) || isTypedSpace(last)
}

// isFullwidthASCII: the full-width forms of ASCII (U+FF01-U+FF5E) and the
// ideographic space U+3000, typed with a Japanese input method on.
func isFullwidthASCII(r rune) bool {
	return r == '\u3000' || (r >= 0xFF01 && r <= 0xFF5E)
}

func hasFullwidth(s string) bool {
	return strings.IndexFunc(s, isFullwidthASCII) >= 0
}

// hasOtherNonASCII: non-ASCII characters other than full-width ASCII
// (kana, kanji, accented letters, invisible characters).
func hasOtherNonASCII(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return r > unicode.MaxASCII && !isFullwidthASCII(r)
	}) >= 0
}

// appPasswordShapes lists the providers whose app passwords look like
// this password. It tests the password as meant: without surrounding
// space and folded to half-width, so a pasted app password with a
// trailing space still counts as one (the space is reported by itself).
func appPasswordShapes(password string) []string {
	norm := strings.TrimFunc(password, isTypedSpace)
	// Folding copies the password into buffers nobody wipes; ASCII text
	// is folded already.
	if strings.IndexFunc(norm, func(r rune) bool { return r > unicode.MaxASCII }) >= 0 {
		norm = width.Fold.String(norm)
	}
	var ids []string
	for _, e := range catalogData.shapes {
		if e.shape.MatchString(norm) {
			ids = append(ids, e.ID)
		}
	}
	return ids
}
