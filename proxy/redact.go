package proxy

import (
	"encoding/base64"
	"strings"

	"github.com/imapwhy/imapwhy/internal/oauthsasl"
)

// redactMinLen: shorter passwords are not masked. In a server's text they
// are coincidences ("in", "OK") more often than echoes, and masking every
// occurrence would point them out rather than hide them.
const redactMinLen = 4

// redactPassword masks the password of req in text, which quotes what the
// upstream said (Diagnosis.Detail, for the log). Some servers quote the
// command back in a refusal (BAD or NO with the LOGIN line, or the
// AUTHENTICATE PLAIN response), or name the password in an ALERT; the
// proxy must not copy it into its log. The forms masked are those the
// proxy sent: the password as typed and as a quoted string, and the whole
// base64 PLAIN message; for a token, also the base64 XOAUTH2 and
// OAUTHBEARER messages.
func redactPassword(text string, req *loginRequest) string {
	if req.bridged != "" {
		text = redactPassword(text, &loginRequest{Mechanism: oauthsasl.XOAUTH2, Username: req.Username, Password: req.bridged})
	}
	if len(req.Password) < redactMinLen {
		return text
	}
	plain := base64.StdEncoding.EncodeToString([]byte(req.Authzid + "\x00" + req.Username + "\x00" + req.Password))
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(req.Password)
	// The longest forms first: the quoted one may contain the plain one.
	var pairs []string
	if req.isOAuth() {
		for _, f := range oauthForms(req) {
			pairs = append(pairs, f, "***")
		}
	}
	pairs = append(pairs, plain, "***", quoted, "***", req.Password, "***")
	return strings.NewReplacer(pairs...).Replace(text)
}
