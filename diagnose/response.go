package diagnose

import (
	"regexp"
	"strings"
)

// parseResponse parses one server status line: untagged ("* NO ..."),
// tagged ("a1 NO ...") or bare ("NO ...", "LOGIN failed.").
func parseResponse(line string) (Response, bool) {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "* ") {
		word, args := cutWord(strings.TrimSpace(line[2:]))
		status := strings.ToUpper(word)
		if !isStatus(status) {
			return Response{}, false
		}
		return parseStatus(status, args), true
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
	if second, args := cutWord(rest); isStatus(strings.ToUpper(second)) && !isStatus(strings.ToUpper(first)) {
		r := parseStatus(strings.ToUpper(second), args)
		r.Tagged = true
		return r, first
	}
	var r Response
	if isStatus(strings.ToUpper(first)) {
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
	r := Response{Status: status, Text: strings.TrimSpace(rest)}
	if !strings.HasPrefix(r.Text, "[") {
		return r
	}
	end := strings.IndexByte(r.Text, ']')
	if end < 0 {
		return r
	}
	name, arg := cutWord(r.Text[1:end])
	r.Code = strings.ToUpper(name)
	r.CodeArg = strings.TrimSpace(arg)
	r.Text = strings.TrimSpace(r.Text[end+1:])
	return r
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

func isStatus(s string) bool {
	switch s {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		return true
	}
	return false
}

// cutWord splits off the first space-separated word.
func cutWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, " ")
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], strings.TrimLeft(s[i+1:], " ")
	}
	return s, ""
}
