package diagnose

import (
	"regexp"
	"strings"

	"github.com/imapwhy/imapwhy/internal/imapwire"
)

// parseResponse parses one server status line: untagged ("* NO ..."),
// tagged ("a1 NO ...") or bare ("NO ...", "LOGIN failed.").
func parseResponse(line string) (Response, bool) {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "* ") {
		r := imapwire.ParseResponse(line)
		if !r.IsStatus() {
			return Response{}, false
		}
		return fromStatus(r.Status), true
	}
	if line == "" || strings.HasPrefix(line, "+") {
		return Response{}, false
	}
	r, _ := parseTaggedOrBare(line)
	return r, true
}

// parseTaggedOrBare parses "tag STATUS ..." or a line without a tag, which
// counts as the tagged reply: "NO text", or only text (a NO).
func parseTaggedOrBare(line string) (Response, string) {
	first, rest := cutWord(line)
	if second, args := cutWord(rest); imapwire.IsStatusName(strings.ToUpper(second)) && !imapwire.IsStatusName(strings.ToUpper(first)) {
		r := parseStatus(strings.ToUpper(second), args)
		r.Tagged = true
		return r, first
	}
	var r Response
	if imapwire.IsStatusName(strings.ToUpper(first)) {
		r = parseStatus(strings.ToUpper(first), rest)
	} else {
		r = parseStatus("NO", line)
	}
	if r.Code == "" {
		r.Code, r.CodeArg, r.Text = findKnownCode(r.Text)
	}
	r.Tagged = true
	return r, ""
}

// parseStatus parses what follows a status word: "[CODE arg] text".
func parseStatus(status, rest string) Response {
	return fromStatus(imapwire.ParseStatus(status, rest))
}

// fromStatus is a status response read by imapwire, untagged.
func fromStatus(s imapwire.Status) Response {
	return Response{Status: string(s.Type), Code: string(s.Code), CodeArg: s.CodeArg, Text: s.Text}
}

// knownCodeRE finds a response code inside text that a client reworded
// ("No Response: [REFERRAL imap://...]").
var knownCodeRE = regexp.MustCompile(`\[(ALERT|WEBALERT|AUTHENTICATIONFAILED|AUTHORIZATIONFAILED|EXPIRED|PRIVACYREQUIRED|CONTACTADMIN|UNAVAILABLE|LIMIT|OVERQUOTA|REFERRAL|INUSE|NOPERM|SERVERBUG)( [^\]]*)?\]`)

func findKnownCode(text string) (code, arg, rest string) {
	m := knownCodeRE.FindStringSubmatchIndex(text)
	if m == nil {
		return "", "", text
	}
	code = text[m[2]:m[3]]
	if m[4] >= 0 {
		arg = strings.TrimSpace(text[m[4]:m[5]])
	}
	rest = strings.TrimSpace(text[:m[0]] + " " + text[m[1]:])
	return code, arg, rest
}

// cutWord splits off the first space-separated word.
func cutWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, " ")
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], strings.TrimLeft(s[i+1:], " ")
	}
	return s, ""
}
