package proxy

import (
	"encoding/base64"
	"regexp"
	"strings"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/oauthsasl"
)

// redactMinLen: shorter passwords are not masked. In a server's text they
// are coincidences ("in", "OK") more often than echoes, and masking every
// occurrence would point them out rather than hide them.
const redactMinLen = 4

// sentForms are the forms of req's secret a server may quote back,
// longest first: the whole base64 PLAIN message (for the typed user name
// and for each of users, the names the login went upstream with), the
// password as a quoted string and as it is; for a token, also the base64
// XOAUTH2 and OAUTHBEARER messages.
func sentForms(req *loginRequest, users ...string) []string {
	var forms []string
	if req.bridged != "" {
		forms = append(forms, sentForms(&loginRequest{Mechanism: oauthsasl.XOAUTH2, Username: req.Username, Password: req.bridged}, users...)...)
	}
	if len(req.Password) < redactMinLen {
		return forms
	}
	if req.isOAuth() {
		forms = append(forms, oauthForms(req)...)
	}
	names := append([]string{req.Username}, users...)
	for i, u := range names {
		if i > 0 && u == req.Username {
			continue
		}
		forms = append(forms, base64.StdEncoding.EncodeToString([]byte(req.Authzid+"\x00"+u+"\x00"+req.Password)))
	}
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(req.Password)
	return append(forms, quoted, req.Password)
}

// redactPassword masks the secret of req in text, which quotes what the
// upstream said. Some servers quote the command back in a refusal (BAD or
// NO with the LOGIN line, or the AUTHENTICATE PLAIN response), or name the
// password in an ALERT; the proxy must not copy it into its log. users are
// the names the login went upstream with, when routing rewrote the typed
// one. A text that ends in the start of a form (a server that cut its own
// echo) loses that end too.
func redactPassword(text string, req *loginRequest, users ...string) string {
	forms := sentForms(req, users...)
	if len(forms) == 0 {
		return text
	}
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, "***")
	}
	text = strings.NewReplacer(pairs...).Replace(text)
	for _, f := range forms {
		for k := len(f) - 1; k >= redactMinLen; k-- {
			if strings.HasSuffix(text, f[:k]) {
				return text[:len(text)-k] + "***"
			}
		}
	}
	return text
}

// redactObservation masks the secret in the server's raw texts that obs
// holds, before diagnose sanitises them (collapsing spaces, replacing
// invalid UTF-8) or cuts them: after that, a password with two spaces, a
// tab or an invalid byte, or one cut in the middle, no longer matches.
func redactObservation(obs *diagnose.Observation, req *loginRequest, users ...string) {
	redact := func(r *diagnose.Response) {
		r.Text = redactPassword(r.Text, req, users...)
		r.CodeArg = redactPassword(r.CodeArg, req, users...)
	}
	if obs.Reply != nil {
		reply := *obs.Reply // the caller's Response is not changed under it
		redact(&reply)
		obs.Reply = &reply
	}
	untagged := make([]diagnose.Response, len(obs.Untagged))
	copy(untagged, obs.Untagged)
	for i := range untagged {
		redact(&untagged[i])
	}
	obs.Untagged = untagged
}

var (
	detailQuoted    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"?`)
	detailLiteral   = regexp.MustCompile(`~?\{[0-9]+\+?\}.*$`)
	detailBase64ish = regexp.MustCompile(`[A-Za-z0-9+/]{12,}={0,2}`)
)

// scrubDetail drops from the detail of a login reply what may be the
// credentials in a form the proxy did not send: quoted strings, literals
// (and everything after one) and base64-looking tokens. A server that
// echoes the command echoes them there; the refusal's words stay.
func scrubDetail(s string) string {
	s = detailLiteral.ReplaceAllString(s, "{…}")
	s = detailQuoted.ReplaceAllString(s, `"…"`)
	return detailBase64ish.ReplaceAllStringFunc(s, func(tok string) string {
		if looksBase64(tok) {
			return "…"
		}
		return tok
	})
}

// looksBase64: mixed case with a digit, '+', '/' or padding, as encoded
// bytes are; not a word, a number or a path of lower-case words.
func looksBase64(tok string) bool {
	upper := strings.ContainsAny(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
	lower := strings.ContainsAny(tok, "abcdefghijklmnopqrstuvwxyz")
	other := strings.ContainsAny(tok, "0123456789+=")
	return upper && lower && other
}
