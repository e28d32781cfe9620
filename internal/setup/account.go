package setup

import (
	"errors"
	"net/mail"
	"strings"

	"github.com/imapwhy/imapwhy/diagnose"
)

// smtpServer is a provider's outgoing server. imapwhy does not relay mail:
// a set-up profile sends mail to the provider directly.
type smtpServer struct {
	Host      string
	Port      int
	TLS       string // "implicit" or "starttls"
	Guess     bool   // not from the catalog: smtp.<domain>, port 587
	LocalPart bool   // the provider wants the part before '@' as user name
}

// Username is the SMTP user name for an address.
func (s smtpServer) Username(email string) string {
	if s.LocalPart {
		local, _, _ := strings.Cut(email, "@")
		return local
	}
	return email
}

// maxEmail bounds an address taken from a query (RFC 5321's path limit).
const maxEmail = 254

var errBadEmail = errors.New("not an email address")

// parseEmail accepts a bare address (local@domain), as typed into the
// form, and returns it with the domain in lower case.
func parseEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxEmail || strings.ContainsAny(s, "<>\" ,;\r\n\t") {
		return "", errBadEmail
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return "", errBadEmail
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || !strings.Contains(domain, ".") {
		return "", errBadEmail
	}
	return local + "@" + strings.ToLower(domain), nil
}

// smtpFor is the outgoing server of the address's provider from the
// catalog, else the usual guess.
func smtpFor(email string) smtpServer {
	_, domain, _ := strings.Cut(email, "@")
	if p, ok := diagnose.LookupDomain(domain); ok && p.SMTP.Host != "" {
		return smtpServer{Host: p.SMTP.Host, Port: p.SMTP.Port, TLS: p.SMTP.TLS, LocalPart: p.Username == diagnose.UsernameLocalPart}
	}
	return smtpServer{Host: "smtp." + domain, Port: 587, TLS: "starttls", Guess: true}
}
