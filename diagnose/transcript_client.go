package diagnose

import (
	"encoding/base64"

	"github.com/imapwhy/imapwhy/internal/oauthsasl"
	"strconv"
	"strings"
)

// clientLine handles a line the client sent.
func (p *transcriptParser) clientLine(line string) {
	p.clientSeen = true
	if strings.HasPrefix(line, "(") {
		return // "(empty line)" and other notes
	}
	if p.client.sasl != "" {
		p.saslResponse(line)
		return
	}
	if p.client.command != "" {
		line = p.client.command + "\r\n" + line
		p.client.command = ""
	}
	if literalAtEnd(line) {
		p.client.command = line // the literal's data follows on the next line
		return
	}
	tag, rest := cutWord(line)
	cmd, args := cutWord(rest)
	switch strings.ToUpper(cmd) {
	case "LOGIN":
		p.loginTag = tag
		p.obs.Mechanism = "LOGIN"
		fields := astrings(args, 2)
		if len(fields) == 2 {
			p.typed(fields[0], fields[1])
		}
	case "AUTHENTICATE":
		p.loginTag = tag
		mech, ir := cutWord(args)
		if p.oauthAuthenticate(mech, strings.TrimSpace(ir)) {
			return
		}
		p.obs.Mechanism = strings.ToUpper(mech)
		p.authenticate(strings.TrimSpace(ir))
	}
}

// authenticate starts a SASL exchange: PLAIN with or without an initial
// response, LOGIN with user and password on the next lines.
func (p *transcriptParser) authenticate(ir string) {
	switch p.obs.Mechanism {
	case "PLAIN":
		if ir == "" {
			p.client.sasl = "PLAIN"
			return
		}
		p.plain(ir)
	case "LOGIN":
		p.client.sasl = "LOGIN"
	}
}

func (p *transcriptParser) saslResponse(line string) {
	mech := p.client.sasl
	if line == "*" {
		p.client = clientState{} // cancelled
		return
	}
	switch {
	case mech == oauthsasl.XOAUTH2 || mech == oauthsasl.OAUTHBEARER:
		p.oauthResponse(line)
	case mech == "PLAIN":
		p.client.sasl = ""
		p.plain(line)
	case mech == "LOGIN" && !p.client.gotUser:
		user, ok := decodeBase64(line)
		if !ok {
			p.client = clientState{}
			return
		}
		p.client.saslUser, p.client.gotUser = user, true
	default:
		user := p.client.saslUser
		p.client = clientState{}
		if pass, ok := decodeBase64(line); ok {
			p.typed(user, pass)
		}
	}
}

// plain decodes a SASL PLAIN response: authzid NUL user NUL password.
func (p *transcriptParser) plain(b64 string) {
	raw, ok := decodeBase64(b64)
	if !ok {
		return
	}
	parts := strings.Split(raw, "\x00")
	if len(parts) != 3 {
		return
	}
	p.typed(parts[1], parts[2])
}

// typed computes the facts and drops the password. A placeholder such as
// "<password>" is not a typed value: its facts stay unknown.
func (p *transcriptParser) typed(user, pass string) {
	t := Facts(user, pass)
	if isPlaceholder(pass) {
		t = userFactsOnly(t)
	}
	if isPlaceholder(user) {
		t.Username, t.UserHasDomain, t.UserSurroundingSpace, t.UserFullwidth = "", false, false, false
	}
	p.obs.Typed = t
}

// userFactsOnly keeps the user-name facts and clears the password facts.
func userFactsOnly(t Typed) Typed {
	return Typed{
		Username:             t.Username,
		UserHasDomain:        t.UserHasDomain,
		UserSurroundingSpace: t.UserSurroundingSpace,
		UserFullwidth:        t.UserFullwidth,
	}
}

func isPlaceholder(s string) bool {
	return len(s) > 2 && strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">")
}

func decodeBase64(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "=" {
		return "", true
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", false
	}
	return string(raw), true
}

// literalAtEnd: the line ends with a literal's length, "{n}" or "{n+}".
func literalAtEnd(line string) bool {
	_, ok := literalLength(line)
	return ok
}

func literalLength(s string) (int, bool) {
	if !strings.HasSuffix(s, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(s, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(s[i+1:len(s)-1], "+"))
	if err != nil || n < 0 || n > MaxTranscript {
		return 0, false
	}
	return n, true
}

// astrings reads up to n IMAP astrings: atoms, quoted strings, and
// literals whose data follows "{n}\r\n".
func astrings(s string, n int) []string {
	var out []string
	for len(out) < n {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		var v string
		var ok bool
		switch s[0] {
		case '"':
			v, s, ok = quoted(s)
		case '{':
			v, s, ok = literal(s)
		default:
			v, s = cutWord(s)
			ok = true
		}
		if !ok {
			break
		}
		out = append(out, v)
	}
	return out
}

func quoted(s string) (v, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

func literal(s string) (v, rest string, ok bool) {
	end := strings.Index(s, "}\r\n")
	if end < 0 {
		return "", "", false
	}
	n, ok := literalLength(s[:end+1])
	if !ok {
		return "", "", false
	}
	data := s[end+3:]
	if len(data) < n {
		return "", "", false
	}
	return data[:n], data[n:], true
}
