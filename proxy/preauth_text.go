package proxy

// Text put on the wire: sanitising (for every text sent to a client) and the
// front end's own user-facing texts in each language.

import (
	"strings"
	"unicode"
)

// sanitizeText makes s fit to be the text of one IMAP response line, shown
// to a user: invalid UTF-8 becomes U+FFFD; control characters (CR, LF, TAB,
// C0, DEL, C1), line and paragraph separators and the bidirectional
// overrides and isolates become spaces; runs of white space collapse to one
// space; the ends are trimmed; and at most maxRunes runes are kept, so the
// result is always valid UTF-8 and never splits a character.
func sanitizeText(s string, maxRunes int) string {
	var b strings.Builder
	runes, space := 0, false
	for _, r := range s { // invalid UTF-8 arrives as utf8.RuneError, U+FFFD
		if runes >= maxRunes {
			break
		}
		if unicode.IsSpace(r) || unicode.IsControl(r) || frontBidiControl(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			if runes+1 >= maxRunes {
				break
			}
			b.WriteByte(' ')
			runes++
			space = false
		}
		b.WriteRune(r)
		runes++
	}
	return b.String()
}

// frontBidiControl reports the characters that reorder displayed text
// (Unicode bidi embeddings, overrides and isolates), which could make a
// message read differently from what it says.
func frontBidiControl(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// frontRespText sanitises s for the text of a response line (at most
// frontMaxText runes). A leading "[" is dropped, lest a client read a
// response code into the text (resp-text, RFC 9051 §9), and an empty text
// becomes fallback: IMAP4rev1 text must not be empty.
func frontRespText(s, fallback string) string {
	t := strings.TrimLeft(sanitizeText(s, frontMaxText), "[ ")
	if t == "" {
		return fallback
	}
	return t
}

// frontMsg names one of the front end's own user-facing texts.
type frontMsg int

const (
	frontMsgPrivacy frontMsg = iota
	frontMsgTooManyLogins
	frontMsgLanguages
	frontMsgLanguageSet
	frontMsgLanguageUnsupported
	frontMsgCount
)

// frontTexts holds the texts per language. Protocol errors (BAD) stay in
// English: they are meant for developers, not for the person at the app.
var frontTexts = map[string][frontMsgCount]string{
	"en": {
		frontMsgPrivacy:             "This connection is not encrypted, so the password was not accepted. Turn on SSL/TLS (or STARTTLS) in the mail app's server settings.",
		frontMsgTooManyLogins:       "Too many failed logins on this connection",
		frontMsgLanguages:           "Supported languages listed",
		frontMsgLanguageSet:         "Language changed to English",
		frontMsgLanguageUnsupported: "Unsupported language",
	},
	"ja": {
		frontMsgPrivacy:             "暗号化されていない接続のため、パスワードを受け付けませんでした。メールアプリのサーバー設定で SSL/TLS（または STARTTLS）をオンにしてください。",
		frontMsgTooManyLogins:       "この接続でのログイン失敗が多すぎます",
		frontMsgLanguages:           "対応している言語の一覧です",
		frontMsgLanguageSet:         "言語を日本語に切り替えました",
		frontMsgLanguageUnsupported: "その言語には対応していません",
	},
}

// text returns one of our texts in the current language.
func (f *front) text(m frontMsg) string { return frontTexts[f.language()][m] }
