package discover

import "github.com/imapwhy/imapwhy/diagnose"

// BuiltinCatalog answers Options.Catalog from diagnose's built-in provider
// catalog: the provider's fixed IMAP server and its user name form. Server
// software entries (Dovecot, Exchange...) are not providers and are not
// answered. A provider without a fixed server is answered with an empty
// Host, so that the network sources are asked and keep its ID.
func BuiltinCatalog(domain string) (Result, bool) {
	p, ok := diagnose.LookupDomain(domain)
	if !ok || p.Kind != diagnose.KindProvider {
		return Result{}, false
	}
	r := Result{Host: p.IMAP.Host, Port: p.IMAP.Port, TLS: p.IMAP.TLS, Provider: p.ID}
	if r.Host != "" && r.TLS == "" {
		r.TLS = "implicit"
	}
	if r.Host != "" && r.Port == 0 {
		r.Port = 993
		if r.TLS == "starttls" {
			r.Port = 143
		}
	}
	switch p.Username {
	case diagnose.UsernameAddress:
		r.Username = "%EMAILADDRESS%"
	case diagnose.UsernameLocalPart:
		r.Username = "%EMAILLOCALPART%"
	}
	return r, true
}
