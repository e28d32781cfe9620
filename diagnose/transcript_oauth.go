package diagnose

import (
	"encoding/base64"
	"strings"

	"github.com/imapwhy/imapwhy/internal/oauthsasl"
)

// oauthAuthenticate starts an XOAUTH2 or OAUTHBEARER exchange in a
// transcript: the client message comes as the initial response or on the
// next client line. It reports whether mech is one of the two.
func (p *transcriptParser) oauthAuthenticate(mech, ir string) bool {
	name, ok := oauthsasl.Is(mech)
	if !ok {
		return false
	}
	p.obs.Mechanism = name
	p.oauthFacts().Mechanism = name
	if ir == "" {
		p.client.sasl = name
	} else {
		p.oauthMessage(name, ir)
	}
	return true
}

// oauthResponse is a client line within an OAuth exchange: the message
// itself, or the empty answer to the error challenge.
func (p *transcriptParser) oauthResponse(line string) {
	mech := p.client.sasl
	p.client = clientState{}
	if line == "*" || strings.TrimSpace(line) == "" {
		return
	}
	p.oauthMessage(mech, line)
}

// oauthMessage reads the user and what the token says about itself; the
// token is dropped.
func (p *transcriptParser) oauthMessage(mech, b64 string) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return
	}
	m, err := oauthsasl.Parse(mech, raw)
	if err != nil {
		return
	}
	o := p.oauthFacts()
	o.User = m.User
	o.Token = ReadToken(m.Token)
	p.obs.Typed = userFactsOnly(Facts(m.User, ""))
}

// oauthChallenge reads a continuation request that carries an OAuth error
// challenge ("+ eyJzdGF0dXMiOiI0MDEi..."), with or without the client's
// lines. It reports whether it was one.
func (p *transcriptParser) oauthChallenge(line string) bool {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(line, "+")))
	if err != nil {
		return false
	}
	e, ok := ParseOAuthError(raw)
	if !ok {
		return false
	}
	p.oauthFacts().Challenge = e
	return true
}

func (p *transcriptParser) oauthFacts() *OAuth {
	if p.obs.OAuth == nil {
		p.obs.OAuth = &OAuth{}
	}
	return p.obs.OAuth
}
