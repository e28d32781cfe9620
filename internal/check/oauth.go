package check

// Checking an OAuth 2.0 access token instead of a password: what the token
// says about itself, then a login with XOAUTH2 or OAUTHBEARER.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/oauthsasl"
	"github.com/imapwhy/imapwhy/internal/upstream"
)

// TokenInfo is what an OAuth access token says about itself (a JWT's
// claims, read without checking its signature), and the server's error
// challenge if it refused the token. It never holds the token.
type TokenInfo struct {
	Summary   string               `json:"summary"` // what it is for and when it expires, for people
	Form      string               `json:"form"`    // jwt, google (ya29.) or opaque
	Audiences []string             `json:"audiences,omitempty"`
	Scopes    []string             `json:"scopes,omitempty"`
	Roles     []string             `json:"roles,omitempty"`
	Expires   string               `json:"expires,omitempty"` // RFC 3339
	Expired   bool                 `json:"expired"`
	Tenant    string               `json:"tenant,omitempty"`
	Challenge *diagnose.OAuthError `json:"challenge,omitempty"`
}

var (
	errNoOAuthMechanism = errors.New("the server offers neither XOAUTH2 nor OAUTHBEARER")
	errUnsendableToken  = errors.New("the token has characters a bearer token cannot have")
)

// initOAuth records, for a check of a token, what the token says.
func (r *runner) initOAuth() {
	now := time.Now()
	facts := diagnose.ReadToken(r.password)
	r.obs.Typed = diagnose.Facts(r.address, "")
	r.obs.Typed.PasswordEmpty = false
	r.obs.OAuth = &diagnose.OAuth{User: r.address, At: now, Token: facts}
	info := &TokenInfo{
		Summary: facts.Summary(now), Form: facts.Form,
		Audiences: facts.Audiences, Scopes: facts.Scopes, Roles: facts.Roles, Tenant: facts.Tenant,
	}
	if !facts.Expires.IsZero() {
		info.Expires = facts.Expires.UTC().Format(time.RFC3339)
		info.Expired = !facts.Expires.After(now)
	}
	r.report.Token = info
}

// oauthLogin is the login step with a token: XOAUTH2, or OAUTHBEARER when
// the server offers only that.
func (r *runner) oauthLogin(s *Step) error {
	r.obs.OAuth.User = r.report.User
	s.Details = append(s.Details, "token: "+r.report.Token.Summary)
	mech := upstream.ChooseMechanism(r.obs.Capabilities, upstream.Credentials{
		User: r.report.User, Password: r.password, Mechanism: oauthsasl.XOAUTH2,
	})
	r.obs.Mechanism, r.report.IMAP.Mechanism, r.obs.OAuth.Mechanism = mech, mech, mech
	switch {
	case mech == "":
		s.Summary = "not tried: the server offers no OAuth sign-in (AUTH=XOAUTH2 or AUTH=OAUTHBEARER) on this connection"
		return errNoOAuthMechanism
	case !r.secure() && !r.loopback():
		s.Summary = "not tried: the connection is not encrypted and the server is not on this machine"
		s.Diagnosis = r.diagnosis(diagnose.Of(diagnose.CauseServerPrivacyRequired))
		return errPlaintextRemote
	case !oauthsasl.ValidToken(r.password):
		s.Summary = "not tried: " + errUnsendableToken.Error()
		s.Diagnosis = r.diagnosis(diagnose.Of(diagnose.CauseOAuthTokenRejected))
		return errUnsendableToken
	}
	r.startClient()
	mark := r.rec.mark()
	err := r.client.Authenticate(oauthsasl.Client{Mechanism: mech, User: r.report.User, Token: r.password})
	for _, line := range r.rec.since(mark) {
		if c, ok := strings.CutPrefix(line, "+ "); ok {
			if raw, derr := base64.StdEncoding.DecodeString(c); derr == nil {
				if e, ok := diagnose.ParseOAuthError(raw); ok {
					r.obs.OAuth.Challenge, r.report.Token.Challenge = e, e
					b, _ := json.Marshal(e)
					s.Details = append(s.Details, "error challenge: "+string(b))
				}
			}
		}
	}
	s.Details = append(s.Details, r.observeReplies(mark, err)...)
	if err != nil {
		s.Summary = "the server refused the token"
		if r.obs.Reply == nil {
			s.Summary = "no answer to the login"
		}
		return fmt.Errorf("login: %w", err)
	}
	s.Summary = fmt.Sprintf("logged in as %s (AUTHENTICATE %s)", r.shown(r.report.User), mech)
	return nil
}
