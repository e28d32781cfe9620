package proxy

// OAuth logins (XOAUTH2, OAUTHBEARER): what the front end advertises, the
// facts the diagnosis and the log get, and the token's redaction.

import (
	"encoding/base64"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/oauthsasl"
	"github.com/imapwhy/imapwhy/internal/upstream"
)

// oauthOffer is whether a fixed upstream takes XOAUTH2 or OAUTHBEARER,
// so that the front end advertises them only then. It is known from the
// start for the providers the catalog knows to take tokens (Gmail,
// Microsoft 365), and learned from the capabilities every login sees; the
// proxy never connects upstream for a client that has not tried to log
// in.
type oauthOffer struct{ offered atomic.Bool }

// initOAuthOffer sets what is known of a fixed upstream before any login.
func (st *listenerSettings) initOAuthOffer() {
	if st.upstream == nil {
		return
	}
	obs := diagnose.Observation{}
	upstream.ObserveTarget(*st.upstream, &obs)
	if p, ok := diagnose.Recognize(obs); ok && diagnose.TakesOAuth(p.ID) {
		st.oauth.offered.Store(true)
	}
}

// offersOAuth reports whether the listener's clients are offered the
// OAuth mechanisms: with upstream auto always (the provider is known only
// from the user in the SASL message); with a fixed upstream when it takes
// them, as far as is known.
func (st *listenerSettings) offersOAuth() bool {
	return st.upstream == nil || st.oauth.offered.Load()
}

// noteCapabilities updates what is known of a fixed upstream from the
// pre-login capabilities a login saw.
func (st *listenerSettings) noteCapabilities(caps []string) {
	if st.upstream == nil || len(caps) == 0 {
		return
	}
	st.oauth.offered.Store(hasOAuthCap(caps))
}

func hasOAuthCap(caps []string) bool {
	for _, c := range caps {
		if u := strings.ToUpper(c); u == "AUTH="+oauthsasl.XOAUTH2 || u == "AUTH="+oauthsasl.OAUTHBEARER {
			return true
		}
	}
	return false
}

// isOAuth reports whether the login carries a bearer token.
func (r *loginRequest) isOAuth() bool {
	_, ok := oauthsasl.Is(r.Mechanism)
	return ok
}

// oauthFacts are the facts of an OAuth login for the diagnosis: the user
// in the SASL message and what the token says about itself. The token
// itself stays in req.
func oauthFacts(req *loginRequest, now time.Time) *diagnose.OAuth {
	return &diagnose.OAuth{Mechanism: req.Mechanism, User: req.Username, At: now, Token: diagnose.ReadToken(req.Password)}
}

// logOAuth adds the token's claims that may be logged (form, audience,
// scopes, app permissions, expiry, tenant) and the provider's error
// challenge. Never the token, nor the claims that name people.
func logOAuth(ev *zerolog.Event, o *diagnose.OAuth) *zerolog.Event {
	if o == nil {
		return ev
	}
	t := o.Token
	ev = ev.Str("token_form", t.Form)
	if len(t.Audiences) > 0 {
		ev = ev.Strs("token_audience", t.Audiences)
	}
	if len(t.Scopes) > 0 {
		ev = ev.Strs("token_scopes", t.Scopes)
	}
	if len(t.Roles) > 0 {
		ev = ev.Strs("token_roles", t.Roles)
	}
	if !t.Expires.IsZero() {
		ev = ev.Time("token_expires", t.Expires)
	}
	if t.Tenant != "" {
		ev = ev.Str("token_tenant", t.Tenant)
	}
	if c := o.Challenge; c != nil {
		ev = ev.Str("oauth_status", c.Status)
		if c.Scope != "" {
			ev = ev.Str("oauth_scope", c.Scope)
		}
	}
	return ev
}

// oauthForms are the forms of a token a server may quote back: the
// base64 messages of both mechanisms as the proxy sends them.
func oauthForms(req *loginRequest) []string {
	var forms []string
	for _, mech := range []string{oauthsasl.XOAUTH2, oauthsasl.OAUTHBEARER} {
		msg := oauthsasl.Encode(oauthsasl.Message{Mechanism: mech, User: req.Username, Token: req.Password})
		forms = append(forms, base64.StdEncoding.EncodeToString(msg))
	}
	return forms
}
