package proxy

// ID (RFC 2971) and LANGUAGE (RFC 5255 §3) before login.

import (
	"slices"
	"strings"

	"github.com/imapwhy/imapwhy/internal/imapwire"
)

// RFC 2971 §3.3: at most 30 field-value pairs, fields of at most 30 octets,
// values of at most 1024. Clients that send more are not refused; the
// excess is not kept (lengths are counted in characters here).
const (
	frontMaxIDFields = 30
	frontMaxIDField  = 30
	frontMaxIDValue  = 1024
	// frontMaxIDLogged bounds the name and the version logged (clientApp).
	frontMaxIDLogged = 64
)

// cmdID: ID SP ("(" [string SP nstring *(SP string SP nstring)] ")" / NIL).
// The name and version are logged with the login (clientApp); the answer
// names us only.
func (f *front) cmdID() (*loginRequest, error) {
	if err := f.argSP(); err != nil {
		return nil, err
	}
	fields, err := f.argIDParams()
	if err != nil {
		return nil, err
	}
	if err := f.argEnd(); err != nil {
		return nil, err
	}
	f.id = fields
	f.writeLine(`* ID ("name" "imapwhy")`)
	f.tagged("OK", "", "ID completed")
	return nil, nil
}

// argIDParams reads the ID parameter list. Field names are compared
// without case (RFC 2971 §3.3), so they are kept in lower case; the first
// of duplicate fields wins; NIL values are left out; all text is sanitised.
func (f *front) argIDParams() (map[string]string, error) {
	if !f.argByte('(') {
		if strings.EqualFold(f.scan(imapwire.IsAtomChar), "NIL") {
			return nil, nil
		}
		return nil, frontSyntax("Expected ( or NIL")
	}
	if f.argByte(')') {
		return nil, nil
	}
	fields := map[string]string{}
	for {
		key, err := f.argAstring()
		if err != nil {
			return nil, err
		}
		if err := f.argSP(); err != nil {
			return nil, err
		}
		value, isNil, err := f.argNString()
		if err != nil {
			return nil, err
		}
		key = sanitizeText(strings.ToLower(key), frontMaxIDField)
		if _, dup := fields[key]; !isNil && !dup && key != "" && len(fields) < frontMaxIDFields {
			fields[key] = sanitizeText(value, frontMaxIDValue)
		}
		if f.argByte(')') {
			break
		}
		if err := f.argSP(); err != nil {
			return nil, err
		}
	}
	if len(fields) == 0 {
		return nil, nil
	}
	return fields, nil
}

// frontLanguages are the languages of our own texts and of diagnose's
// messages, in the order LANGUAGE lists them.
var frontLanguages = []string{"en", "ja"}

// cmdLanguage: LANGUAGE *(SP lang-range-quoted) (RFC 5255 §3.2). Without
// arguments it lists the languages ("* LANGUAGE (EN JA)", §3.3: a list of
// several tags is an enumeration). With arguments the first range that
// matches one of ours selects it, announced as a one-tag LANGUAGE response;
// texts after that response are in the new language. No match gets a plain
// tagged NO, as in the RFC's examples (there is no response code for it).
func (f *front) cmdLanguage() (*loginRequest, error) {
	var ranges []string
	for {
		more, err := f.argNext()
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		r, err := f.argAstring()
		if err != nil {
			return nil, err
		}
		if !frontLanguageRange(r) {
			return nil, frontSyntax("Invalid language range")
		}
		ranges = append(ranges, r)
	}
	if len(ranges) == 0 {
		tags := make([]string, len(frontLanguages))
		for i, l := range frontLanguages {
			tags[i] = strings.ToUpper(l)
		}
		f.writeLine("* LANGUAGE (", strings.Join(tags, " "), ")")
		f.tagged("OK", "", f.text(frontMsgLanguages))
		return nil, nil
	}
	for _, r := range ranges {
		if lang, ok := frontMatchLanguage(r, f.cfg.Language); ok {
			f.lang, f.langAsked = lang, true
			f.writeLine("* LANGUAGE (", strings.ToUpper(lang), ")")
			f.tagged("OK", "", f.text(frontMsgLanguageSet))
			return nil, nil
		}
	}
	f.tagged("NO", "", f.text(frontMsgLanguageUnsupported))
	return nil, nil
}

// frontLanguageRange reports whether r is an extended language range
// (RFC 4647 §2.2): (1*8ALPHA / "*") *("-" (1*8alphanum / "*")).
func frontLanguageRange(r string) bool {
	for i, sub := range strings.Split(r, "-") {
		if sub == "*" {
			continue
		}
		if sub == "" || len(sub) > 8 {
			return false
		}
		for j := 0; j < len(sub); j++ {
			c := sub[j] | 0x20 // ASCII lower case
			digit := sub[j] >= '0' && sub[j] <= '9'
			if !(c >= 'a' && c <= 'z') && !(digit && i > 0) {
				return false
			}
		}
	}
	return true
}

// frontMatchLanguage picks our language for one range: "default" and "*"
// mean the listener's language (RFC 5255 §3.2); otherwise RFC 4647 §3.4
// lookup: the range, then the range shortened subtag by subtag ("ja-JP" and
// "ja-*" give "ja").
func frontMatchLanguage(r, def string) (string, bool) {
	r = strings.ToLower(r)
	if r == "default" || r == "*" {
		return def, true
	}
	for {
		if slices.Contains(frontLanguages, r) {
			return r, true
		}
		i := strings.LastIndexByte(r, '-')
		if i < 0 {
			return "", false
		}
		r = r[:i]
	}
}
