package upstream

// OAuth logins: XOAUTH2 and OAUTHBEARER (RFC 7628).

import (
	"encoding/base64"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/imapwire"
	"github.com/imapwhy/imapwhy/internal/oauthsasl"
)

// oauthCommand encodes AUTHENTICATE with the OAuth mechanism chosen in
// obs.Mechanism, the message in the initial response when the server takes
// SASL-IR. A refusal comes as an error challenge: its decoded JSON is kept
// in obs.OAuth.Challenge, and it is answered as each mechanism wants (RFC
// 7628 section 3.2.3: a lone ^A; XOAUTH2: an empty response) so that the
// server sends its final NO.
func (s *Client) oauthCommand(req Credentials) imapwire.Command {
	mech := s.obs.Mechanism
	o := s.obs.OAuth
	if o == nil {
		o = &diagnose.OAuth{User: req.User, At: time.Now(), Token: diagnose.ReadToken(req.Password)}
		s.obs.OAuth = o
	}
	o.Mechanism = mech
	msg := oauthsasl.Encode(oauthsasl.Message{Mechanism: mech, User: req.User, Token: req.Password})
	resp := base64.StdEncoding.EncodeToString(msg)
	clear(msg)
	e := s.command("AUTHENTICATE").Atom(mech)
	if s.has(imap.CapSASLIR) {
		e.Atom(resp)
	} else {
		e.Respond(resp)
	}
	ack := ""
	if mech == oauthsasl.OAUTHBEARER {
		ack = base64.StdEncoding.EncodeToString([]byte{1})
	}
	e.CancelWith(ack)
	cmd, _ := e.Finish() // atoms only: Finish cannot fail
	cmd.OnChallenge = func(text string) {
		if raw, err := base64.StdEncoding.DecodeString(text); err == nil {
			if c, ok := diagnose.ParseOAuthError(raw); ok {
				o.Challenge = c
			}
		}
	}
	return cmd
}

// checkMailbox asks, after an OAuth login to a server that offers
// NAMESPACE, whether the mailbox can be opened: Exchange Online accepts a
// token whose user may not open the mailbox (or whose mailbox has IMAP
// off) and refuses every command after it with "BAD User is authenticated
// but not connected.". The client's app would see only that; asked here,
// the refusal is the login's and gets its diagnosis. NAMESPACE changes
// nothing on the server, and its answer stays here.
func (s *Client) checkMailbox() error {
	if _, ok := oauthsasl.Is(s.obs.Mechanism); !ok || !s.has(imap.CapNamespace) {
		return nil
	}
	s.obs.Phase = diagnose.PhaseAfterLogin
	cmd, err := s.command("NAMESPACE").Finish()
	if err != nil {
		return err
	}
	reply, err := s.exchange(cmd, s.recordUntagged)
	if err != nil {
		return err
	}
	if reply.Status != "OK" {
		return s.refused(reply)
	}
	s.obs.Phase = diagnose.PhaseLogin
	return nil
}
